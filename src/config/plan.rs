//! The plan: a fully checked experiment, what `cohort run` executes and what `manifest.ron`
//! records. Built from an experiment file by [`super::resolve()`].

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::schema::*;
use super::subset_label;
use crate::data::spec::DataSpec;
use crate::losses::Targets;

/// A fully checked experiment: what `cohort run` executes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Experiment name (safe as a folder name).
    pub name: String,
    /// Free text from the file.
    pub description: String,
    /// Data set and split.
    pub data: DataSpec,
    /// Input shape of one sample, without the batch dimension.
    pub input_shape: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
    /// Every node, in file order; terms and stages refer to them by index.
    pub nodes: Vec<PlanNode>,
    /// Stages in execution order.
    pub stages: Vec<PlanStage>,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Parallel or serial execution of the nodes of a stage.
    pub concurrency: Concurrency,
    /// One run per seed.
    pub seeds: Vec<u64>,
    /// Root folder of the results.
    pub output: PathBuf,
    /// Tensor backend.
    #[serde(default)]
    pub backend: BackendChoice,
    /// Device index (GPU backends).
    #[serde(default)]
    pub device: usize,
}

/// A node with its defaults applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanNode {
    /// Id from the file.
    pub id: String,
    /// Architecture.
    pub model: ModelSpec,
    /// Never trained: `frozen` in the file, or a recorded source (outputs, no weights).
    #[serde(alias = "frozen")]
    pub fixed: bool,
    /// Initial weights.
    pub checkpoint: Option<PathBuf>,
    /// Optimiser (the node's own or the shared one).
    pub optimizer: OptimizerSpec,
    /// Schedule (the node's own or the shared one).
    pub schedule: ScheduleSpec,
    /// The part of the training split this node trains on (`None` = all of it).
    pub train_on: Option<Subset>,
    /// Its own backend (`None` = the plan's).
    #[serde(default)]
    pub backend: Option<BackendChoice>,
    /// Its own device index (`None` = the plan's).
    #[serde(default)]
    pub device: Option<usize>,
    /// An `Ema` node: the node whose weights it averages, and the decay (`model` is that
    /// node's architecture).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<EmaOf>,
    /// SwitOKD: the student whose gap decides when this node pauses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_with: Option<usize>,
    /// It teaches in training mode where it does not train (`batch_stats` in the file).
    #[serde(default, skip_serializing_if = "crate::values::is_false")]
    pub batch_stats: bool,
}

/// What an `Ema` node tracks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmaOf {
    /// Index of the tracked node.
    pub of: usize,
    /// `θ ← decay·θ + (1 − decay)·θ_of` after each of its steps.
    pub decay: f64,
    /// Mean Teacher's warm-up of the decay ([`crate::models::ModelSpec::Ema`]).
    pub warmup: bool,
    /// It teaches in training mode (batch statistics; [`crate::models::ModelSpec::Ema`]).
    #[serde(default, skip_serializing_if = "crate::values::is_false")]
    pub batch_stats: bool,
}

impl EmaOf {
    /// The decay after the `n`-th step of the stage (from 1).
    pub fn decay_at(&self, n: usize) -> f64 {
        if self.warmup { self.decay.min(1.0 - 1.0 / (n as f64 + 1.0)) } else { self.decay }
    }
}

impl PlanNode {
    /// Whether a run keeps resumable state for it: trained nodes and `Ema` nodes.
    pub fn has_state(&self) -> bool {
        !self.fixed || self.ema.is_some()
    }
}

impl Plan {
    /// The `Ema` nodes tracking one of `nodes`, as `(ema node, what it tracks)`.
    pub fn emas_of<'a>(&'a self, nodes: &'a [usize]) -> impl Iterator<Item = (usize, EmaOf)> + 'a {
        self.nodes.iter().enumerate().filter_map(|(i, n)| n.ema.filter(|e| nodes.contains(&e.of)).map(|e| (i, e)))
    }

    /// Backend and device index of node `n`: its own, else the plan's (after `--backend` /
    /// `--device`).
    pub fn placement(&self, n: usize) -> (BackendChoice, usize) {
        let node = &self.nodes[n];
        (node.backend.unwrap_or(self.backend), node.device.unwrap_or(self.device))
    }
}

/// One stage: which nodes train, for how long, with which loss terms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanStage {
    /// Stage name (`main` when the file declares no stages).
    pub name: String,
    /// Indices of the nodes trained, in update order.
    pub train: Vec<usize>,
    /// Epochs.
    pub epochs: usize,
    /// Update order of the trained nodes.
    pub update: UpdateOrder,
    /// Loss terms of the trained nodes (edges whose target trains in this stage).
    pub terms: Vec<Term>,
}

/// One loss term `weight · loss(from → to)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// Node receiving the loss.
    pub to: usize,
    /// Source nodes (empty for cross-entropy).
    pub from: Vec<usize>,
    /// Loss kind (source weights normalised to sum to 1).
    pub loss: LossSpec,
    /// Multiplier.
    pub weight: f64,
    /// Sigmoid ramp-up length in epochs (0 = none).
    pub ramp_up_epochs: usize,
    /// KTG gate on the weight (see [`Gate`]).
    #[serde(default, skip_serializing_if = "Gate::is_through")]
    pub gate: Gate,
    /// Where the term comes from in the file, e.g. `edges[3]`.
    pub origin: String,
    /// The head (1-based) of a `Hydra` target this term trains; `None` = the node's output.
    #[serde(default)]
    pub head: Option<usize>,
    /// The head (1-based) of every source the term reads instead of the source's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_head: Option<usize>,
    /// The stages the term acts in (empty = every stage in which its target trains).
    #[serde(default)]
    pub stages: Vec<String>,
}

impl Plan {
    /// The metric name of each of node `n`'s terms in stage `s` (their values in `metrics.csv`,
    /// split `train`), in stage order: `loss:<label>`, then `@head<m>` for a head's term and
    /// `<-<sources>` for a term with sources (`loss:SoftTarget(T=4)<-teacher`), made unique by
    /// the edge's place in the file where two would read the same.
    pub fn term_metrics(&self, s: usize, n: usize) -> Vec<String> {
        let terms: Vec<&Term> = self.stages[s].terms.iter().filter(|t| t.to == n).collect();
        let names: Vec<String> = terms
            .iter()
            .map(|t| {
                let head = t.head.map(|m| format!("@{}", crate::models::head_tap(m))).unwrap_or_default();
                let from: Vec<String> = t
                    .from
                    .iter()
                    .map(|&f| match t.from_head {
                        Some(m) => format!("{}.{}", self.nodes[f].id, crate::models::head_tap(m)),
                        None => self.nodes[f].id.clone(),
                    })
                    .collect();
                let from = if from.is_empty() { String::new() } else { format!("<-{}", from.join("+")) };
                format!("loss:{}{head}{from}", t.loss.label())
            })
            .collect();
        names.iter().zip(&terms).map(|(m, t)| if names.iter().filter(|x| *x == m).count() > 1 { format!("{m}[{}]", t.origin) } else { m.clone() }).collect()
    }

    /// What is legal but probably not meant, one line each (printed by `cohort check` and
    /// `cohort run`, exit status unchanged): SGD training a batch-norm network without weight
    /// decay (the CIFAR recipes of the papers use 1e-4 to 5e-4; without it the weights' scale
    /// drifts under the normalisation and the effective learning rate decays).
    pub fn warnings(&self) -> Vec<String> {
        let trained: Vec<usize> = self.stages.iter().flat_map(|s| s.train.iter().copied()).collect();
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| trained.contains(i) && n.model.batch_norm())
            .filter(|(_, n)| matches!(&n.optimizer, OptimizerSpec::Sgd { weight_decay, .. } if weight_decay.get() == 0.0))
            .map(|(_, n)| {
                format!(
                    "warning: node `{}` trains a batch-norm network ({}) with SGD and no weight decay; the papers' CIFAR recipes use 1e-4 to 5e-4 (`weight_decay: 0.0005`)",
                    n.id,
                    n.model.variant()
                )
            })
            .collect()
    }

    /// A human-readable summary of what would run.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "experiment `{}`{}", self.name, if self.description.is_empty() { String::new() } else { format!(": {}", self.description) });
        let src = self.data.source.label();
        let _ = writeln!(
            s,
            "  data: {src}; input {:?}, {} classes; validation {}, jitter {}",
            self.input_shape, self.classes, self.data.validation, self.data.jitter
        );
        let _ =
            writeln!(s, "  batch {}, seeds {:?}, backend {:?}, output {}", self.batch_size, self.seeds, self.backend, self.output.join(&self.name).display());
        let _ = writeln!(s, "  nodes:");
        for n in &self.nodes {
            let state = match n.ema {
                Some(e) => format!("EMA of {}, decay {}", self.nodes[e.of].id, e.decay),
                None if n.fixed => "frozen".to_string(),
                None => n.optimizer.to_string(),
            };
            let state = match n.switch_with {
                Some(s) => format!("{state}, pauses for {} (SwitOKD)", self.nodes[s].id),
                None => state,
            };
            let ck = n.checkpoint.as_ref().map(|c| format!(", from {}", c.display())).unwrap_or_default();
            let subset = n.train_on.as_ref().map(|t| format!(", trains on {}", subset_label(t))).unwrap_or_default();
            let place = match (n.backend, n.device) {
                (None, None) => String::new(),
                (b, d) => format!(", on {:?} device {}", b.unwrap_or(self.backend), d.unwrap_or(self.device)),
            };
            let _ = writeln!(s, "    {:<12} {} [{state}{ck}{subset}{place}]", n.id, n.model);
        }
        for (k, st) in self.stages.iter().enumerate() {
            let names: Vec<&str> = st.train.iter().map(|&i| self.nodes[i].id.as_str()).collect();
            let _ = writeln!(s, "  stage {} `{}`: train [{}] for {} epochs, {:?} updates", k + 1, st.name, names.join(", "), st.epochs, st.update);
            for t in &st.terms {
                let from: Vec<&str> = t.from.iter().map(|&i| self.nodes[i].id.as_str()).collect();
                let src = match (t.loss.kind().reads().targets, from.is_empty()) {
                    (Targets::OwnOutput, _) => "own output".to_string(),
                    (Targets::OtherHeads, _) => "other heads".to_string(),
                    (Targets::Branches, _) => "its branches".to_string(),
                    (_, true) => "labels".to_string(),
                    (_, false) => match t.from_head {
                        Some(j) => from.iter().map(|f| format!("{f}.{}", crate::models::head_tap(j))).collect::<Vec<_>>().join(" + "),
                        None => from.join(" + "),
                    },
                };
                let to = match t.head {
                    Some(m) => format!("{}.{}", self.nodes[t.to].id, crate::models::head_tap(m)),
                    None => self.nodes[t.to].id.clone(),
                };
                let _ = writeln!(s, "    {to:<12} <- {src:<20} {:.3} × {}", t.weight, t.loss.label());
            }
        }
        s
    }
}
