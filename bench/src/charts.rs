//! Line charts of the growth curves, as SVG.
//!
//! // replaced at merge by the plotters version
//!
//! A stand-in with the same signature as the plotters module, so the growth scenarios can
//! draw their curves on this branch without a new dependency: axes, one polyline per
//! series, a tick at every x the data has, and a legend. Nothing more.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};

/// Drawing size and margins, in SVG user units.
const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// Series colours, in order (and again from the start beyond them).
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Writes a line chart of `series` (name, points) to `path` as SVG; `log_x` puts x on a
/// logarithmic scale (points with x <= 0 are then left out).
// replaced at merge by the plotters version
pub(crate) fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_x: bool,
) -> Result<()> {
    let svg = render(title, x_label, y_label, series, log_x);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))
}

/// The chart as an SVG document.
fn render(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_x: bool,
) -> String {
    let fx = |x: f64| if log_x { x.log10() } else { x };
    let points = || {
        series
            .iter()
            .flat_map(|(_, p)| p.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log_x || *x > 0.0))
    };
    let (mut x_min, mut x_max) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut y_max: f64 = 0.0;
    for (x, y) in points() {
        x_min = x_min.min(fx(x));
        x_max = x_max.max(fx(x));
        y_max = y_max.max(y);
    }
    if !x_min.is_finite() {
        (x_min, x_max) = (0.0, 1.0);
    }
    if x_max <= x_min {
        x_max = x_min + 1.0;
    }
    // Zero at the bottom, so a flat curve looks flat and not like noise blown up; the top a
    // round number of five round steps.
    let step = nice_step(y_max * 1.05 / 5.0);
    let y_top = step * 5.0;
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let sx = |x: f64| ((fx(x) - x_min) / (x_max - x_min)).mul_add(plot_w, LEFT);
    let sy = |y: f64| (y / y_top).mul_add(-plot_h, TOP + plot_h);

    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">{}</text>\n",
        WIDTH / 2.0,
        escape(title)
    );
    let (x0, y0) = (LEFT, TOP + plot_h);
    let _ = writeln!(
        out,
        "<path d=\"M{x0} {TOP} V{y0} H{}\" stroke=\"black\" fill=\"none\"/>",
        LEFT + plot_w
    );
    // y ticks: five steps from zero.
    for i in 0..=5 {
        let y = y_top * f64::from(i) / 5.0;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            sy(y) + 4.0,
            short(y)
        );
    }
    // x ticks: one at every x some series has.
    let mut xs: Vec<f64> = points().map(|(x, _)| x).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for x in xs {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            sx(x),
            y0 + 18.0,
            short(x)
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n\
         <text transform=\"translate(18 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        LEFT + plot_w / 2.0,
        HEIGHT - 16.0,
        escape(x_label),
        TOP + plot_h / 2.0,
        escape(y_label)
    );
    for (i, (name, data)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let line: Vec<String> = data
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log_x || *x > 0.0))
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" stroke=\"{colour}\" stroke-width=\"2\" fill=\"none\"/>",
            line.join(" ")
        );
        let ly = 16.0f64.mul_add(i as f64, TOP);
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            WIDTH - RIGHT + 16.0,
            ly,
            WIDTH - RIGHT + 36.0,
            ly + 5.0,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The smallest 1, 2, 2.5 or 5 times a power of ten that is at least `v` (1 for nothing).
fn nice_step(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= v * (1.0 - 1e-9));
    step.unwrap_or(10.0 * power)
}

/// A tick label: 1k, 1M, 64Ki, 1Mi for round big numbers, else up to two decimals.
fn short(v: f64) -> String {
    let units = [(1e6, "M"), (1e3, "k"), (1_048_576.0, "Mi"), (1024.0, "Ki")];
    for (unit, suffix) in units {
        if v >= unit && (v / unit).fract() == 0.0 {
            return format!("{}{suffix}", v / unit);
        }
    }
    if v.fract() == 0.0 {
        format!("{v}")
    } else {
        format!("{v:.2}")
    }
}

/// Text for SVG: `&`, `<` and `>` escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_polyline_per_series_on_a_log_axis() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/chart.svg");
        let series = vec![
            (
                "A <exact>".to_owned(),
                vec![(1e3, 1.0), (1e4, 1.1), (1e5, 1.2)],
            ),
            ("B".to_owned(), vec![(1e3, 2.0), (0.0, 9.0)]),
        ];
        line_chart(&path, "t", "subscriptions", "µs", &series, true).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("A &lt;exact&gt;"));
        assert!(svg.contains(">1k<") && svg.contains(">100k<"));
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(4.3), 5.0);
        assert_eq!(nice_step(0.9), 1.0);
        assert_eq!(nice_step(2.2), 2.5);
        assert_eq!(nice_step(80_000.0), 100_000.0);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(short(1_000_000.0), "1M");
        assert_eq!(short(65_536.0), "64Ki");
        assert_eq!(short(1_048_576.0), "1Mi");
        assert_eq!(short(16.0), "16");
        assert_eq!(short(0.5), "0.50");
    }
}
