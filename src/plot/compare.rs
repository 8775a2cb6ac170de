//! `cohort compare`: mean ± std over seeds of the final and best test accuracy per node and for
//! the ensemble, for several experiments side by side, as a Markdown table and a grouped bar
//! chart with error bars. Runs that are missing, interrupted or diverged are listed, not dropped
//! silently.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::{Chart, FONT, color, drawing_error};
use crate::error::Error;
use crate::results::{ExperimentDir, Manifest, RunDir, RunStatus, Summary, Timing, read_summary};

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
    /// What every run folder says of itself (complete or not).
    pub runs: Vec<RunFacts>,
    /// The folders of the complete runs (in `complete` order).
    pub complete_dirs: Vec<PathBuf>,
}

/// A run folder's facts, from its manifest, summary and log: for scripts (`cohort compare
/// --json`), so that they read data rather than text meant for people.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RunFacts {
    /// The folder's name (`seed-3`).
    pub run: String,
    /// The seed (its manifest's).
    pub seed: Option<u64>,
    /// `complete`, `diverged` or `incomplete` (no summary).
    pub status: String,
    /// The git revision of cohort that made it (`-dirty` when its tree had uncommitted changes).
    pub git_revision: Option<String>,
    /// The CPU it ran on.
    pub cpu: Option<String>,
    /// The backend and devices it ran on.
    pub backend: Option<String>,
    /// The experiment's description (a sweep point names its values there).
    pub description: Option<String>,
    /// Training steps per second of each epoch it ran ([`crate::results::Timing`]).
    pub steps_per_second: Vec<f64>,
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
    let mut out = ExperimentRuns { name, dir: dir.to_path_buf(), complete: Vec::new(), problems: Vec::new(), runs: Vec::new(), complete_dirs: Vec::new() };
    if runs.is_empty() {
        out.problems.push(format!("{}: no runs found (expected seed-*/ folders written by `cohort run`)", dir.display()));
    }
    for r in runs {
        let run = r.name();
        out.runs.push(facts(&r));
        match read_summary(&r.summary()) {
            Ok(s) if s.status == RunStatus::Complete => {
                out.complete.push(s);
                out.complete_dirs.push(r.root.clone());
            }
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

/// The facts of run folder `r` (what cannot be read is left out).
fn facts(r: &RunDir) -> RunFacts {
    let manifest = Manifest::read(&r.manifest()).ok();
    let summary = read_summary(&r.summary()).ok();
    RunFacts {
        run: r.name(),
        seed: manifest.as_ref().map(|m| m.seed),
        status: summary.as_ref().map_or("incomplete".into(), |s| s.status.to_string()),
        git_revision: manifest.as_ref().map(|m| m.git_revision.clone()),
        cpu: manifest.as_ref().map(|m| m.cpu.clone()),
        backend: manifest.as_ref().map(|m| m.backend.clone()),
        description: manifest.as_ref().map(|m| m.plan.description.clone()),
        steps_per_second: Timing::of_run(r, summary.as_ref()).epoch_steps_per_second,
    }
}

/// Mean, sample standard deviation and count of per-seed values, and the values.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for one value.
    pub std: f64,
    /// Number of values.
    pub n: usize,
    /// The values, one per seed (in [`Row::seeds`] order).
    pub values: Vec<f64>,
}

impl Stat {
    /// Statistics of `v` (non-empty).
    pub fn of(v: &[f64]) -> Self {
        let (mean, std) = crate::stats::mean_sd(v);
        Self { mean, std, n: v.len(), values: v.to_vec() }
    }
}

/// One row of the comparison table.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Row {
    /// Experiment.
    pub experiment: String,
    /// Node id or `ensemble`.
    pub node: String,
    /// The seeds of the complete runs that have this node's final figure.
    pub seeds: Vec<u64>,
    /// Final test accuracy (fraction).
    #[serde(rename = "final")]
    pub last: Stat,
    /// Best test accuracy over epochs (fraction; selected on the test split, optimistic).
    pub best: Stat,
    /// Test accuracy at the epoch of the best validation accuracy (model selection without the
    /// test split), when every run of the experiment held out a validation split.
    pub selected: Option<Stat>,
    /// The per-seed figure chosen by `--select` when it is another than the final test accuracy
    /// (which the comparison with a baseline uses otherwise).
    pub figure: Option<Stat>,
    /// The comparison with the baseline's row (`--baseline`).
    pub versus: Option<Versus>,
}

/// Which per-seed figure a comparison is made on (`cohort compare --select`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Select {
    /// The final epoch's test accuracy.
    #[default]
    Final,
    /// The test accuracy at the epoch of the best validation accuracy (needs a hold-out).
    BestValidation,
    /// The mean test accuracy of the last K epochs.
    Last(usize),
}

impl std::str::FromStr for Select {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "final" => Ok(Select::Final),
            "best-val" => Ok(Select::BestValidation),
            _ => match s.strip_prefix("last:").map(str::parse::<usize>) {
                Some(Ok(k)) if k > 0 => Ok(Select::Last(k)),
                _ => Err(format!("`{s}`: expected final, best-val or last:K (K ≥ 1 epochs)")),
            },
        }
    }
}

impl std::fmt::Display for Select {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Select::Final => f.write_str("final test acc."),
            Select::BestValidation => f.write_str("test acc. at best-validation epoch"),
            Select::Last(k) => write!(f, "mean test acc. of the last {k} epochs"),
        }
    }
}

/// The experiment (and node) every row is compared with (`--baseline EXPERIMENT[:NODE]`;
/// without a node, each row is compared with the baseline's row of the same node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Baseline {
    /// The baseline experiment's name (as the table names it).
    pub experiment: String,
    /// Its node, or `None` for the row's own node.
    pub node: Option<String>,
}

impl std::str::FromStr for Baseline {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (experiment, node) = match s.rsplit_once(':') {
            Some((e, n)) => (e, Some(n.to_string())),
            None => (s, None),
        };
        if experiment.is_empty() || node.as_deref() == Some("") {
            return Err(format!("`{s}`: expected EXPERIMENT or EXPERIMENT:NODE"));
        }
        Ok(Baseline { experiment: experiment.to_string(), node })
    }
}

/// A row against its baseline: the baseline row and Welch's test of the per-seed figures.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Versus {
    /// `experiment:node` of the baseline row.
    pub baseline: String,
    /// The row's figure minus the baseline's, with its interval and p; `None` when either
    /// has fewer than two seeds, or no baseline row exists.
    pub welch: Option<crate::stats::Welch>,
}

/// Rows for the nodes of each experiment's last stage (the ensemble last), on the figure
/// `select` chooses and, with a `baseline`, compared with it.
pub fn rows(exps: &[ExperimentRuns], select: Select, baseline: Option<&Baseline>) -> Result<Vec<Row>, Error> {
    let mut out = Vec::new();
    for x in exps {
        out.extend(experiment_rows(x, select)?);
    }
    if let Some(b) = baseline {
        let figures: Vec<(String, String, Vec<f64>)> =
            out.iter().map(|r| (r.experiment.clone(), r.node.clone(), r.figure.as_ref().unwrap_or(&r.last).values.clone())).collect();
        for r in &mut out {
            let node = b.node.clone().unwrap_or_else(|| r.node.clone());
            let base = figures.iter().find(|(e, n, _)| *e == b.experiment && *n == node);
            let mine = &r.figure.as_ref().unwrap_or(&r.last).values;
            let welch = base.and_then(|(_, _, v)| crate::stats::welch(mine, v));
            r.versus = Some(Versus { baseline: format!("{}:{node}", b.experiment), welch });
        }
    }
    Ok(out)
}

/// The rows of one experiment.
fn experiment_rows(x: &ExperimentRuns, select: Select) -> Result<Vec<Row>, Error> {
    let mut out = Vec::new();
    let Some(first) = x.complete.first() else { return Ok(out) };
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
        let seeds: Vec<u64> = x.complete.iter().filter(|s| find(s).is_some_and(|n| n.last.contains_key("test_accuracy"))).map(|s| s.seed).collect();
        let best = pick(&|s| find(s).and_then(|n| n.best_test.map(|b| b.accuracy)));
        let selected = pick(&|s| find(s).and_then(|n| n.best_validation.map(|b| b.test_accuracy)));
        if last.is_empty() {
            continue;
        }
        let figure = match select {
            Select::Final => None,
            Select::BestValidation => Some(Stat::of(&selected)).filter(|s| s.n == last.len()),
            Select::Last(k) => Some(Stat::of(&last_epochs(x, &stage, &node, k)?)),
        };
        let selected = (selected.len() == last.len()).then(|| Stat::of(&selected));
        out.push(Row { experiment: x.name.clone(), node, seeds, last: Stat::of(&last), best: Stat::of(&best), selected, figure, versus: None });
    }
    Ok(out)
}

/// Each complete run's mean test accuracy of `node` over the last `k` epochs of `stage` (from
/// its `metrics.csv`).
fn last_epochs(x: &ExperimentRuns, stage: &str, node: &str, k: usize) -> Result<Vec<f64>, Error> {
    let mut out = Vec::new();
    for dir in &x.complete_dirs {
        let rows = crate::results::read_metrics(&RunDir::at(dir).metrics())?;
        let acc: Vec<f64> =
            rows.iter().filter(|r| r.stage == stage && r.node == node && r.split == "test" && r.metric == "accuracy" && r.epoch > 0).map(|r| r.value).collect();
        let tail = &acc[acc.len().saturating_sub(k)..];
        if !tail.is_empty() {
            out.push(tail.iter().sum::<f64>() / tail.len() as f64);
        }
    }
    Ok(out)
}

/// The Markdown table, followed by the list of excluded runs.
///
/// With a validation split (every row has [`Row::selected`] or "–"), a column gives the test
/// accuracy at the epoch of the best validation accuracy, before the optimistic best-on-test.
pub fn markdown(rows: &[Row], exps: &[ExperimentRuns], select: Select, baseline: Option<&Baseline>) -> String {
    let pct = |s: &Stat| format!("{:.2} ± {:.2}", 100.0 * s.mean, 100.0 * s.std);
    let validated = rows.iter().any(|r| r.selected.is_some());
    let chosen = rows.iter().any(|r| r.figure.is_some());
    let mut head = vec!["experiment", "node", "final test acc. (%)"];
    if validated {
        head.push("test acc. at best-validation epoch (%)");
    }
    head.extend(["best test acc. (%)", "seeds"]);
    let figure_head = format!("{select} (%)");
    if chosen {
        head.push(&figure_head);
    }
    let versus_head = baseline.map(|b| match &b.node {
        Some(n) => format!("difference to {}:{n} (points) [95 % CI]", b.experiment),
        None => format!("difference to {}, same node (points) [95 % CI]", b.experiment),
    });
    if let Some(h) = &versus_head {
        head.extend([h.as_str(), "Welch p"]);
    }
    let mut s = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for r in rows {
        let mut cells = vec![r.experiment.clone(), r.node.clone(), pct(&r.last)];
        if validated {
            cells.push(r.selected.as_ref().map_or("–".into(), pct));
        }
        cells.extend([pct(&r.best), r.last.n.to_string()]);
        if chosen {
            cells.push(r.figure.as_ref().map_or("–".into(), pct));
        }
        if versus_head.is_some() {
            let w = r.versus.as_ref().and_then(|v| v.welch);
            cells.push(w.map_or("–".into(), |w| format!("{:+.2} [{:+.2}, {:+.2}]", 100.0 * w.diff, 100.0 * w.ci95.0, 100.0 * w.ci95.1)));
            cells.push(w.map_or("–".into(), |w| if w.p < 0.001 { "< 0.001".into() } else { format!("{:.3}", w.p) }));
        }
        s.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    s.push_str("\nmean ± sample std over seeds; \"best\" is the maximum over epochs (selected on the test split, optimistic).\n");
    if validated {
        s.push_str("\"at best-validation epoch\": the test accuracy at the epoch whose validation accuracy is highest (the earliest on ties), a selection that never sees the test split.\n");
    }
    if versus_head.is_some() {
        s.push_str("difference: the row's per-seed figure minus the baseline row's, in accuracy points; 95 % confidence interval and two-sided p of Welch's unequal-variances t-test (Welch–Satterthwaite degrees of freedom); \"–\" where either has fewer than two seeds.\n");
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

/// The comparison as data (`cohort compare --json`, `compare.json`): the experiments with their
/// runs' facts and problems, and the rows with every per-seed value.
pub fn json(rows: &[Row], exps: &[ExperimentRuns]) -> String {
    let experiments: Vec<serde_json::Value> =
        exps.iter().map(|x| serde_json::json!({"name": x.name, "dir": x.dir, "complete": x.complete.len(), "problems": x.problems, "runs": x.runs})).collect();
    let value = serde_json::json!({"experiments": experiments, "rows": rows});
    serde_json::to_string_pretty(&value).expect("the comparison serialises") + "\n"
}
