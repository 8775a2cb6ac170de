//! From a parsed [`ExperimentSpec`] to a checked [`Plan`]: ids resolved to indices, defaults
//! applied, stages ordered and checked (every source of every loss term is available when the
//! stage runs), models checked against the data's input shape.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::diagnostic::{Diagnostic, closest};
use super::locate::FieldPath;
use super::schema::*;
use super::values::NodeId;

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
    /// Never trained.
    pub frozen: bool,
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
}

impl Plan {
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
    /// Where the term comes from in the file, e.g. `edges[3]`.
    pub origin: String,
    /// The head (1-based) of a `Hydra` target this term trains; `None` = the node's output.
    #[serde(default)]
    pub head: Option<usize>,
    /// The stages the term acts in (empty = every stage in which its target trains).
    #[serde(default)]
    pub stages: Vec<String>,
}

impl DataSource {
    /// Shape of one input sample and number of classes.
    pub fn input_shape(&self) -> (Vec<usize>, usize) {
        match self {
            DataSource::Mnist1d(p) => (vec![p.final_seq_length], 10),
            DataSource::Mnist(_) => (vec![1, 28, 28], 10),
            DataSource::Cifar10(_) => (vec![3, 32, 32], 10),
            DataSource::RotatedMnist(_) => (vec![1, 28, 28], 10),
        }
    }

    /// The domains of the training split (empty for data sets without domains).
    pub fn training_domains(&self) -> Vec<usize> {
        match self {
            DataSource::RotatedMnist(r) => (0..crate::data::rotated::DOMAINS).filter(|&d| d != r.test_domain).collect(),
            _ => Vec::new(),
        }
    }
}

impl ModelSpec {
    /// Names of the intermediate features this model can expose for feature losses.
    pub fn taps(&self) -> Vec<String> {
        match self {
            ModelSpec::Mlp { hidden, .. } => (1..=hidden.len()).map(|i| format!("hidden{i}")).collect(),
            ModelSpec::Cnn2d { channels, .. } => {
                let mut v: Vec<String> = (1..=channels.len()).map(|i| format!("block{i}")).collect();
                v.push("hidden".into());
                v
            }
            ModelSpec::Cnn1d { channels, .. } => (1..=channels.len()).map(|i| format!("block{i}")).collect(),
            ModelSpec::ResNet { widths, .. } => {
                let mut v: Vec<String> = (1..=widths.len()).map(|i| format!("stage{i}")).collect();
                v.push("pool".into());
                v
            }
            ModelSpec::Recorded { .. } => Vec::new(),
            // the heads' logits are tapped by the engine for `head: m` terms, not as features
            ModelSpec::Hydra { body, .. } => (1..=body.len()).map(|i| format!("hidden{i}")).collect(),
        }
    }

    /// Shape (without the batch dimension) of every tap for inputs of `shape`: `[F]` for flat
    /// features, `[C, L]` for 1-D maps, `[C, H, W]` for 2-D maps.
    pub fn tap_shapes(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        let d: usize = shape.iter().product();
        match self {
            ModelSpec::Mlp { hidden, .. } => hidden.iter().enumerate().map(|(i, w)| (format!("hidden{}", i + 1), vec![w.get()])).collect(),
            ModelSpec::Cnn1d { channels, kernel } => {
                let k = kernel.get();
                let mut len = d;
                channels
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let stride = if i == 0 { 1 } else { 2 };
                        len = (len + 2 * (k / 2) - k) / stride + 1;
                        (format!("block{}", i + 1), vec![c.get(), len])
                    })
                    .collect()
            }
            ModelSpec::Cnn2d { channels, hidden, .. } => {
                let (mut h, mut w) = (shape.get(1).copied().unwrap_or(1), shape.get(2).copied().unwrap_or(1));
                let mut v: Vec<(String, Vec<usize>)> = channels
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        h /= 2;
                        w /= 2;
                        (format!("block{}", i + 1), vec![c.get(), h, w])
                    })
                    .collect();
                v.push(("hidden".into(), vec![hidden.get()]));
                v
            }
            ModelSpec::ResNet { widths, .. } => {
                let (mut h, mut w) = (shape.get(1).copied().unwrap_or(1), shape.get(2).copied().unwrap_or(1));
                let mut v: Vec<(String, Vec<usize>)> = widths
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        if i > 0 {
                            h = h.div_ceil(2);
                            w = w.div_ceil(2);
                        }
                        (format!("stage{}", i + 1), vec![c.get(), h, w])
                    })
                    .collect();
                v.push(("pool".into(), vec![widths.last().map_or(0, |w| w.get())]));
                v
            }
            ModelSpec::Recorded { .. } => Vec::new(),
            ModelSpec::Hydra { body, .. } => body.iter().enumerate().map(|(i, w)| (format!("hidden{}", i + 1), vec![w.get()])).collect(),
        }
    }

    /// Checks the architecture's own parameters and that it accepts inputs of `shape`.
    fn check(&self, shape: &[usize], path: &FieldPath, errs: &mut Vec<Diagnostic>) {
        let variant = match self {
            ModelSpec::Mlp { .. } => "Mlp",
            ModelSpec::Cnn2d { .. } => "Cnn2d",
            ModelSpec::Cnn1d { .. } => "Cnn1d",
            ModelSpec::ResNet { .. } => "ResNet",
            ModelSpec::Recorded { .. } => "Recorded",
            ModelSpec::Hydra { .. } => "Hydra",
        };
        let want_rank = match self {
            ModelSpec::Mlp { .. } | ModelSpec::Recorded { .. } | ModelSpec::Hydra { .. } => None,
            ModelSpec::Cnn2d { .. } | ModelSpec::ResNet { .. } => Some(3),
            ModelSpec::Cnn1d { .. } => Some(1),
        };
        if let Some(r) = want_rank {
            if shape.len() != r {
                let fit = if shape.len() == 1 { "Mlp or Cnn1d" } else { "Mlp, Cnn2d or ResNet" };
                errs.push(
                    Diagnostic::at(
                        path.clone(),
                        format!("`{variant}` needs {}-D inputs but the data set gives shape {shape:?}", if r == 3 { 2 } else { 1 }),
                    )
                    .hint(format!("for this data set use {fit}")),
                );
            }
        }
        match self {
            ModelSpec::Cnn2d { channels, .. } | ModelSpec::Cnn1d { channels, .. } if channels.is_empty() => {
                errs.push(Diagnostic::at(path.field("channels"), "a CNN needs at least one block").hint("e.g. `channels: [32, 64]`"));
            }
            ModelSpec::Cnn2d { channels, .. } if shape.len() == 3 && shape[1] >> channels.len() == 0 => {
                errs.push(Diagnostic::at(
                    path.field("channels"),
                    format!("{} pooling blocks would shrink a {}×{} input to nothing", channels.len(), shape[1], shape[2]),
                ));
            }
            ModelSpec::Cnn1d { kernel, .. } if kernel.get() % 2 == 0 => {
                errs.push(Diagnostic::at(path.field("kernel"), format!("kernel must be odd (for same padding), got {kernel}")));
            }
            ModelSpec::ResNet { blocks, widths } if blocks.len() != widths.len() || blocks.is_empty() => {
                errs.push(
                    Diagnostic::at(path.field("widths"), format!("`blocks` has {} stages but `widths` has {}", blocks.len(), widths.len()))
                        .hint("give one width per stage, e.g. `blocks: [3, 3, 3], widths: [16, 32, 64]`"),
                );
            }
            _ => {}
        }
    }
}

impl NodeSpec {
    /// Never trained: frozen, or a recorded source.
    fn fixed(&self) -> bool {
        self.frozen || matches!(self.model, ModelSpec::Recorded { .. })
    }
}

/// Checks `spec` and builds its plan; all problems found are returned together.
pub fn resolve(spec: &ExperimentSpec) -> Result<Plan, Vec<Diagnostic>> {
    let mut errs = Vec::new();
    let root = FieldPath::root();
    let (input_shape, classes) = spec.data.source.input_shape();

    if let DataSource::Mnist1d(p) = &spec.data.source {
        if let Err(m) = p.check() {
            errs.push(Diagnostic::at(root.field("data").field("source"), m));
        }
    }

    let domains = spec.data.source.training_domains();
    if let DataSource::RotatedMnist(r) = &spec.data.source {
        if r.test_domain >= crate::data::rotated::DOMAINS {
            errs.push(
                Diagnostic::at(root.field("data").field("source").field("test_domain"), format!("Rotated MNIST has domains 0..=5, not {}", r.test_domain))
                    .hint("domain d is rotated by 15·d degrees; e.g. `test_domain: 5` holds out 75°"),
            );
        }
    }

    // ---- nodes
    let nodes_path = root.field("nodes");
    if spec.nodes.is_empty() {
        errs.push(Diagnostic::at(nodes_path.clone(), "the cohort has no nodes").hint("add at least one `Node(id: ..., model: ...)`"));
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, n) in spec.nodes.iter().enumerate() {
        let p = nodes_path.index(i);
        if let Some(first) = index.insert(n.id.as_str(), i) {
            index.insert(n.id.as_str(), first);
            errs.push(Diagnostic::at(p.field("id"), format!("duplicate node id `{}` (also `nodes[{first}]`)", n.id)).hint("node ids must be unique"));
        }
        n.model.check(&input_shape, &p.field("model"), &mut errs);
        if let Some(sub) = &n.train_on {
            let q = p.field("train_on");
            for (field, list) in [("classes", &sub.classes), ("exclude_classes", &sub.exclude_classes)] {
                if let Some(bad) = list.iter().find(|&&c| c >= classes) {
                    errs.push(
                        Diagnostic::at(q.field(field), format!("class {bad} does not exist: the data set has classes 0..={}", classes - 1))
                            .hint("classes are numbered from 0, e.g. `exclude_classes: [3]` drops the digit 3"),
                    );
                }
            }
            for &d in &sub.domains {
                if domains.is_empty() {
                    errs.push(Diagnostic::at(q.field("domains"), "this data set has no domains").hint("domains exist in `RotatedMnist(...)`"));
                    break;
                } else if !domains.contains(&d) {
                    errs.push(
                        Diagnostic::at(q.field("domains"), format!("domain {d} is not a training domain"))
                            .hint(format!("the training domains are {domains:?} (the test domain is held out)")),
                    );
                }
            }
            if (0..classes).all(|c| !(sub.classes.is_empty() || sub.classes.contains(&c)) || sub.exclude_classes.contains(&c)) {
                errs.push(Diagnostic::at(q, format!("node `{}` would train on no class at all", n.id)).hint("`classes` keeps, `exclude_classes` drops; leave one class at least"));
            }
        }
        let recorded = matches!(n.model, ModelSpec::Recorded { .. });
        if recorded && n.checkpoint.is_some() {
            errs.push(Diagnostic::at(p.field("checkpoint"), format!("node `{}` is `Recorded`: it has outputs, not weights", n.id)).hint("remove `checkpoint`"));
        }
        if n.frozen && n.checkpoint.is_none() && !recorded {
            errs.push(
                Diagnostic::at(p.field("frozen"), format!("frozen node `{}` has no checkpoint: it would stay at random weights", n.id))
                    .hint("add `checkpoint: \"path/to/node.bpk\"`, or train it in an earlier stage instead of freezing it"),
            );
        }
    }
    let lookup = |id: &NodeId, path: FieldPath, errs: &mut Vec<Diagnostic>| -> Option<usize> {
        match index.get(id.as_str()) {
            Some(&i) => Some(i),
            None => {
                let mut d = Diagnostic::at(path, format!("unknown node `{id}`"));
                let mut known: Vec<&str> = Vec::new();
                for n in &spec.nodes {
                    if !known.contains(&n.id.as_str()) {
                        known.push(n.id.as_str());
                    }
                }
                d = match closest(id.as_str(), known.iter().copied()) {
                    Some(c) => d.hint(format!("did you mean `{c}`? Nodes: {}", known.join(", "))),
                    None => d.hint(format!("declared nodes: {}", known.join(", "))),
                };
                errs.push(d);
                None
            }
        }
    };

    // ---- edges → terms (not yet assigned to stages)
    // (term, path of its target, paths of its sources)
    let mut terms: Vec<(Term, FieldPath, Vec<FieldPath>)> = Vec::new();
    for (e, edge) in spec.edges.iter().enumerate() {
        let p = root.field("edges").index(e);
        match edge {
            EdgeSpec::Edge { from, to, loss, weight, ramp_up_epochs, head, stages } => {
                let to_i = lookup(to, p.field("to"), &mut errs);
                let mut from_i = Vec::new();
                let mut from_paths = Vec::new();
                for (k, f) in from.iter().enumerate() {
                    if let Some(i) = lookup(f, p.field("from").index(k), &mut errs) {
                        if Some(i) == to_i {
                            errs.push(
                                Diagnostic::at(p.field("from").index(k), format!("node `{f}` cannot be its own source"))
                                    .hint("to put a node's own output into an ensemble target use `Ensemble(include_self: true)`"),
                            );
                        }
                        if from_i.contains(&i) {
                            errs.push(Diagnostic::at(p.field("from").index(k), format!("node `{f}` is listed twice")));
                        }
                        from_i.push(i);
                        from_paths.push(p.field("from").index(k));
                    }
                }
                let mut loss = loss.clone();
                let attention = matches!(loss, LossSpec::Attention { .. });
                match &mut loss {
                    LossSpec::CrossEntropy if !from.is_empty() => errs.push(
                        Diagnostic::at(p.field("from"), "`CrossEntropy` learns from the labels and takes no sources")
                            .hint("remove `from`, or use `SoftTarget` to learn from another node"),
                    ),
                    LossSpec::CrossEntropy => {}
                    LossSpec::OwnOutput { .. } => {
                        if !from.is_empty() {
                            errs.push(Diagnostic::at(p.field("from"), "`OwnOutput` learns from the node's own output and takes no sources").hint("remove `from`"));
                        }
                        if head.is_none() {
                            errs.push(Diagnostic::at(p.field("loss"), "`OwnOutput` trains one head of a `Hydra` from the node's output").hint("add `head: m`"));
                        }
                    }
                    _ if from.is_empty() => errs.push(
                        Diagnostic::at(p.field("loss"), "this loss needs at least one source node")
                            .hint("add `from: [\"teacher\"]`"),
                    ),
                    LossSpec::SoftTarget { source_weights, .. } => {
                        if !source_weights.is_empty() && source_weights.len() != from.len() {
                            errs.push(Diagnostic::at(
                                p.field("loss").field("source_weights"),
                                format!("{} source weights for {} sources", source_weights.len(), from.len()),
                            ).hint("give one weight per node in `from`, or none for equal weights"));
                        } else if !source_weights.is_empty() {
                            let total: f64 = source_weights.iter().map(|w| w.get()).sum();
                            if total <= 0.0 {
                                errs.push(Diagnostic::at(p.field("loss").field("source_weights"), "source weights sum to 0"));
                            } else {
                                for w in source_weights.iter_mut() {
                                    *w = super::values::Weight::new(w.get() / total).expect("normalised weight is valid");
                                }
                            }
                        }
                    }
                    LossSpec::Hint { from_tap, to_tap } | LossSpec::Attention { from_tap, to_tap } => {
                        if from.len() != 1 {
                            errs.push(Diagnostic::at(p.field("from"), "feature losses take exactly one source"));
                        }
                        let check_tap = |node: Option<usize>, tap: &str, field: &'static str, errs: &mut Vec<Diagnostic>| {
                            if let Some(n) = node {
                                let taps = spec.nodes[n].model.taps();
                                if !taps.iter().any(|t| t == tap) {
                                    errs.push(
                                        Diagnostic::at(p.field("loss").field(field), format!("node `{}` has no tap `{tap}`", spec.nodes[n].id))
                                            .hint(format!("its taps are: {}", taps.join(", "))),
                                    );
                                }
                            }
                        };
                        check_tap(from_i.first().copied(), from_tap, "from_tap", &mut errs);
                        check_tap(to_i, to_tap, "to_tap", &mut errs);
                        let shape_of = |node: Option<usize>, tap: &str| {
                            node.and_then(|n| spec.nodes[n].model.tap_shapes(&input_shape).into_iter().find(|(t, _)| t == tap).map(|(_, s)| s))
                        };
                        if let (Some(u), Some(v)) = (shape_of(from_i.first().copied(), from_tap), shape_of(to_i, to_tap)) {
                            let what = if attention { "attention transfer" } else { "a hint (its adapter maps channels, not positions)" };
                            if u.len() != v.len() || u[1..] != v[1..] {
                                errs.push(
                                    Diagnostic::at(p.field("loss"), format!("{what} needs taps of the same spatial size: `{from_tap}` is {u:?}, `{to_tap}` is {v:?} (channels first)"))
                                        .hint("pick taps at the same resolution, e.g. both after the same number of pooling blocks"),
                                );
                            } else if attention && u.len() < 2 {
                                errs.push(
                                    Diagnostic::at(p.field("loss"), format!("attention transfer needs feature maps, but `{from_tap}` is a flat vector {u:?}"))
                                        .hint("use conv taps (`block1`, `stage2`, ...), or `Hint` for flat features"),
                                );
                            }
                        }
                    }
                    LossSpec::Lfme => {
                        if domains.is_empty() {
                            errs.push(Diagnostic::at(p.field("loss"), "`Lfme` needs a data set with domains").hint("use `source: RotatedMnist(test_domain: ...)`"));
                        }
                        let mut covered: Vec<usize> = Vec::new();
                        let mut all_single = true;
                        for (k, &f) in from_i.iter().enumerate() {
                            let sub = spec.nodes[f].train_on.as_ref().map(|s| s.domains.clone()).unwrap_or_default();
                            let class_filter = spec.nodes[f].train_on.as_ref().is_some_and(|s| !s.classes.is_empty() || !s.exclude_classes.is_empty());
                            if sub.len() != 1 || class_filter {
                                all_single = false;
                                errs.push(
                                    Diagnostic::at(p.field("from").index(k), format!("LFME expert `{}` must train on exactly one whole domain", spec.nodes[f].id))
                                        .hint("give it `train_on: Subset(domains: [d])`, without class filters"),
                                );
                            } else if covered.contains(&sub[0]) {
                                errs.push(Diagnostic::at(p.field("from").index(k), format!("two experts for domain {}", sub[0])));
                            } else {
                                covered.push(sub[0]);
                            }
                        }
                        if let Some(t) = to_i {
                            let wanted = spec.nodes[t].train_on.as_ref().filter(|s| !s.domains.is_empty()).map_or(domains.clone(), |s| s.domains.clone());
                            let missing: Vec<usize> = wanted.iter().copied().filter(|d| !covered.contains(d)).collect();
                            if !missing.is_empty() && !domains.is_empty() && all_single {
                                errs.push(
                                    Diagnostic::at(p.field("from"), format!("no expert for domain(s) {missing:?}, which `{}` trains on", spec.nodes[t].id))
                                        .hint("add one expert node per training domain"),
                                );
                            }
                        }
                    }
                    LossSpec::MutualKl { .. } | LossSpec::Ensemble { .. } => {}
                }
                if let (Some(m), Some(t)) = (head, to_i) {
                    let heads = match &spec.nodes[t].model {
                        ModelSpec::Hydra { heads, .. } => heads.get(),
                        _ => 0,
                    };
                    if heads == 0 {
                        errs.push(Diagnostic::at(p.field("head"), format!("`head` needs a `Hydra` target, and `{to}` is not one")).hint("remove `head`, or make the node a `Hydra(...)`"));
                    } else if *m == 0 || *m > heads {
                        errs.push(Diagnostic::at(p.field("head"), format!("`{to}` has heads 1..={heads}, not {m}")).hint("heads are numbered from 1, like their taps `head1`, …"));
                    } else if matches!(loss, LossSpec::Hint { .. } | LossSpec::Attention { .. } | LossSpec::Lfme) {
                        errs.push(Diagnostic::at(p.field("head"), "`head` applies to logit losses (CrossEntropy, SoftTarget, MutualKl, Ensemble)"));
                    }
                }
                if let Some(to) = to_i {
                    terms.push((
                        Term {
                            to,
                            from: from_i,
                            loss,
                            weight: weight.get(),
                            ramp_up_epochs: *ramp_up_epochs,
                            origin: p.to_string(),
                            head: *head,
                            stages: stages.iter().map(|s| s.to_string()).collect(),
                        },
                        p.field("to"),
                        from_paths,
                    ));
                }
            }
            EdgeSpec::Mutual { peers, temperature, weight } => {
                if peers.len() < 2 {
                    errs.push(Diagnostic::at(p.field("peers"), "mutual learning needs at least two peers"));
                }
                let mut ids: Vec<(usize, FieldPath)> = Vec::new();
                for (k, peer) in peers.iter().enumerate() {
                    let q = p.field("peers").index(k);
                    if let Some(i) = lookup(peer, q.clone(), &mut errs) {
                        if ids.iter().any(|(j, _)| *j == i) {
                            errs.push(Diagnostic::at(q, format!("peer `{peer}` is listed twice")));
                        } else {
                            ids.push((i, q));
                        }
                    }
                }
                for (i, q) in &ids {
                    let i = *i;
                    let others = ids.iter().filter(|(j, _)| *j != i);
                    let from: Vec<usize> = others.clone().map(|(j, _)| *j).collect();
                    let from_paths: Vec<FieldPath> = others.map(|(_, r)| r.clone()).collect();
                    if from.is_empty() {
                        continue;
                    }
                    terms.push((
                        Term {
                            to: i,
                            from,
                            loss: LossSpec::MutualKl { temperature: *temperature },
                            weight: weight.get(),
                            ramp_up_epochs: 0,
                            origin: p.to_string(),
                            head: None,
                            stages: Vec::new(),
                        },
                        q.clone(),
                        from_paths,
                    ));
                }
            }
        }
    }

    // ---- stages
    let t = &spec.training;
    let declared: Vec<(String, Vec<(usize, FieldPath)>, usize, UpdateOrder)> = if spec.stages.is_empty() {
        let train = spec
            .nodes
            .iter()
            .enumerate()
            // without stages, every non-frozen node that receives a loss term trains (a node that
            // only serves as a source keeps its checkpoint); a duplicate id is reported once
            .filter(|(i, n)| !n.fixed() && index.get(n.id.as_str()) == Some(i) && terms.iter().any(|(t, _, _)| t.to == *i))
            .map(|(i, _)| (i, nodes_path.index(i)))
            .collect();
        vec![("main".to_string(), train, t.epochs.get(), t.update)]
    } else {
        let mut seen_names: HashMap<&str, usize> = HashMap::new();
        spec.stages
            .iter()
            .enumerate()
            .map(|(s, st)| {
                let p = root.field("stages").index(s);
                if let Some(first) = seen_names.insert(st.name.as_str(), s) {
                    errs.push(Diagnostic::at(p.field("name"), format!("duplicate stage name `{}` (also `stages[{first}]`)", st.name)));
                }
                if st.train.is_empty() {
                    errs.push(Diagnostic::at(p.field("train"), "a stage must train at least one node"));
                }
                let mut train: Vec<(usize, FieldPath)> = Vec::new();
                for (k, id) in st.train.iter().enumerate() {
                    let q = p.field("train").index(k);
                    if let Some(i) = lookup(id, q.clone(), &mut errs) {
                        if spec.nodes[i].fixed() {
                            let what = if spec.nodes[i].frozen { "is frozen" } else { "is a recorded source" };
                            errs.push(Diagnostic::at(q.clone(), format!("node `{id}` {what} and cannot be trained")).hint("remove `frozen: true` from the node, or remove it from this stage"));
                        } else if train.iter().any(|(j, _)| *j == i) {
                            errs.push(Diagnostic::at(q.clone(), format!("node `{id}` is listed twice")));
                        } else {
                            train.push((i, q));
                        }
                    }
                }
                (
                    st.name.to_string(),
                    train,
                    st.epochs.map_or(t.epochs.get(), |e| e.get()),
                    st.update.unwrap_or(t.update),
                )
            })
            .collect()
    };

    let stage_of_training = |node: usize| -> Vec<usize> {
        declared.iter().enumerate().filter(|(_, s)| s.1.iter().any(|(i, _)| *i == node)).map(|(k, _)| k).collect()
    };
    // every term must land in a stage where its target trains
    for (term, path, _) in &terms {
        if stage_of_training(term.to).is_empty() {
            let n = &spec.nodes[term.to];
            let why = if matches!(n.model, ModelSpec::Recorded { .. }) {
                "is a recorded source"
            } else if n.frozen {
                "is frozen"
            } else {
                "is not trained in any stage"
            };
            errs.push(
                Diagnostic::at(path.clone(), format!("this loss goes to node `{}`, which {why}", n.id))
                    .hint("a loss term only acts on a node that trains; add the node to a stage's `train` list"),
            );
        }
    }
    // `stages:` of an edge names stages in which its target trains
    for (term, path, _) in &terms {
        for (k, st) in term.stages.iter().enumerate() {
            let p = path.parent().field("stages").index(k);
            match declared.iter().find(|d| &d.0 == st) {
                None => {
                    let names: Vec<&str> = declared.iter().map(|d| d.0.as_str()).collect();
                    let hint = match closest(st, names.iter().copied()) {
                        Some(c) => format!("did you mean `{c}`? The stages are: {}", names.join(", ")),
                        None => format!("the stages are: {}", names.join(", ")),
                    };
                    errs.push(Diagnostic::at(p, format!("no stage `{st}`")).hint(hint));
                }
                Some(d) if !d.1.iter().any(|(i, _)| *i == term.to) => errs.push(
                    Diagnostic::at(p, format!("node `{}` does not train in stage `{st}`", spec.nodes[term.to].id))
                        .hint("list only stages whose `train` includes the edge's `to`"),
                ),
                Some(_) => {}
            }
        }
    }
    let mut stages = Vec::new();
    for (s, (name, train, epochs, update)) in declared.iter().enumerate() {
        let mut stage_terms = Vec::new();
        for &(node, ref npath) in train {
            let mine: Vec<&(Term, FieldPath, Vec<FieldPath>)> =
                terms.iter().filter(|(t, _, _)| t.to == node && (t.stages.is_empty() || t.stages.contains(name))).collect();
            if mine.is_empty() {
                errs.push(
                    Diagnostic::at(npath.clone(), format!("node `{}` trains in stage `{name}` but no edge gives it a loss", spec.nodes[node].id))
                        .hint(format!("add `Edge(to: \"{}\", loss: CrossEntropy)`", spec.nodes[node].id)),
                );
            }
            for (term, _, src_paths) in mine {
                for (&src, spath) in term.from.iter().zip(src_paths) {
                    let in_stage = train.iter().any(|(i, _)| *i == src);
                    // a source trained on a subset in this stage only has outputs on that subset
                    if in_stage && term.loss != LossSpec::Lfme && spec.nodes[src].train_on.is_some() && spec.nodes[src].train_on != spec.nodes[node].train_on {
                        errs.push(
                            Diagnostic::at(
                                spath.clone(),
                                format!(
                                    "`{}` trains only on a subset in stage `{name}`, so its outputs do not cover every sample `{}` trains on",
                                    spec.nodes[src].id, spec.nodes[node].id
                                ),
                            )
                            .hint("give both nodes the same `train_on`, or train the source in an earlier stage"),
                        );
                    }
                    let has_ckpt = spec.nodes[src].checkpoint.is_some() || matches!(spec.nodes[src].model, ModelSpec::Recorded { .. });
                    let trained_at = stage_of_training(src);
                    let earlier = trained_at.iter().any(|&k| k < s);
                    if in_stage || has_ckpt || earlier {
                        continue;
                    }
                    let src_id = &spec.nodes[src].id;
                    let d = match trained_at.iter().find(|&&k| k > s) {
                        Some(&later) => Diagnostic::at(
                            spath.clone(),
                            format!(
                                "stage `{name}` needs node `{src_id}` as a source, but `{src_id}` is only trained later, in stage `{}`",
                                declared[later].0
                            ),
                        )
                        .hint(format!("move the stage that trains `{src_id}` before `{name}`, or train both in the same stage")),
                        None => Diagnostic::at(
                            spath.clone(),
                            format!("stage `{name}` needs node `{src_id}` as a source, but `{src_id}` is never trained and has no checkpoint"),
                        )
                        .hint(format!("train `{src_id}` in an earlier stage, or give it `checkpoint: \"...\"`")),
                    };
                    errs.push(d);
                }
                stage_terms.push(term.clone());
            }
        }
        stages.push(PlanStage {
            name: name.clone(),
            train: train.iter().map(|(i, _)| *i).collect(),
            epochs: *epochs,
            update: *update,
            terms: stage_terms,
        });
    }
    // nodes nobody trains, loads or uses
    for (i, n) in spec.nodes.iter().enumerate() {
        let used = terms.iter().any(|(t, _, _)| t.from.contains(&i) || t.to == i);
        let duplicate = index.get(n.id.as_str()) != Some(&i);
        if !duplicate && !n.fixed() && n.checkpoint.is_none() && stage_of_training(i).is_empty() && !used {
            errs.push(
                Diagnostic::at(nodes_path.index(i).field("id"), format!("node `{}` is never trained, loaded or used", n.id))
                    .hint("add it to a stage's `train` list, or remove it"),
            );
        }
    }
    if t.seeds.is_empty() {
        errs.push(Diagnostic::at(root.field("training").field("seeds"), "at least one seed is needed").hint("e.g. `seeds: [0, 1, 2]`"));
    }
    if spec.data.train_limit == Some(0) || spec.data.test_limit == Some(0) {
        errs.push(Diagnostic::at(root.field("data"), "a split limit of 0 leaves no samples"));
    }

    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Plan {
        name: spec.name.to_string(),
        description: spec.description.clone(),
        data: spec.data.clone(),
        input_shape,
        classes,
        nodes: spec
            .nodes
            .iter()
            .map(|n| PlanNode {
                id: n.id.to_string(),
                model: n.model.clone(),
                frozen: n.fixed(),
                checkpoint: n.checkpoint.clone(),
                optimizer: n.optimizer.clone().unwrap_or_else(|| t.optimizer.clone()),
                schedule: n.schedule.clone().unwrap_or_else(|| t.schedule.clone()),
                train_on: n.train_on.clone(),
                backend: n.backend,
                device: n.device,
            })
            .collect(),
        stages,
        batch_size: t.batch_size.get(),
        concurrency: t.concurrency,
        seeds: t.seeds.clone(),
        output: spec.output.clone(),
        backend: t.backend,
        device: t.device,
    })
}
