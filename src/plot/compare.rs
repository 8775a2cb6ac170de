//! `cohort compare`: mean ± std over seeds of the final and best test accuracy per node and for
//! the ensemble, for several experiments side by side, as a Markdown table, as data
//! (`compare.json`) and as a dot-and-interval chart; optionally on another per-seed figure
//! (`--select`) and against a baseline with Welch's interval and p (`--baseline`). Runs that are
//! missing, interrupted or diverged are listed, not dropped silently.

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
        let summary = read_summary(&r.summary());
        out.runs.push(facts(&r, summary.as_ref().ok()));
        match summary {
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

/// The facts of run folder `r`, whose summary is `summary` (what cannot be read is left out).
fn facts(r: &RunDir, summary: Option<&Summary>) -> RunFacts {
    let manifest = Manifest::read(&r.manifest()).ok();
    RunFacts {
        run: r.name(),
        seed: manifest.as_ref().map(|m| m.seed),
        status: summary.map_or("incomplete".into(), |s| s.status.to_string()),
        git_revision: manifest.as_ref().map(|m| m.git_revision.clone()),
        cpu: manifest.as_ref().map(|m| m.cpu.clone()),
        backend: manifest.as_ref().map(|m| m.backend.clone()),
        description: manifest.as_ref().map(|m| m.plan.description.clone()),
        steps_per_second: Timing::of_run(r, summary).epoch_steps_per_second,
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

/// A row that averages nodes (`--group NAME=ID,ID,…`): per seed, the mean over the listed nodes
/// an experiment has (e.g. `peers=peer1,peer2,peer3,net.head1,net.head2,net.head3`: the mean
/// peer of a cohort and the mean branch of a branched network alike), compared like any row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The row's name in the node column.
    pub name: String,
    /// The node ids it averages (those an experiment lacks are skipped).
    pub nodes: Vec<String>,
}

impl std::str::FromStr for Group {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}`: expected NAME=NODE,NODE,… (e.g. peers=peer1,peer2,peer3)");
        let (name, nodes) = s.split_once('=').ok_or_else(bad)?;
        let nodes: Vec<String> = nodes.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect();
        if name.trim().is_empty() || nodes.is_empty() {
            return Err(bad());
        }
        Ok(Group { name: name.trim().to_string(), nodes })
    }
}

impl Group {
    /// The group's row from the rows of `members` (one experiment's rows of the group's nodes,
    /// each over the same seeds): every figure the per-seed mean over the members.
    fn row(&self, members: &[&Row]) -> Option<Row> {
        let first = members.first()?;
        if members.iter().any(|r| r.seeds != first.seeds) {
            return None;
        }
        let mean = |f: &dyn Fn(&Row) -> Option<&Stat>| -> Option<Stat> {
            let stats: Vec<&Stat> = members.iter().map(|r| f(r)).collect::<Option<_>>()?;
            let n = stats[0].values.len();
            let v: Vec<f64> = (0..n).map(|i| stats.iter().map(|s| s.values[i]).sum::<f64>() / stats.len() as f64).collect();
            Some(Stat::of(&v))
        };
        Some(Row {
            experiment: first.experiment.clone(),
            node: self.name.clone(),
            seeds: first.seeds.clone(),
            last: mean(&|r| Some(&r.last))?,
            best: mean(&|r| Some(&r.best))?,
            selected: mean(&|r| r.selected.as_ref()),
            figure: if first.figure.is_some() { mean(&|r| r.figure.as_ref()) } else { None },
            versus: None,
        })
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

/// Rows for the nodes of each experiment's last stage (the ensemble last, then the `groups`),
/// on the figure `select` chooses and, with a `baseline`, compared with it.
pub fn rows(exps: &[ExperimentRuns], select: Select, baseline: Option<&Baseline>, groups: &[Group]) -> Result<Vec<Row>, Error> {
    let mut out = Vec::new();
    for x in exps {
        let rows = experiment_rows(x, select)?;
        let grouped: Vec<Row> = groups
            .iter()
            .filter_map(|g| {
                let members: Vec<&Row> = rows.iter().filter(|r| g.nodes.contains(&r.node)).collect();
                g.row(&members)
            })
            .collect();
        out.extend(rows);
        out.extend(grouped);
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
/// its `metrics.csv`) — or, where `stage` has no per-epoch accuracy of it (a teacher trained in
/// an earlier stage, evaluated once as a source later), of the last stage that has.
fn last_epochs(x: &ExperimentRuns, stage: &str, node: &str, k: usize) -> Result<Vec<f64>, Error> {
    let mut out = Vec::new();
    for dir in &x.complete_dirs {
        let rows = crate::results::read_metrics(&RunDir::at(dir).metrics())?;
        let per_epoch: Vec<_> = rows.iter().filter(|r| r.node == node && r.split == "test" && r.metric == "accuracy" && r.epoch > 0).collect();
        let stage = match per_epoch.iter().any(|r| r.stage == stage) {
            true => stage,
            false => per_epoch.last().map_or(stage, |r| r.stage.as_str()),
        };
        let acc: Vec<f64> = per_epoch.iter().filter(|r| r.stage == stage).map(|r| r.value).collect();
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

/// The comparison drawn as one line per row (experiment and node): the per-seed figure's mean as
/// a dot and mean ± sample std as an interval, the experiments in shaded bands, labels in a
/// margin sized to the longest (they never overlap, however many experiments and nodes), and with
/// a baseline, each row's difference and Welch's p beside it. The chart's height grows with the
/// rows ([`Dots::size`]).
#[derive(Clone, Debug)]
pub struct Dots {
    /// Title.
    pub title: String,
    /// What each dot is (the selected figure).
    pub figure: String,
    /// The rows, in table order.
    pub rows: Vec<Row>,
}

/// Height of one row of a [`Dots`] chart, in pixels.
const ROW_HEIGHT: u32 = 22;

impl Dots {
    /// The chart of `rows` on the figure `select` chooses.
    pub fn new(title: &str, rows: &[Row], select: Select) -> Self {
        Self { title: title.into(), figure: select.to_string(), rows: rows.to_vec() }
    }

    /// The size that gives every row its line.
    pub fn size(&self) -> (u32, u32) {
        (1100, 110 + ROW_HEIGHT * self.rows.len().max(1) as u32)
    }

    /// Each row's label, `experiment · node (n=…)`.
    fn labels(&self) -> Vec<String> {
        self.rows.iter().map(|r| format!("{} · {} (n={})", r.experiment, r.node, r.last.n)).collect()
    }

    /// Each row's `(mean, std)` in percent, of its figure.
    fn points(&self) -> Vec<(f64, f64)> {
        self.rows.iter().map(|r| r.figure.as_ref().unwrap_or(&r.last)).map(|s| (100.0 * s.mean, 100.0 * s.std)).collect()
    }
}

impl Chart for Dots {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, plotters::coord::Shift>) -> Result<(), String> {
        if self.rows.is_empty() {
            return root.draw(&Text::new("no complete runs to compare", (20, 20), (FONT, 18))).map_err(drawing_error);
        }
        let (labels, points) = (self.labels(), self.points());
        let lo = points.iter().map(|(m, s)| m - s).fold(f64::MAX, f64::min);
        let hi = points.iter().map(|(m, s)| m + s).fold(f64::MIN, f64::max);
        let pad = ((hi - lo) * 0.05).max(0.5);
        let (x0, x1) = ((lo - pad).max(0.0), (hi + pad).min(100.0));
        let n = self.rows.len() as f64;
        let label_width = 16 + 7 * labels.iter().map(|l| l.chars().count()).max().unwrap_or(10) as u32;
        let versus = self.rows.iter().any(|r| r.versus.is_some());
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{} — {} (%), mean ± std over seeds", self.title, self.figure), (FONT, 18))
            .margin(12)
            .margin_right(if versus { 190 } else { 24 })
            .x_label_area_size(40)
            .y_label_area_size(label_width)
            .build_cartesian_2d(x0..x1, 0.0..n)
            .map_err(drawing_error)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .label_style((FONT, 13))
            .light_line_style(RGBColor(235, 235, 235))
            .x_desc(format!("{} (%)", self.figure))
            .draw()
            .map_err(drawing_error)?;
        // row k from the top: y = n − k − 0.5; the experiments in alternating bands
        let y = |k: usize| n - k as f64 - 0.5;
        let mut band = 0;
        for (k, r) in self.rows.iter().enumerate() {
            if k > 0 && self.rows[k - 1].experiment != r.experiment {
                band += 1;
            }
            if band % 2 == 1 {
                chart
                    .draw_series(std::iter::once(Rectangle::new([(x0, y(k) - 0.5), (x1, y(k) + 0.5)], RGBColor(244, 246, 250).filled())))
                    .map_err(drawing_error)?;
            }
        }
        for (k, (r, &(m, s))) in self.rows.iter().zip(&points).enumerate() {
            let c = if r.node == "ensemble" { BLACK } else { color(k) };
            chart.draw_series(std::iter::once(ErrorBar::new_horizontal(y(k), m - s, m, m + s, c.stroke_width(2), 8))).map_err(drawing_error)?;
            chart.draw_series(std::iter::once(Circle::new((m, y(k)), 4, c.filled()))).map_err(drawing_error)?;
            let (lx, ly) = chart.backend_coord(&(x0, y(k)));
            let text = &labels[k];
            root.draw(&Text::new(text.clone(), (lx - 8 - 7 * text.chars().count() as i32, ly - 7), (FONT, 13))).map_err(drawing_error)?;
            if let Some(w) = r.versus.as_ref().and_then(|v| v.welch) {
                let (rx, _) = chart.backend_coord(&(x1, y(k)));
                let p = if w.p < 0.001 { "p < 0.001".to_string() } else { format!("p = {:.3}", w.p) };
                root.draw(&Text::new(format!("{:+.2} pts, {p}", 100.0 * w.diff), (rx + 10, ly - 7), (FONT, 13))).map_err(drawing_error)?;
            }
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
