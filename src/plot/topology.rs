//! The topology diagram: nodes in columns by the stage that first trains them (fixed nodes
//! first), arrows from sources to targets labelled with the loss kind, temperature and weight,
//! and each node's label terms written under it.

use plotters::prelude::*;

use super::{Chart, FONT, color, drawing_error};
use crate::config::Plan;
use crate::losses::Targets;

/// A drawable topology, built from a run's resolved plan.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Title.
    pub title: String,
    /// Column headings.
    pub columns: Vec<String>,
    /// (id, architecture, column, frozen).
    pub nodes: Vec<(String, String, usize, bool)>,
    /// (from, to, label) between node indices.
    pub edges: Vec<(usize, usize, String)>,
    /// Label terms per node (cross-entropy with its weight).
    pub notes: Vec<Vec<String>>,
}

impl Topology {
    /// The topology of `plan`.
    pub fn from_plan(plan: &Plan) -> Self {
        let first_stage = |n: usize| plan.stages.iter().position(|s| s.train.contains(&n));
        let has_fixed = plan.nodes.iter().enumerate().any(|(i, _)| first_stage(i).is_none());
        let shift = usize::from(has_fixed);
        let mut columns: Vec<String> = Vec::new();
        if has_fixed {
            columns.push("fixed".into());
        }
        columns.extend(plan.stages.iter().enumerate().map(|(k, s)| format!("stage {}: {}", k + 1, s.name)));
        let nodes = plan.nodes.iter().enumerate().map(|(i, n)| (n.id.clone(), n.model.to_string(), first_stage(i).map_or(0, |s| s + shift), n.fixed)).collect();
        let mut edges = Vec::new();
        let mut notes = vec![Vec::new(); plan.nodes.len()];
        for st in &plan.stages {
            for t in &st.terms {
                let head = t.head.map(|m| format!(" → head{m}")).unwrap_or_default();
                let label = format!("{} ×{}{head}", t.loss.label(), t.weight);
                // terms without a source (labels, the node's own output) are notes in its box
                if t.from.is_empty() {
                    let note = if t.loss.kind().reads().targets == Targets::Labels { format!("CE ×{}{head}", t.weight) } else { label.clone() };
                    if !notes[t.to].contains(&note) {
                        notes[t.to].push(note);
                    }
                    continue;
                }
                for &f in &t.from {
                    if !edges.iter().any(|(a, b, l): &(usize, usize, String)| *a == f && *b == t.to && *l == label) {
                        edges.push((f, t.to, label.clone()));
                    }
                }
            }
        }
        Self { title: format!("{}: topology", plan.name), columns, nodes, edges, notes }
    }

    fn positions(&self, w: i32, h: i32) -> Vec<(i32, i32)> {
        let ncol = self.columns.len().max(1) as i32;
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, (_, _, col, _))| {
                let same: Vec<usize> = self.nodes.iter().enumerate().filter(|(_, n)| n.2 == *col).map(|(j, _)| j).collect();
                let k = same.iter().position(|&j| j == i).unwrap_or(0) as i32;
                let x = (2 * *col as i32 + 1) * w / (2 * ncol);
                let y = 90 + (2 * k + 1) * (h - 120) / (2 * same.len() as i32);
                (x, y)
            })
            .collect()
    }
}

/// Half width and half height of a node's box holding `lines` lines of text.
fn half_size(lines: &[String]) -> (i32, i32) {
    let w = lines.iter().map(|l| 7 * l.chars().count() as i32).max().unwrap_or(40).clamp(60, 260);
    (w / 2 + 10, 8 + 8 * lines.len() as i32)
}

/// Where the ray from a box centre in direction (ux, uy) leaves the box.
fn exit(center: (i32, i32), half: (i32, i32), ux: f64, uy: f64) -> (f64, f64) {
    let tx = if ux.abs() > 1e-9 { half.0 as f64 / ux.abs() } else { f64::MAX };
    let ty = if uy.abs() > 1e-9 { half.1 as f64 / uy.abs() } else { f64::MAX };
    let t = tx.min(ty);
    (center.0 as f64 + ux * t, center.1 as f64 + uy * t)
}

impl Chart for Topology {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, plotters::coord::Shift>) -> Result<(), String> {
        let (w, h) = root.dim_in_pixel();
        let (w, h) = (w as i32, h as i32);
        root.draw(&Text::new(self.title.clone(), (16, 12), (FONT, 22))).map_err(drawing_error)?;
        let ncol = self.columns.len().max(1) as i32;
        for (c, name) in self.columns.iter().enumerate() {
            let x = (2 * c as i32 + 1) * w / (2 * ncol);
            root.draw(&Text::new(name.clone(), (x - 7 * name.chars().count() as i32 / 2, 52), (FONT, 15).into_font().color(&RGBColor(90, 90, 90))))
                .map_err(drawing_error)?;
        }
        let pos = self.positions(w, h);
        let texts: Vec<Vec<String>> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, (id, model, _, frozen))| {
                let mut v = vec![id.clone(), model.clone()];
                if *frozen {
                    v.push("frozen".into());
                }
                v.extend(self.notes[i].iter().cloned());
                v
            })
            .collect();
        let halves: Vec<(i32, i32)> = texts.iter().map(|t| half_size(t)).collect();
        let grey = RGBColor(70, 70, 70);
        let arrow_head = |root: &DrawingArea<DB, plotters::coord::Shift>, tip: (i32, i32), ux: f64, uy: f64| {
            let p = |s: f64| ((tip.0 as f64 - ux * 12.0 - s * uy * 6.0) as i32, (tip.1 as f64 - uy * 12.0 + s * ux * 6.0) as i32);
            root.draw(&Polygon::new(vec![tip, p(1.0), p(-1.0)], grey.filled())).map_err(drawing_error)
        };
        let mut detours = 0;
        for (k, (f, t, label)) in self.edges.iter().enumerate() {
            // a pair of opposite edges with the same label (mutual learning) is one double arrow
            let twin = self.edges.iter().position(|(f2, t2, l2)| f2 == t && t2 == f && l2 == label);
            if twin.is_some_and(|j| j < k) {
                continue;
            }
            let (a, b) = (pos[*f], pos[*t]);
            let text_w = 7 * label.chars().count() as i32;
            let same_column = self.nodes[*f].2 == self.nodes[*t].2;
            let between = self
                .nodes
                .iter()
                .enumerate()
                .any(|(j, n)| j != *f && j != *t && n.2 == self.nodes[*f].2 && (pos[j].1 - a.1).signum() == (b.1 - pos[j].1).signum());
            if same_column && between {
                // route around the nodes in between, on the right of the column (sources from
                // earlier stages arrive from the left)
                detours += 1;
                let x = a.0 + halves[*f].0.max(halves[*t].0) + 24 * detours;
                let (sa, sb) = ((a.0 + halves[*f].0, a.1), (b.0 + halves[*t].0, b.1));
                root.draw(&PathElement::new(vec![sa, (x, a.1), (x, b.1), sb], grey.stroke_width(2))).map_err(drawing_error)?;
                arrow_head(root, sb, -1.0, 0.0)?;
                if twin.is_some() {
                    arrow_head(root, sa, -1.0, 0.0)?;
                }
                root.draw(&Text::new(label.clone(), (x + 6, (a.1 + b.1) / 2 - 7), (FONT, 13))).map_err(drawing_error)?;
                continue;
            }
            let (dx, dy) = ((b.0 - a.0) as f64, (b.1 - a.1) as f64);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            let (ux, uy) = (dx / len, dy / len);
            // opposite edges with different labels are offset sideways
            let side = if twin.is_none() && self.edges.iter().any(|(f2, t2, _)| f2 == t && t2 == f) { 8.0 } else { 0.0 };
            let (ox, oy) = (-uy * side, ux * side);
            let s0 = exit(a, halves[*f], ux, uy);
            let e0 = exit(b, halves[*t], -ux, -uy);
            let start = ((s0.0 + ux * 2.0 + ox) as i32, (s0.1 + uy * 2.0 + oy) as i32);
            let end = ((e0.0 - ux * 2.0 + ox) as i32, (e0.1 - uy * 2.0 + oy) as i32);
            root.draw(&PathElement::new(vec![start, end], grey.stroke_width(2))).map_err(drawing_error)?;
            arrow_head(root, end, ux, uy)?;
            if twin.is_some() {
                arrow_head(root, start, -ux, -uy)?;
            }
            let mid = ((start.0 + end.0) / 2, (start.1 + end.1) / 2);
            // left of steep lines, above flat ones
            let spot = if uy.abs() > 0.7 { (mid.0 - text_w - 8, mid.1 - 7) } else { (mid.0 - text_w / 2, mid.1 - 20) };
            root.draw(&Text::new(label.clone(), spot, (FONT, 13))).map_err(drawing_error)?;
        }
        for (i, lines) in texts.iter().enumerate() {
            let (x, y) = pos[i];
            let (hw, hh) = halves[i];
            let c = color(i);
            let frozen = self.nodes[i].3;
            root.draw(&Rectangle::new([(x - hw, y - hh), (x + hw, y + hh)], WHITE.filled())).map_err(drawing_error)?;
            root.draw(&Rectangle::new([(x - hw, y - hh), (x + hw, y + hh)], c.mix(0.22).filled())).map_err(drawing_error)?;
            root.draw(&Rectangle::new([(x - hw, y - hh), (x + hw, y + hh)], c.stroke_width(if frozen { 1 } else { 3 }))).map_err(drawing_error)?;
            for (k, l) in lines.iter().enumerate() {
                let style = if k == 0 { (FONT, 16).into_font().color(&BLACK) } else { (FONT, 12).into_font().color(&grey) };
                let tw = if k == 0 { 9 } else { 7 } * l.chars().count() as i32;
                root.draw(&Text::new(l.clone(), (x - tw / 2, y - hh + 6 + 16 * k as i32), style)).map_err(drawing_error)?;
            }
        }
        Ok(())
    }
}
