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

/// Where data goes on the drawing: the axes' ranges and the plot area.
struct Frame {
    log_x: bool,
    x_min: f64,
    x_max: f64,
    y_top: f64,
}

/// The plot area's size.
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PLOT_H: f64 = HEIGHT - TOP - BOTTOM;

impl Frame {
    /// A frame that holds every drawable point of `series`.
    fn of(series: &[(String, Vec<(f64, f64)>)], log_x: bool) -> Self {
        let mut frame = Self {
            log_x,
            x_min: f64::INFINITY,
            x_max: f64::NEG_INFINITY,
            y_top: 0.0,
        };
        let mut y_max: f64 = 0.0;
        for &(x, y) in series
            .iter()
            .flat_map(|(_, p)| p)
            .filter(|p| drawable(log_x, p))
        {
            frame.x_min = frame.x_min.min(frame.fx(x));
            frame.x_max = frame.x_max.max(frame.fx(x));
            y_max = y_max.max(y);
        }
        if !frame.x_min.is_finite() {
            (frame.x_min, frame.x_max) = (0.0, 1.0);
        }
        if frame.x_max <= frame.x_min {
            frame.x_max = frame.x_min + 1.0;
        }
        // Zero at the bottom, so a flat curve looks flat and not like noise blown up; the
        // top five round steps up.
        frame.y_top = nice_step(y_max * 1.05 / 5.0) * 5.0;
        frame
    }

    /// Whether a point can be drawn in this frame.
    fn drawable(&self, point: &(f64, f64)) -> bool {
        drawable(self.log_x, point)
    }

    fn fx(&self, x: f64) -> f64 {
        if self.log_x {
            x.log10()
        } else {
            x
        }
    }

    /// Drawing coordinates of a data x.
    fn x(&self, x: f64) -> f64 {
        ((self.fx(x) - self.x_min) / (self.x_max - self.x_min)).mul_add(PLOT_W, LEFT)
    }

    /// Drawing coordinates of a data y.
    fn y(&self, y: f64) -> f64 {
        (y / self.y_top).mul_add(-PLOT_H, TOP + PLOT_H)
    }
}

/// Finite, and on a log axis positive.
fn drawable(log_x: bool, &(x, y): &(f64, f64)) -> bool {
    x.is_finite() && y.is_finite() && (!log_x || x > 0.0)
}

/// The chart as an SVG document.
fn render(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_x: bool,
) -> String {
    let frame = Frame::of(series, log_x);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">{}</text>\n",
        WIDTH / 2.0,
        escape(title)
    );
    axes(&mut out, &frame, series, x_label, y_label);
    for (i, (name, data)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let line: Vec<String> = data
            .iter()
            .filter(|p| frame.drawable(p))
            .map(|&(x, y)| format!("{:.1},{:.1}", frame.x(x), frame.y(y)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" stroke=\"{colour}\" stroke-width=\"2\" fill=\"none\"/>",
            line.join(" ")
        );
        let ly = 16.0f64.mul_add(i as f64, TOP);
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{ly}\" width=\"14\" height=\"4\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            WIDTH - RIGHT + 16.0,
            WIDTH - RIGHT + 36.0,
            ly + 5.0,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The axes, their ticks (five round steps on y, every x the data has) and labels.
fn axes(
    out: &mut String,
    frame: &Frame,
    series: &[(String, Vec<(f64, f64)>)],
    x_label: &str,
    y_label: &str,
) {
    let bottom = TOP + PLOT_H;
    let _ = writeln!(
        out,
        "<path d=\"M{LEFT} {TOP} V{bottom} H{}\" stroke=\"black\" fill=\"none\"/>",
        LEFT + PLOT_W
    );
    for i in 0..=5 {
        let y = frame.y_top * f64::from(i) / 5.0;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            frame.y(y) + 4.0,
            short(y)
        );
    }
    let mut xs: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p)
        .filter(|p| frame.drawable(p))
        .map(|(x, _)| *x)
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for x in xs {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            frame.x(x),
            bottom + 18.0,
            short(x)
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n\
         <text transform=\"translate(18 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        LEFT + PLOT_W / 2.0,
        HEIGHT - 16.0,
        escape(x_label),
        TOP + PLOT_H / 2.0,
        escape(y_label)
    );
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
