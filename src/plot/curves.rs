//! Line charts over epochs: learning curves per node (test accuracy and loss; the ensemble as a
//! black dashed line), peer agreement and pairwise KL, and mean ± std over seeds.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::{Chart, FONT, color, drawing_error};
use crate::results::MetricRow;

/// One line of a panel.
#[derive(Clone, Debug)]
pub struct Line {
    /// Legend text (the node id as in the experiment file).
    pub label: String,
    /// Colour.
    pub color: RGBColor,
    /// Dashed instead of solid.
    pub dashed: bool,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
    /// Optional (x, low, high) band drawn behind the line (± std over seeds).
    pub band: Vec<(f64, f64, f64)>,
}

/// One panel: a caption that names the quantity and its unit, and lines.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Caption, e.g. "test accuracy (%)".
    pub caption: String,
    /// Lines.
    pub lines: Vec<Line>,
    /// Where the legend goes (away from where the curves usually are).
    pub legend: SeriesLabelPosition,
}

/// Panels stacked vertically, sharing the x axis (epochs across stages).
#[derive(Clone, Debug)]
pub struct Curves {
    /// Title over the first panel.
    pub title: String,
    /// Panels.
    pub panels: Vec<Panel>,
    /// Stage boundaries: (x where the stage starts, stage name).
    pub stages: Vec<(f64, String)>,
}

impl Chart for Curves {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, plotters::coord::Shift>) -> Result<(), String> {
        let (top, rest) = root.split_vertically(40);
        top.titled(&self.title, (FONT, 22)).map_err(drawing_error)?;
        let areas = rest.split_evenly((self.panels.len(), 1));
        for (panel, area) in self.panels.iter().zip(&areas) {
            let pts = || panel.lines.iter().flat_map(|l| l.points.iter().copied().chain(l.band.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)])));
            let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
            for (x, y) in pts().filter(|p| p.1.is_finite()) {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
            if x0 > x1 {
                area.draw(&Text::new(format!("{}: no data", panel.caption), (20, 20), (FONT, 16))).map_err(drawing_error)?;
                continue;
            }
            if x1 - x0 < 1e-9 {
                x1 = x0 + 1.0;
            }
            let pad = ((y1 - y0) * 0.05).max(1e-6);
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.caption, (FONT, 17))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
                .map_err(drawing_error)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .x_label_formatter(&|x| format!("{x:.0}"))
                .label_style((FONT, 13))
                .axis_desc_style((FONT, 14))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(drawing_error)?;
            for (x, name) in &self.stages {
                chart
                    .draw_series(DashedLineSeries::new(vec![(*x, y0 - pad), (*x, y1 + pad)], 4, 4, RGBColor(150, 150, 150).stroke_width(1)))
                    .map_err(drawing_error)?;
                chart
                    .draw_series(std::iter::once(Text::new(format!(" {name}"), (*x, y1 + pad), (FONT, 12).into_font().color(&RGBColor(90, 90, 90)))))
                    .map_err(drawing_error)?;
            }
            for l in &panel.lines {
                if !l.band.is_empty() {
                    let mut poly: Vec<(f64, f64)> = l.band.iter().map(|&(x, _, hi)| (x, hi)).collect();
                    poly.extend(l.band.iter().rev().map(|&(x, lo, _)| (x, lo)));
                    chart.draw_series(std::iter::once(Polygon::new(poly, l.color.mix(0.2).filled()))).map_err(drawing_error)?;
                }
                let style = l.color.stroke_width(2);
                let pts: Vec<(f64, f64)> = l.points.iter().copied().filter(|p| p.1.is_finite()).collect();
                let legend_color = l.color;
                let dashed = l.dashed;
                let anno = if l.dashed {
                    chart.draw_series(DashedLineSeries::new(pts, 6, 4, style)).map_err(drawing_error)?
                } else {
                    chart.draw_series(LineSeries::new(pts, style)).map_err(drawing_error)?
                };
                anno.label(l.label.clone()).legend(move |(x, y)| {
                    let s = legend_color.stroke_width(2);
                    if dashed { PathElement::new(vec![(x, y), (x + 7, y)], s) } else { PathElement::new(vec![(x, y), (x + 18, y)], s) }
                });
            }
            chart
                .configure_series_labels()
                .label_font((FONT, 13))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .position(panel.legend.clone())
                .draw()
                .map_err(drawing_error)?;
        }
        Ok(())
    }
}

/// Epoch offsets of the stages, in order of appearance: x = offset(stage) + epoch.
pub fn stage_offsets(rows: &[MetricRow]) -> Vec<(String, f64)> {
    let mut order: Vec<String> = Vec::new();
    let mut last: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows {
        if !order.contains(&r.stage) {
            order.push(r.stage.clone());
        }
        let e = last.entry(r.stage.clone()).or_default();
        *e = (*e).max(r.epoch);
    }
    let mut off = 0.0;
    order
        .into_iter()
        .map(|s| {
            let o = off;
            off += last[&s] as f64;
            (s, o)
        })
        .collect()
}

/// Node ids in order of first appearance, without the `ensemble` and `cohort` pseudo-nodes.
pub fn node_order(rows: &[MetricRow]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in rows {
        if r.epoch > 0 && r.node != "ensemble" && r.node != "cohort" && !v.contains(&r.node) {
            v.push(r.node.clone());
        }
    }
    v
}

fn series(rows: &[MetricRow], offsets: &[(String, f64)], node: &str, split: &str, metric: &str, scale: f64) -> Vec<(f64, f64)> {
    let off = |s: &str| offsets.iter().find(|(n, _)| n == s).map_or(0.0, |(_, o)| *o);
    rows.iter()
        .filter(|r| r.epoch > 0 && r.node == node && r.split == split && r.metric == metric)
        .map(|r| (off(&r.stage) + r.epoch as f64, r.value * scale))
        .collect()
}

fn node_lines(rows: &[MetricRow], offsets: &[(String, f64)], nodes: &[String], split: &str, metric: &str, scale: f64) -> Vec<Line> {
    let mut lines: Vec<Line> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| Line { label: n.clone(), color: color(i), dashed: false, points: series(rows, offsets, n, split, metric, scale), band: vec![] })
        .filter(|l| !l.points.is_empty())
        .collect();
    let ens = series(rows, offsets, "ensemble", split, metric, scale);
    if !ens.is_empty() {
        lines.push(Line { label: "ensemble".into(), color: BLACK, dashed: true, points: ens, band: vec![] });
    }
    lines
}

fn stage_marks(offsets: &[(String, f64)]) -> Vec<(f64, String)> {
    if offsets.len() < 2 {
        return vec![];
    }
    offsets.iter().map(|(s, o)| (*o + 0.5, s.clone())).collect()
}

/// Learning curves of one run: test accuracy (%) and test loss per node and for the ensemble.
pub fn learning_curves(title: &str, rows: &[MetricRow]) -> Curves {
    let offsets = stage_offsets(rows);
    let nodes = node_order(rows);
    Curves {
        title: title.into(),
        panels: vec![
            Panel {
                caption: "test accuracy (%)".into(),
                lines: node_lines(rows, &offsets, &nodes, "test", "accuracy", 100.0),
                legend: SeriesLabelPosition::LowerRight,
            },
            Panel {
                caption: "test loss (cross-entropy, nats)".into(),
                lines: node_lines(rows, &offsets, &nodes, "test", "loss", 1.0),
                legend: SeriesLabelPosition::UpperRight,
            },
        ],
        stages: stage_marks(&offsets),
    }
}

/// Agreement between peers (% equal predictions) and their mean pairwise KL, on the test split;
/// `None` when no stage trained two or more nodes.
pub fn cohort_curves(title: &str, rows: &[MetricRow]) -> Option<Curves> {
    let offsets = stage_offsets(rows);
    let agree = series(rows, &offsets, "cohort", "test", "agreement", 100.0);
    if agree.is_empty() {
        return None;
    }
    let kl = series(rows, &offsets, "cohort", "test", "pairwise_kl", 1.0);
    let line = |label: &str, points| Line { label: label.into(), color: color(0), dashed: false, points, band: vec![] };
    Some(Curves {
        title: title.into(),
        panels: vec![
            Panel {
                caption: "agreement between peers, test (% equal predictions)".into(),
                lines: vec![line("agreement", agree)],
                legend: SeriesLabelPosition::LowerRight,
            },
            Panel {
                caption: "mean pairwise KL(p_i ‖ p_j) between peers, test (nats)".into(),
                lines: vec![line("pairwise KL", kl)],
                legend: SeriesLabelPosition::UpperRight,
            },
        ],
        stages: stage_marks(&offsets),
    })
}

/// Each node's training terms per epoch (the `loss:<term>` rows: the KL term beside the CE term)
/// and, where a term reports it, OKDDip's self-attention α_ii and the attention's entropy;
/// `None` for a run without term rows (made before they were recorded).
pub fn term_curves(title: &str, rows: &[MetricRow]) -> Option<Curves> {
    let offsets = stage_offsets(rows);
    let lines = |prefix: &str| -> Vec<Line> {
        let mut keys: Vec<(String, String)> = Vec::new();
        for r in rows.iter().filter(|r| r.split == "train" && r.metric.starts_with(prefix)) {
            if !keys.iter().any(|(n, m)| *n == r.node && *m == r.metric) {
                keys.push((r.node.clone(), r.metric.clone()));
            }
        }
        keys.iter()
            .enumerate()
            .map(|(i, (node, metric))| Line {
                label: format!("{node}: {}", &metric[prefix.len()..]),
                color: color(i),
                dashed: false,
                points: series(rows, &offsets, node, "train", metric, 1.0),
                band: vec![],
            })
            .collect()
    };
    let terms = lines("loss:");
    if terms.is_empty() {
        return None;
    }
    let mut panels =
        vec![Panel { caption: "training terms, weight · ramp · loss (epoch mean)".into(), lines: terms, legend: SeriesLabelPosition::UpperRight }];
    let alpha = lines("self_attention:");
    if !alpha.is_empty() {
        panels.push(Panel {
            caption: "OKDDip: mean self-attention α_ii (1 = the target is the peer itself)".into(),
            lines: alpha,
            legend: SeriesLabelPosition::LowerRight,
        });
        panels.push(Panel {
            caption: "OKDDip: entropy of the attention (nats)".into(),
            lines: lines("attention_entropy:"),
            legend: SeriesLabelPosition::UpperRight,
        });
    }
    Some(Curves { title: title.into(), panels, stages: stage_marks(&offsets) })
}

/// Mean ± std over several runs (seeds) of the test accuracy per node and for the ensemble.
pub fn seed_curves(title: &str, runs: &[Vec<MetricRow>]) -> Curves {
    let offsets = stage_offsets(&runs[0]);
    let mut nodes = node_order(&runs[0]);
    nodes.push("ensemble".into());
    let mut lines = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let per_run: Vec<Vec<(f64, f64)>> = runs.iter().map(|r| series(r, &offsets, n, "test", "accuracy", 100.0)).collect();
        let len = per_run.iter().map(Vec::len).min().unwrap_or(0);
        if len == 0 {
            continue;
        }
        let (mut points, mut band) = (Vec::new(), Vec::new());
        for k in 0..len {
            let vals: Vec<f64> = per_run.iter().map(|p| p[k].1).collect();
            let (m, sd) = crate::stats::mean_sd(&vals);
            points.push((per_run[0][k].0, m));
            band.push((per_run[0][k].0, m - sd, m + sd));
        }
        let ensemble = n == "ensemble";
        lines.push(Line {
            label: format!("{n} (mean ± std, {} seeds)", runs.len()),
            color: if ensemble { BLACK } else { color(i) },
            dashed: ensemble,
            points,
            band,
        });
    }
    Curves {
        title: title.into(),
        panels: vec![Panel { caption: "test accuracy (%)".into(), lines, legend: SeriesLabelPosition::LowerRight }],
        stages: stage_marks(&offsets),
    }
}
