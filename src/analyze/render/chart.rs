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

/// Height of the timelines (the histogram is below).
const TIMELINES_HEIGHT: u32 = 470;

/// Width of the legend column, right of the data.
const LEGEND_WIDTH: u32 = 250;

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
        let (top, bottom) = root.split_vertically(TIMELINES_HEIGHT);
        timelines(&top, &report.aggregates.samples)?;
        let ttt = &report.aggregates.time_to_transfer;
        histogram(&bottom, &ttt.decision_histogram, &ttt.connected_histogram)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A tick label: at most two decimals, no trailing zeros, never `-0`.
pub fn tick(v: f64) -> String {
    let r = (v * 100.0).round() / 100.0;
    let r = if r == 0.0 { 0.0 } else { r };
    let s = format!("{r:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The unit a time axis reads best in, for values up to `max_min` minutes:
/// its name and how many of it make a minute.
fn time_unit(max_min: f64) -> (&'static str, f64) {
    if max_min < 2.0 {
        ("seconds", 60.0)
    } else if max_min < 120.0 {
        ("minutes", 1.0)
    } else {
        ("hours", 1.0 / 60.0)
    }
}

/// How an entry of a legend is drawn.
enum Swatch {
    Line(RGBAColor),
    Cross,
    Bar(RGBColor),
}

/// Draws a legend in its own column, so it never covers the data.
fn legend(area: &DrawingArea<SVGBackend<'_>, Shift>, entries: &[(String, Swatch)]) -> Result<(), AnalyzeError> {
    let font = ("sans-serif", 12).into_font().color(&BLACK);
    for (i, (label, swatch)) in entries.iter().enumerate() {
        let y = 48 + i as i32 * 18;
        match swatch {
            Swatch::Line(c) => area.draw(&PathElement::new([(8, y), (26, y)], c.stroke_width(2))),
            Swatch::Cross => area.draw(&Cross::new((17, y), 5, MARKER.stroke_width(3))),
            Swatch::Bar(c) => area.draw(&Rectangle::new([(9, y - 5), (25, y + 5)], c.filled())),
        }
        .map_err(err)?;
        area.draw(&Text::new(label.clone(), (32, y - 7), font.clone())).map_err(err)?;
    }
    Ok(())
}

fn timelines(area: &DrawingArea<SVGBackend<'_>, Shift>, samples: &[CallSample]) -> Result<(), AnalyzeError> {
    let (plot, key) = area.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let longest = samples.iter().flat_map(|s| s.points.iter().map(|p| p.0)).fold(0.0f64, f64::max);
    let (unit, per_min) = time_unit(longest);
    let max_x = (longest * per_min).max(1.0) * 1.05;
    let mut chart = ChartBuilder::on(&plot)
        .caption(format!("Caller sentiment over time ({} sampled calls)", samples.len()), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..max_x, -1.05f64..1.05f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(format!("{unit} since the call started"))
        .y_desc("sentiment")
        .light_line_style(WHITE.mix(0.0))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(err)?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (max_x, 0.0)], BLACK.mix(0.3))).map_err(err)?;
    let mut entries = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let color = Palette99::pick(i).mix(0.9);
        let points = s.points.iter().map(|&(x, y)| (x * per_min, y));
        chart.draw_series(LineSeries::new(points, color.stroke_width(2))).map_err(err)?;
        if let Some(at) = s.decision_min {
            let y = value_at(&s.points, at);
            let cross = Cross::new((at * per_min, y), 7, MARKER.stroke_width(3));
            chart.draw_series(std::iter::once(cross)).map_err(err)?;
        }
        let label = match &s.reason {
            Some(r) => format!("{} ({})", clip(&s.conversation_id, 14), clip(r, 16)),
            None => clip(&s.conversation_id, 14),
        };
        entries.push((label, Swatch::Line(color)));
    }
    if samples.iter().any(|s| s.decision_min.is_some()) {
        entries.push(("transfer decision".into(), Swatch::Cross));
    }
    legend(&key, &entries)
}

fn histogram(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    decision: &[Bin],
    connected: &[Bin],
) -> Result<(), AnalyzeError> {
    let (plot, key) = area.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let max_x = decision.last().map_or(10.0, |b| b.to_s);
    let most = decision.iter().chain(connected).map(|b| b.count).max().unwrap_or(0);
    // Counts on an integer axis: its ticks are whole numbers.
    let top = most + (most / 10).max(1);
    let mut chart = ChartBuilder::on(&plot)
        .caption("Time to transfer (seconds from call start)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..max_x, 0u64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("calls")
        .light_line_style(WHITE.mix(0.0))
        .x_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(err)?;
    let mut entries = Vec::new();
    for (bins, color, left, name) in
        [(decision, DECISION, true, "transfer decided"), (connected, CONNECTED, false, "agent connected")]
    {
        let bars = bins.iter().filter(|b| b.count > 0).map(move |b| {
            let mid = (b.from_s + b.to_s) / 2.0;
            let (x0, x1) = if left { (b.from_s, mid) } else { (mid, b.to_s) };
            Rectangle::new([(x0, 0), (x1, b.count)], color.mix(0.8).filled())
        });
        chart.draw_series(bars).map_err(err)?;
        entries.push((name.to_string(), Swatch::Bar(color)));
    }
    legend(&key, &entries)
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
pub(crate) mod tests {
    use super::*;
    use crate::analyze::aggregate::{AggregateOptions, Aggregator};

    /// A report of no calls, to fill in.
    pub(crate) fn empty_report() -> Report {
        let options = AggregateOptions { window: 2, min_count: 3, top: 15, samples: 12 };
        Report { filters: Default::default(), aggregates: Aggregator::new(options).finish(), replay: None }
    }

    /// A `<text>` of an SVG: where it is anchored, and what it says.
    #[derive(Debug)]
    pub(crate) struct Label {
        pub x: f64,
        pub y: f64,
        pub anchor: String,
        pub text: String,
    }

    /// The `<text>` elements of an SVG written by plotters (one per line).
    pub(crate) fn labels(svg: &str) -> Vec<Label> {
        let attr = |tag: &str, name: &str| {
            let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
            tag[start..].split('"').next().map(str::to_string)
        };
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let (tag, rest) = t.split_once('>')?;
                let text = rest.split("</text>").next()?.trim().to_string();
                Some(Label {
                    x: attr(tag, "x")?.parse().ok()?,
                    y: attr(tag, "y")?.parse().ok()?,
                    anchor: attr(tag, "text-anchor").unwrap_or_default(),
                    text,
                })
            })
            .collect()
    }

    /// The y-axis tick labels of the chart at `rows` (pixels from the top),
    /// top to bottom: right-aligned, left of the plot.
    pub(crate) fn y_ticks(svg: &str, rows: std::ops::Range<f64>) -> Vec<String> {
        let mut v: Vec<_> =
            labels(svg).into_iter().filter(|l| l.anchor == "end" && l.x < 80.0 && rows.contains(&l.y)).collect();
        v.sort_by(|a, b| a.y.total_cmp(&b.y));
        v.into_iter().map(|l| l.text).collect()
    }

    fn bins(counts: &[u64]) -> Vec<Bin> {
        let bin = |(i, &count): (usize, &u64)| Bin { from_s: i as f64 * 10.0, to_s: (i + 1) as f64 * 10.0, count };
        counts.iter().enumerate().map(bin).collect()
    }

    fn with_histogram(decided: &[u64], connected: &[u64]) -> String {
        let mut r = empty_report();
        r.aggregates.time_to_transfer.decision_histogram = bins(decided);
        r.aggregates.time_to_transfer.connected_histogram = bins(connected);
        render(&r).unwrap()
    }

    fn histogram_ticks(svg: &str) -> Vec<String> {
        y_ticks(svg, TIMELINES_HEIGHT as f64..SIZE.1 as f64)
    }

    fn assert_counts(ticks: &[String]) {
        assert!(ticks.len() >= 2, "{ticks:?}");
        let n: Vec<u64> = ticks.iter().map(|t| t.parse().unwrap_or_else(|_| panic!("{t:?} in {ticks:?}"))).collect();
        assert!(n.windows(2).all(|w| w[0] > w[1]), "ticks neither distinct nor in order: {ticks:?}");
        assert_eq!(*n.last().unwrap(), 0, "{ticks:?}");
    }

    #[test]
    fn counts_get_whole_distinct_ticks() {
        for (decided, connected) in [
            (&[1, 0, 1][..], &[0, 1, 0][..]),
            (&[2, 1][..], &[1, 2][..]),
            (&[0][..], &[0][..]),
            (&[3, 7, 2][..], &[1, 5, 0][..]),
            (&[130, 420, 77][..], &[99, 300, 12][..]),
        ] {
            let svg = with_histogram(decided, connected);
            assert_counts(&histogram_ticks(&svg));
        }
        // The tallest bar is within the axis.
        let ticks = histogram_ticks(&with_histogram(&[1, 2], &[1, 1]));
        assert!(ticks.first().unwrap().parse::<u64>().unwrap() >= 2, "{ticks:?}");
    }

    #[test]
    fn sentiment_has_no_negative_zero_and_times_read_in_their_unit() {
        let mut r = empty_report();
        let sample = |minutes: f64| CallSample {
            conversation_id: "2f0c9a5e-0b5d-4a9b-9b7e-4f6d0c1e2a3b".into(),
            reason: Some("rapid_decline".into()),
            transferred: true,
            points: vec![(0.1, 0.4), (minutes / 2.0, -0.2), (minutes, -0.8)],
            decision_min: Some(minutes),
        };
        r.aggregates.samples = vec![sample(1.05)];
        let svg = render(&r).unwrap();
        let ticks = y_ticks(&svg, 0.0..TIMELINES_HEIGHT as f64);
        assert!(ticks.contains(&"0".to_string()), "{ticks:?}");
        assert!(ticks.iter().all(|t| t != "-0" && t != "-0.0"), "{ticks:?}");
        let texts: Vec<String> = labels(&svg).into_iter().map(|l| l.text).collect();
        assert!(texts.iter().any(|t| t == "seconds since the call started"), "{texts:?}");
        r.aggregates.samples = vec![sample(12.0)];
        let texts: Vec<String> = labels(&render(&r).unwrap()).into_iter().map(|l| l.text).collect();
        assert!(texts.iter().any(|t| t == "minutes since the call started"), "{texts:?}");
        assert_eq!(tick(-0.000_000_1), "0");
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(-1.0), "-1");
        assert_eq!(tick(30.0), "30");
    }

    #[test]
    fn the_legend_sits_right_of_the_data() {
        let mut r = empty_report();
        r.aggregates.samples = vec![CallSample {
            conversation_id: "c1".into(),
            reason: Some("floor".into()),
            transferred: false,
            points: vec![(0.0, 0.9), (3.0, 0.9)],
            decision_min: Some(3.0),
        }];
        r.aggregates.time_to_transfer.decision_histogram = bins(&[5, 1]);
        r.aggregates.time_to_transfer.connected_histogram = bins(&[4, 1]);
        let svg = render(&r).unwrap();
        let plot_right = (SIZE.0 - LEGEND_WIDTH) as f64;
        for name in ["c1 (floor)", "transfer decision", "transfer decided", "agent connected"] {
            let l = labels(&svg).into_iter().find(|l| l.text == name).unwrap_or_else(|| panic!("no {name:?}"));
            assert!(l.x >= plot_right, "{name:?} at x {} is over the data (which ends at {plot_right})", l.x);
        }
    }

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
