//! The trend chart: pass rate and mean score of successive runs as an inline SVG line chart,
//! drawn here so the report needs no charting library and renders with scripts off.

use std::fmt::Write;

use super::escape::esc;

/// One run on the trend chart.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    /// Run name (x-axis label).
    pub label: String,
    /// Pass rate in `0..=1`.
    pub pass_rate: f64,
    /// Mean score in `0..=1`.
    pub mean_score: f64,
}

const W: f64 = 720.0;
const H: f64 = 240.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 52.0;

fn x_of(i: usize, n: usize) -> f64 {
    if n <= 1 {
        LEFT + (W - LEFT - RIGHT) / 2.0
    } else {
        LEFT + (W - LEFT - RIGHT) * i as f64 / (n - 1) as f64
    }
}

fn y_of(v: f64) -> f64 {
    TOP + (H - TOP - BOTTOM) * (1.0 - v.clamp(0.0, 1.0))
}

/// An SVG line chart of `points` in order (oldest first): one line for the pass rate, one for
/// the mean score, a labelled point per run with a `<title>` tooltip, a 0–100 % axis.
pub fn trend_svg(points: &[TrendPoint]) -> String {
    let n = points.len();
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"trend\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"trend-title\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title id=\"trend-title\">Pass rate and mean score \
         over {n} runs</title>"
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = y_of(tick);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.0}%</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            tick * 100.0
        );
    }
    type Value = fn(&TrendPoint) -> f64;
    let series: [(&str, Value); 2] = [("pass", |p| p.pass_rate), ("mean", |p| p.mean_score)];
    for (class, value) in series {
        let coords: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x_of(i, n), y_of(value(p))))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"line {class}\" points=\"{}\"/>",
            coords.join(" ")
        );
        for (i, p) in points.iter().enumerate() {
            let _ = write!(
                out,
                "<circle class=\"dot {class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{}: {} {:.3}</title></circle>",
                x_of(i, n),
                y_of(value(p)),
                esc(&p.label),
                if class == "pass" {
                    "pass rate"
                } else {
                    "mean score"
                },
                value(p)
            );
        }
    }
    // Label every run when they fit, else the first, the last and every few in between.
    let every = n.div_ceil(8).max(1);
    for (i, p) in points.iter().enumerate() {
        if i % every != 0 && i + 1 != n {
            continue;
        }
        let label: String = p.label.chars().take(18).collect();
        // The outermost labels grow inwards so they stay inside the chart.
        let anchor = match (i, n) {
            (_, 1) => "middle",
            (0, _) => "start",
            (i, n) if i + 1 == n => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            x_of(i, n),
            H - BOTTOM + 18.0,
            esc(&label)
        );
    }
    let _ = write!(
        out,
        "<g class=\"legend\"><rect class=\"pass\" x=\"{LEFT}\" y=\"{:.1}\" width=\"12\" height=\"4\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\">pass rate</text>\
         <rect class=\"mean\" x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"4\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\">mean score</text></g></svg>",
        H - 12.0,
        LEFT + 18.0,
        H - 8.0,
        LEFT + 110.0,
        H - 12.0,
        LEFT + 128.0,
        H - 8.0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_point_per_run_per_series_scaled_to_the_axis() {
        let points = vec![
            TrendPoint {
                label: "a".into(),
                pass_rate: 0.0,
                mean_score: 0.5,
            },
            TrendPoint {
                label: "b".into(),
                pass_rate: 1.0,
                mean_score: 0.5,
            },
        ];
        let svg = trend_svg(&points);
        assert_eq!(svg.matches("<circle").count(), 4);
        // pass rate 0 sits on the bottom grid line, 1 on the top one.
        assert!(svg.contains(&format!(
            "points=\"{LEFT:.1},{:.1} {:.1},{TOP:.1}\"",
            H - BOTTOM,
            W - RIGHT
        )));
    }
}
