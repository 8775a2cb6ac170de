//! `cohort compare`: mean ± std over seeds of the final and best test accuracy per node and for
//! the ensemble, for several experiments side by side, as a Markdown table and a grouped bar
//! chart with error bars. Runs that are missing, interrupted or diverged are listed, not dropped
//! silently.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::{Chart, FONT, color, drawing_error};
use crate::error::Error;
use crate::results::{ExperimentDir, RunDir, RunStatus, Summary, read_summary};

/// The complete runs of one experiment folder and what is wrong with the others.
#[derive(Clone, Debug)]
pub struct ExperimentRuns {
    /// Experiment name (folder name).
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
    /// Summaries of the complete runs.
    pub complete: Vec<Summary>,
    /// One line per run that could not be used.
    pub problems: Vec<String>,
}

/// Reads the runs under `dir`: either an experiment folder holding `seed-*/` run folders, or a
/// single run folder.
pub fn collect(dir: &Path) -> Result<ExperimentRuns, Error> {
    let single = RunDir::at(dir);
    let (name, runs) = if single.is_run() {
        (single.experiment().name(), vec![single])
    } else {
        let experiment = ExperimentDir::at(dir);
        (experiment.name(), experiment.runs()?)
    };
    let mut out = ExperimentRuns { name, dir: dir.to_path_buf(), complete: Vec::new(), problems: Vec::new() };
    if runs.is_empty() {
        out.problems.push(format!("{}: no runs found (expected seed-*/ folders written by `cohort run`)", dir.display()));
    }
    for r in runs {
        let run = r.name();
        match read_summary(&r.summary()) {
            Ok(s) if s.status == RunStatus::Complete => out.complete.push(s),
            Ok(s) => {
                let d = s.diverged.as_ref().map(|d| format!(" (node {} in stage {}, epoch {}, step {})", d.node, d.stage, d.epoch, d.step)).unwrap_or_default();
                out.problems.push(format!("{}/{run}: {}{d}; excluded", out.name, s.status));
            }
            Err(_) => {
                out.problems.push(format!("{}/{run}: no summary.json (interrupted or still running; `cohort run --resume` completes it); excluded", out.name))
            }
        }
    }
    Ok(out)
}

/// Mean, sample standard deviation and count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for one value.
    pub std: f64,
    /// Number of values.
    pub n: usize,
}

impl Stat {
    /// Statistics of `v` (non-empty).
    pub fn of(v: &[f64]) -> Self {
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let std = if n > 1 { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
        Self { mean, std, n }
    }
}

/// One row of the comparison table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Experiment.
    pub experiment: String,
    /// Node id or `ensemble`.
    pub node: String,
    /// Final test accuracy (fraction).
    pub last: Stat,
    /// Best test accuracy over epochs (fraction; selected on the test split, optimistic).
    pub best: Stat,
    /// Test accuracy at the epoch of the best validation accuracy (model selection without the
    /// test split), when every run of the experiment held out a validation split.
    pub selected: Option<Stat>,
}

/// Rows for the nodes of each experiment's last stage (the ensemble last).
pub fn rows(exps: &[ExperimentRuns]) -> Vec<Row> {
    let mut out = Vec::new();
    for x in exps {
        let Some(first) = x.complete.first() else { continue };
        // every node, with its metrics from the last stage that trained or evaluated it (a
        // teacher of a chain appears once, with its own stage's numbers); the ensemble of
        // the final stage last
        let mut nodes: Vec<(String, String)> = Vec::new();
        for st in &first.stages {
            for n in st.nodes.keys().filter(|n| *n != "cohort" && *n != "ensemble") {
                match nodes.iter_mut().find(|(m, _)| m == n) {
                    Some(e) => e.1 = st.name.clone(),
                    None => nodes.push((n.clone(), st.name.clone())),
                }
            }
        }
        if let Some(last) = first.stages.last().filter(|st| st.nodes.contains_key("ensemble")) {
            nodes.push(("ensemble".into(), last.name.clone()));
        }
        for (node, stage) in nodes {
            let pick = |f: &dyn Fn(&Summary) -> Option<f64>| x.complete.iter().filter_map(f).collect::<Vec<f64>>();
            let find = |s: &Summary| s.stages.iter().find(|st| st.name == stage).and_then(|st| st.nodes.get(&node)).cloned();
            let last = pick(&|s| find(s).and_then(|n| n.last.get("test_accuracy").copied()));
            let best = pick(&|s| find(s).and_then(|n| n.best_test.map(|b| b.accuracy)));
            let selected = pick(&|s| find(s).and_then(|n| n.best_validation.map(|b| b.test_accuracy)));
            if last.is_empty() {
                continue;
            }
            let selected = (selected.len() == last.len()).then(|| Stat::of(&selected));
            out.push(Row { experiment: x.name.clone(), node, last: Stat::of(&last), best: Stat::of(&best), selected });
        }
    }
    out
}

/// The Markdown table, followed by the list of excluded runs.
///
/// With a validation split (every row has [`Row::selected`] or "–"), a column gives the test
/// accuracy at the epoch of the best validation accuracy, before the optimistic best-on-test.
pub fn markdown(rows: &[Row], exps: &[ExperimentRuns]) -> String {
    let pct = |s: &Stat| format!("{:.2} ± {:.2}", 100.0 * s.mean, 100.0 * s.std);
    let validated = rows.iter().any(|r| r.selected.is_some());
    let mut s = if validated {
        String::from(
            "| experiment | node | final test acc. (%) | test acc. at best-validation epoch (%) | best test acc. (%) | seeds |\n|---|---|---|---|---|---|\n",
        )
    } else {
        String::from("| experiment | node | final test acc. (%) | best test acc. (%) | seeds |\n|---|---|---|---|---|\n")
    };
    for r in rows {
        let selected = if validated { format!(" {} |", r.selected.as_ref().map_or("–".into(), pct)) } else { String::new() };
        s.push_str(&format!("| {} | {} | {} |{selected} {} | {} |\n", r.experiment, r.node, pct(&r.last), pct(&r.best), r.last.n));
    }
    s.push_str("\nmean ± sample std over seeds; \"best\" is the maximum over epochs (selected on the test split, optimistic).\n");
    if validated {
        s.push_str("\"at best-validation epoch\": the test accuracy at the epoch whose validation accuracy is highest (the earliest on ties), a selection that never sees the test split.\n");
    }
    let problems: Vec<&String> = exps.iter().flat_map(|x| &x.problems).collect();
    if !problems.is_empty() {
        s.push_str("\nExcluded runs:\n");
        for p in problems {
            s.push_str(&format!("- {p}\n"));
        }
    }
    s
}

/// Grouped bar chart: one group per experiment, one bar per node, error bars = std.
#[derive(Clone, Debug)]
pub struct Bars {
    /// Title.
    pub title: String,
    /// Experiments in order.
    pub groups: Vec<String>,
    /// Node names in colour order (ensemble black).
    pub nodes: Vec<String>,
    /// The rows.
    pub rows: Vec<Row>,
}

impl Bars {
    /// The chart of `rows`.
    pub fn new(title: &str, rows: &[Row]) -> Self {
        let mut groups: Vec<String> = Vec::new();
        let mut nodes: Vec<String> = Vec::new();
        for r in rows {
            if !groups.contains(&r.experiment) {
                groups.push(r.experiment.clone());
            }
            if !nodes.contains(&r.node) && r.node != "ensemble" {
                nodes.push(r.node.clone());
            }
        }
        if rows.iter().any(|r| r.node == "ensemble") {
            nodes.push("ensemble".into());
        }
        Self { title: title.into(), groups, nodes, rows: rows.to_vec() }
    }
}

impl Chart for Bars {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, plotters::coord::Shift>) -> Result<(), String> {
        if self.rows.is_empty() {
            return root.draw(&Text::new("no complete runs to compare", (20, 20), (FONT, 18))).map_err(drawing_error);
        }
        let lo = self.rows.iter().map(|r| 100.0 * (r.last.mean - r.last.std)).fold(f64::MAX, f64::min);
        let hi = self.rows.iter().map(|r| 100.0 * (r.last.mean + r.last.std)).fold(f64::MIN, f64::max);
        let y0 = ((lo - 3.0).floor()).max(0.0);
        // headroom above the highest error bar keeps the legend clear of the bars
        let y1 = (hi + 1.5 + (hi - y0) * 0.3).ceil().min(100.0).max(y0 + 1.0);
        let n = self.groups.len() as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{} — final test accuracy (%), mean ± std over seeds", self.title), (FONT, 19))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..n, y0..y1)
            .map_err(drawing_error)?;
        chart.configure_mesh().disable_x_mesh().x_labels(0).label_style((FONT, 13)).light_line_style(RGBColor(235, 235, 235)).draw().map_err(drawing_error)?;
        let k = self.nodes.len() as f64;
        let width = 0.8 / k;
        for (ni, node) in self.nodes.iter().enumerate() {
            let c = if node == "ensemble" { BLACK } else { color(ni) };
            let mine: Vec<(f64, &Row)> =
                self.rows.iter().filter(|r| &r.node == node).map(|r| (self.groups.iter().position(|g| *g == r.experiment).unwrap_or(0) as f64, r)).collect();
            let left = |g: f64| g + 0.1 + ni as f64 * width;
            chart
                .draw_series(mine.iter().map(|(g, r)| Rectangle::new([(left(*g), y0), (left(*g) + width * 0.9, 100.0 * r.last.mean)], c.mix(0.85).filled())))
                .map_err(drawing_error)?
                .label(node.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
            chart
                .draw_series(mine.iter().map(|(g, r)| {
                    let x = left(*g) + width * 0.45;
                    let (m, s) = (100.0 * r.last.mean, 100.0 * r.last.std);
                    ErrorBar::new_vertical(x, m - s, m, m + s, BLACK.stroke_width(1), 8)
                }))
                .map_err(drawing_error)?;
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(drawing_error)?;
        for (g, name) in self.groups.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(g as f64 + 0.5, y0));
            let seeds = self.rows.iter().find(|r| &r.experiment == name).map_or(0, |r| r.last.n);
            let label = format!("{name} (n={seeds})");
            root.draw(&Text::new(label.clone(), (px - 4 * label.len() as i32, py + 12), (FONT, 14))).map_err(drawing_error)?;
        }
        Ok(())
    }
}
