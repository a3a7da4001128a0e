//! Pictures of the results, as SVG files next to the report: a grouped bar chart (one group
//! per scenario, one bar per broker) and line charts (one line per series, say a metric
//! against the number of connections).
//!
//! SVG because it is text: it diffs, it is small, a Markdown viewer shows it inline, and
//! plotters writes it without a font library (the viewer renders the text). Colours are fixed
//! per position, so the same broker keeps its colour from one chart to the next when the
//! series come in the same order.

use std::ops::Range;
use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

/// The "Dark2" qualitative palette (ColorBrewer): tells 8 series apart, in print and for most
/// colour-blind readers.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x1b, 0x9e, 0x77),
    RGBColor(0xd9, 0x5f, 0x02),
    RGBColor(0x75, 0x70, 0xb3),
    RGBColor(0xe7, 0x29, 0x8a),
    RGBColor(0x66, 0xa6, 0x1e),
    RGBColor(0xe6, 0xab, 0x02),
    RGBColor(0xa6, 0x76, 0x1d),
    RGBColor(0x66, 0x66, 0x66),
];

/// The colour of the `i`-th series.
fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The height of one group of bars on the bar chart's (integer) axis.
const SPAN: i32 = 100;

/// One group of bars: a scenario, with each broker's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BarGroup {
    /// Shown beside the group.
    pub(crate) label: String,
    /// (series name, value) pairs; a series missing from a group leaves its slot empty.
    pub(crate) bars: Vec<(String, f64)>,
}

/// Every series name, in the order first seen, so each keeps one colour and one slot.
fn series_names(groups: &[BarGroup]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (name, _) in groups.iter().flat_map(|g| &g.bars) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// A range from a power of ten at or below `low` to one at or above `high`, for a log axis
/// that starts and ends on a labelled tick. Both must be positive.
fn decades(low: f64, high: f64) -> Range<f64> {
    let low = 10f64.powf(low.log10().floor());
    let high = 10f64.powf(high.log10().ceil());
    low..if high > low { high } else { low * 10.0 }
}

/// Turns a plotters error (generic over the backend) into ours, naming the file.
fn drawing_error<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| anyhow!("cannot draw {}: {e}", path.display())
}

/// Draws a horizontal grouped bar chart to `path`: groups top to bottom in the given order,
/// within a group one bar per series, values on a logarithmic axis (the brokers' throughputs
/// differ by orders of magnitude). Non-positive values cannot be shown on it and are left out.
pub(crate) fn bar_chart(
    path: &Path,
    title: &str,
    value_label: &str,
    groups: &[BarGroup],
) -> Result<()> {
    let names = series_names(groups);
    let values = || groups.iter().flat_map(|g| &g.bars).map(|b| b.1);
    let low = values().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let high = values().fold(0.0, f64::max);
    let x_range = if low.is_finite() {
        decades(low, high)
    } else {
        1.0..10.0
    };
    let slots = names.len().max(1);
    let height = (120 + groups.len() * (slots * 14 + 16)).min(4000) as u32;
    let longest = groups.iter().map(|g| g.label.chars().count()).max();
    let label_width = (longest.unwrap_or(10) * 7 + 20).min(420) as u32;
    let err = drawing_error(path);

    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    // Group i is centred on y = 100 (n - 1 - i), so the first group is on top; the key points
    // put one label on each centre and nowhere else. Integer coordinates, because plotters
    // only formats labels of key points it did not choose itself on integer axes.
    let n = groups.len() as i32;
    let centres: Vec<i32> = (0..n).map(|i| i * SPAN).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        // Room for the last tick's label, which is centred on the right edge.
        .margin_right(40)
        .x_label_area_size(40)
        .y_label_area_size(label_width)
        .build_cartesian_2d(
            x_range.clone().log_scale(),
            (-SPAN / 2..n * SPAN - SPAN / 2).with_key_points(centres),
        )
        .map_err(&err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(value_label)
        .y_label_formatter(&|y| {
            let i = n - 1 - y.div_euclid(SPAN);
            usize::try_from(i)
                .ok()
                .and_then(|i| groups.get(i))
                .map_or_else(String::new, |g| g.label.clone())
        })
        .x_label_formatter(&|x| crate::report::format_value(Some(*x), 0))
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(&err)?;
    // Each group's bars share 80 % of its span; the rest is the gap to the next group.
    let bar = SPAN * 4 / 5 / slots as i32;
    for (s, name) in names.iter().enumerate() {
        let fill = colour(s).filled();
        let bars = groups.iter().zip(0..).filter_map(|(group, i)| {
            let value = group.bars.iter().find(|b| &b.0 == name)?.1;
            let top = (n - 1 - i) * SPAN + SPAN * 2 / 5 - s as i32 * bar;
            (value > 0.0).then(|| Rectangle::new([(x_range.start, top - bar), (value, top)], fill))
        });
        chart
            .draw_series(bars)
            .map_err(&err)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], fill));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// Draws a line chart to `path`: one line (with a dot on each point) per series, in the
/// given order, x on a logarithmic axis when `log_x` (say, for connection counts that double)
/// and y from zero. Points with a non-positive x are left out of a logarithmic chart.
pub(crate) fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_x: bool,
) -> Result<()> {
    let points = || series.iter().flat_map(|(_, p)| p).copied();
    let usable = |x: f64| x.is_finite() && (!log_x || x > 0.0);
    let xs = || points().map(|p| p.0).filter(|x| usable(*x));
    let (x_low, x_high) = (xs().fold(f64::INFINITY, f64::min), xs().fold(0.0, f64::max));
    let y_high = points().map(|p| p.1).fold(0.0, f64::max);
    let y_range = 0.0..if y_high > 0.0 { y_high * 1.1 } else { 1.0 };
    let lines: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, p)| {
            (
                name.clone(),
                p.iter().copied().filter(|p| usable(p.0)).collect(),
            )
        })
        .collect();
    let labels = (title, x_label, y_label);
    if !x_low.is_finite() {
        // No point to draw: still an honest (empty) chart rather than no file.
        return draw_lines(path, labels, 0.0..1.0, y_range, &lines);
    }
    if log_x {
        let x_range = decades(x_low, x_high);
        draw_lines(path, labels, x_range.log_scale(), y_range, &lines)
    } else {
        let x_range = x_low..if x_high > x_low { x_high } else { x_low + 1.0 };
        draw_lines(path, labels, x_range, y_range, &lines)
    }
}

/// [`line_chart`]'s drawing, for either kind of x axis.
fn draw_lines<X>(
    path: &Path,
    (title, x_label, y_label): (&str, &str, &str),
    x_range: X,
    y_range: Range<f64>,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let err = drawing_error(path);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range, y_range)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(&err)?;
    for (i, (name, points)) in series.iter().enumerate() {
        let style = colour(i).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))
            .map_err(&err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], style));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new(*p, 3, colour(i).filled())),
            )
            .map_err(&err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checks a browser's parser would fail first: one root `svg` element, closed, with
    /// the chart's texts escaped inside it.
    fn assert_svg(text: &str, expected: &[&str]) {
        let text = text.trim();
        assert!(text.starts_with("<svg"), "{text}");
        assert!(text.ends_with("</svg>"), "{text}");
        assert_eq!(text.matches("<svg").count(), 1, "{text}");
        for want in expected {
            assert!(text.contains(want), "{want} missing from {text}");
        }
    }

    #[test]
    fn line_chart_writes_an_svg_with_every_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines.svg");
        let series = vec![
            (
                "Aviary".to_owned(),
                vec![(10.0, 1.0), (100.0, 2.5), (1000.0, 3.0)],
            ),
            ("Mosquitto & co".to_owned(), vec![(10.0, 2.0), (100.0, 4.0)]),
        ];
        line_chart(&path, "RSS <growth>", "connections", "MiB", &series, true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_svg(
            &text,
            &[
                "RSS &lt;growth&gt;",
                "Mosquitto &amp; co",
                "Aviary",
                "<polyline",
                "<circle",
            ],
        );
        line_chart(&path, "linear", "x", "y", &series, false).unwrap();
        assert_svg(&std::fs::read_to_string(&path).unwrap(), &["linear"]);
        // Nothing drawable still makes a file: an empty chart, not an error.
        line_chart(&path, "empty", "x", "y", &[], true).unwrap();
        assert_svg(&std::fs::read_to_string(&path).unwrap(), &["empty"]);
    }

    #[test]
    fn bar_chart_writes_a_bar_per_value_and_a_label_per_group() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bars.svg");
        let groups = vec![
            BarGroup {
                label: "p2p TCP QoS 0".to_owned(),
                bars: vec![
                    ("Aviary".to_owned(), 200_000.0),
                    ("Aedes".to_owned(), 20_000.0),
                ],
            },
            BarGroup {
                label: "fan-in TCP QoS 1".to_owned(),
                bars: vec![("Aedes".to_owned(), 5_000.0), ("rumqttd".to_owned(), 0.0)],
            },
        ];
        bar_chart(&path, "Throughput", "msg/s", &groups).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_svg(
            &text,
            &["Throughput", "p2p TCP QoS 0", "fan-in TCP QoS 1", "rumqttd"],
        );
        // Three positive values, plus a legend swatch per series (three) and the background.
        assert!(text.matches("<rect").count() >= 6, "{text}");
    }

    #[test]
    fn log_axes_start_and_end_on_powers_of_ten() {
        assert_eq!(decades(3_000.0, 250_000.0), 1_000.0..1_000_000.0);
        assert_eq!(decades(1_000.0, 1_000.0), 1_000.0..10_000.0);
        let names = series_names(&[
            BarGroup {
                label: String::new(),
                bars: vec![("b".to_owned(), 1.0)],
            },
            BarGroup {
                label: String::new(),
                bars: vec![("a".to_owned(), 1.0), ("b".to_owned(), 2.0)],
            },
        ]);
        assert_eq!(names, ["b", "a"]);
    }
}
