//! Renderers: tables for people, CSV and JSON for scripts, an SVG chart and a
//! self-contained HTML report.

pub mod chart;
pub mod csv;
pub mod html;
pub mod json;
pub mod table;

/// Seconds with one decimal (`12.3 s`), or `-`.
pub fn secs(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".into(), |v| format!("{:.1} s", v / 1000.0))
}

/// A fraction as a percentage (`12.5%`), or `-`.
pub fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{:.1}%", v * 100.0))
}

/// A score with two decimals and a sign (`+0.25`), or `-`.
pub fn score(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:+.2}"))
}

/// At most `max` characters, with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(secs(Some(12_345.0)), "12.3 s");
        assert_eq!(secs(None), "-");
        assert_eq!(pct(Some(0.125)), "12.5%");
        assert_eq!(score(Some(0.25)), "+0.25");
        assert_eq!(score(Some(-0.5)), "-0.50");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
