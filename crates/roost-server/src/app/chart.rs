//! Charts drawn on the server as SVG: no script, readable with CSS off, and the same numbers are
//! always also given as a table beside the chart.

use std::fmt::Write;

/// One bar: its label, amount and share of the total (0–1).
pub struct Bar {
    pub label: String,
    pub amount: i64,
    pub share: f64,
}

/// Escapes text for SVG (XML).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Horizontal bars, longest for the largest amount, each labelled with its amount and share.
/// `title` names the chart for screen readers.
pub fn bars(title: &str, bars: &[Bar]) -> String {
    const W: i64 = 640;
    const LABEL: i64 = 200;
    const ROW: i64 = 30;
    const BAR_MAX: i64 = 300;
    let h = ROW * i64::try_from(bars.len()).unwrap_or(0) + 10;
    let max = bars.iter().map(|b| b.amount).max().unwrap_or(0).max(1);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" role="img" aria-labelledby="chart-title"><title id="chart-title">{}</title>"#,
        esc(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = ROW * i64::try_from(i).unwrap_or(0) + 5;
        let width = (b.amount.max(0) * BAR_MAX / max).max(1);
        let mut label = b.label.clone();
        if label.chars().count() > 26 {
            label = label.chars().take(25).collect::<String>() + "…";
        }
        let _ = write!(
            s,
            r##"<g class="bar"><text x="0" y="{ty}" font-size="13" fill="#1b1f24">{}</text><rect x="{LABEL}" y="{y}" width="{width}" height="20" rx="3" fill="currentColor"/><text x="{tx}" y="{ty}" font-size="13" fill="#1b1f24">{} ({:.1}%)</text></g>"##,
            esc(&label),
            b.amount,
            b.share * 100.0,
            ty = y + 15,
            tx = LABEL + width + 8,
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_escape_labels() {
        let svg = bars(
            "Usage <by key>",
            &[Bar { label: "a<b".into(), amount: 30, share: 0.75 }, Bar { label: "c".into(), amount: 10, share: 0.25 }],
        );
        assert!(svg.contains("Usage &lt;by key&gt;"));
        assert!(svg.contains("a&lt;b"));
        assert!(svg.contains(r#"width="300""#), "{svg}");
        assert!(svg.contains(r#"width="100""#), "{svg}");
        assert!(svg.contains("30 (75.0%)"));
        assert!(!svg.contains("<script"));
    }
}
