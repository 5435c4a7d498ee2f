//! `--chart FILE.svg`: caller sentiment timelines of a sample of calls, with
//! the transfer decisions marked, above the time-to-transfer histogram.
//! Drawn with plotters' SVG backend, which writes text as SVG `<text>`
//! elements: no font files or system font libraries are needed.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::analyze::aggregate::CallSample;
use crate::analyze::render::clip;
use crate::analyze::stats::Bin;
use crate::analyze::{AnalyzeError, Report};

/// Chart size in pixels.
pub const SIZE: (u32, u32) = (1000, 780);

const DECISION: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const CONNECTED: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const MARKER: RGBColor = RGBColor(0xd6, 0x27, 0x28);

fn err<E: std::fmt::Display>(e: E) -> AnalyzeError {
    AnalyzeError::Chart(e.to_string())
}

/// Draws the chart and returns the SVG document.
pub fn render(report: &Report) -> Result<String, AnalyzeError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (top, bottom) = root.split_vertically(470);
        timelines(&top, &report.aggregates.samples)?;
        let ttt = &report.aggregates.time_to_transfer;
        histogram(&bottom, &ttt.decision_histogram, &ttt.connected_histogram)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn timelines(area: &DrawingArea<SVGBackend<'_>, Shift>, samples: &[CallSample]) -> Result<(), AnalyzeError> {
    let max_x = samples.iter().flat_map(|s| s.points.iter().map(|p| p.0)).fold(1.0f64, f64::max) * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("Caller sentiment over time ({} sampled calls)", samples.len()), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..max_x, -1.05f64..1.05f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("minutes since the call started")
        .y_desc("sentiment")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (max_x, 0.0)], BLACK.mix(0.3))).map_err(err)?;
    for (i, s) in samples.iter().enumerate() {
        let color = Palette99::pick(i).mix(0.9);
        let label = match &s.reason {
            Some(r) => format!("{} ({r})", clip(&s.conversation_id, 22)),
            None => clip(&s.conversation_id, 22),
        };
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        if let Some(at) = s.decision_min {
            let y = value_at(&s.points, at);
            chart.draw_series(std::iter::once(Cross::new((at, y), 7, MARKER.stroke_width(3)))).map_err(err)?;
        }
    }
    if samples.iter().any(|s| s.decision_min.is_some()) {
        chart
            .draw_series(std::iter::empty::<Cross<(f64, f64), i32>>())
            .map_err(err)?
            .label("transfer decision")
            .legend(|(x, y)| Cross::new((x + 8, y), 6, MARKER.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 11))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn histogram(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    decision: &[Bin],
    connected: &[Bin],
) -> Result<(), AnalyzeError> {
    let max_x = decision.last().map_or(10.0, |b| b.to_s);
    let max_y = decision.iter().chain(connected).map(|b| b.count).max().unwrap_or(0).max(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption("Time to transfer (seconds from call start)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..max_x, 0f64..max_y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("calls")
        .light_line_style(WHITE.mix(0.0))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(err)?;
    for (bins, color, left, name) in
        [(decision, DECISION, true, "transfer decided"), (connected, CONNECTED, false, "agent connected")]
    {
        let bars = bins.iter().filter(|b| b.count > 0).map(move |b| {
            let mid = (b.from_s + b.to_s) / 2.0;
            let (x0, x1) = if left { (b.from_s, mid) } else { (mid, b.to_s) };
            Rectangle::new([(x0, 0.0), (x1, b.count as f64)], color.mix(0.8).filled())
        });
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// The timeline's value at `x`: linear between the points around it, the
/// nearest end outside them.
fn value_at(points: &[(f64, f64)], x: f64) -> f64 {
    match points.iter().position(|p| p.0 >= x) {
        None => points.last().map_or(0.0, |p| p.1),
        Some(0) => points[0].1,
        Some(i) => {
            let ((x0, y0), (x1, y1)) = (points[i - 1], points[i]);
            if x1 - x0 <= f64::EPSILON {
                y1
            } else {
                y0 + (y1 - y0) * (x - x0) / (x1 - x0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_sit_on_the_line() {
        let line = [(1.0, 0.0), (2.0, -1.0), (4.0, 1.0)];
        assert_eq!(value_at(&line, 1.5), -0.5);
        assert_eq!(value_at(&line, 3.0), 0.0);
        assert_eq!(value_at(&line, 0.5), 0.0);
        assert_eq!(value_at(&line, 9.0), 1.0);
        assert_eq!(value_at(&[], 1.0), 0.0);
    }
}
