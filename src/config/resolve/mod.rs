//! From a parsed [`ExperimentSpec`] to a checked [`Plan`], in named steps: the data and the
//! nodes (`nodes.rs`), the edges as loss terms with one check per loss kind (`edges.rs`), the
//! stages and the terms each one trains (`stages.rs`). Every step records what is wrong and goes
//! on, so that a file's problems are reported together; each carries the path of the field it
//! concerns (`edges[2].from[0]`), which [`super::locate`] maps back to line and column.

mod edges;
mod generations;
mod nodes;
mod stages;

use std::collections::HashMap;

use super::plan::{EmaOf, Plan, PlanNode, Term};
use super::schema::*;
use crate::diagnostics::locate::FieldPath;
use crate::diagnostics::{Diagnostic, closest};
use crate::values::NodeId;

/// Checks `spec` and builds its plan; all problems found are returned together.
pub fn resolve(spec: &ExperimentSpec) -> Result<Plan, Vec<Diagnostic>> {
    // a user's data files are read here (headers only) for the sample shape; without it nothing
    // else can be checked
    let (input_shape, classes) = spec.data.source.input_shape().map_err(|e| {
        let (message, fix) = e.problem_and_fix();
        let d = Diagnostic::at(FieldPath::root().field("data").field("source"), message);
        vec![match fix {
            Some(f) => d.hint(f),
            None => d,
        }]
    })?;
    let mut r = Resolver::new(spec, input_shape, classes);
    r.check_data();
    r.check_nodes();
    let terms = r.terms();
    let declared = r.declare_stages(&terms);
    r.check_term_targets(&terms, &declared);
    r.check_term_stages(&terms, &declared);
    let stages = r.assign_terms(&terms, &declared);
    r.check_unused_nodes(&terms, &declared);
    r.check_training();
    if !r.errs.is_empty() {
        return Err(r.errs);
    }
    let generations: Vec<usize> = declared.iter().map(|d| d.generations).collect();
    Ok(generations::born_again(r.plan(stages), &generations))
}

/// The state shared by the steps: the spec, the data set's facts, the node index and the
/// problems found so far.
struct Resolver<'a> {
    spec: &'a ExperimentSpec,
    errs: Vec<Diagnostic>,
    /// Shape of one sample, without the batch dimension.
    input_shape: Vec<usize>,
    classes: usize,
    /// The training split's domains (empty for data sets without domains).
    domains: Vec<usize>,
    /// Node id → index of its first declaration.
    index: HashMap<&'a str, usize>,
}

/// A loss term not yet assigned to stages, with the paths its problems are reported at.
struct Pending {
    term: Term,
    /// The term's target (`edges[k].to`, or the peer of a `Mutual`).
    to_path: FieldPath,
    /// Each source's path, in `term.from` order.
    from_paths: Vec<FieldPath>,
}

/// A stage as declared (or the implicit `main` stage of a file without stages).
struct Declared {
    name: String,
    /// Trained nodes in update order, with their paths.
    train: Vec<(usize, FieldPath)>,
    epochs: usize,
    update: UpdateOrder,
    /// Born-again generations of its one node (1: none).
    generations: usize,
}

impl Declared {
    fn trains(&self, node: usize) -> bool {
        self.train.iter().any(|(i, _)| *i == node)
    }
}

impl<'a> Resolver<'a> {
    fn new(spec: &'a ExperimentSpec, input_shape: Vec<usize>, classes: usize) -> Self {
        let domains = spec.data.source.training_domains();
        Resolver { spec, errs: Vec::new(), input_shape, classes, domains, index: HashMap::new() }
    }

    fn root() -> FieldPath {
        FieldPath::root()
    }

    fn error(&mut self, d: Diagnostic) {
        self.errs.push(d);
    }

    /// The index of node `id`, or an error at `path` with the closest declared id.
    fn lookup(&mut self, id: &NodeId, path: FieldPath) -> Option<usize> {
        if let Some(&i) = self.index.get(id.as_str()) {
            return Some(i);
        }
        let mut known: Vec<&str> = Vec::new();
        for n in &self.spec.nodes {
            if !known.contains(&n.id.as_str()) {
                known.push(n.id.as_str());
            }
        }
        let d = Diagnostic::at(path, format!("unknown node `{id}`"));
        let d = match closest(id.as_str(), known.iter().copied()) {
            Some(c) => d.hint(format!("did you mean `{c}`? Nodes: {}", known.join(", "))),
            None => d.hint(format!("declared nodes: {}", known.join(", "))),
        };
        self.error(d);
        None
    }

    /// Whether node `i` is the first declaration of its id (a duplicate is reported once).
    fn is_first(&self, i: usize) -> bool {
        self.index.get(self.spec.nodes[i].id.as_str()) == Some(&i)
    }

    /// Seeds and split limits.
    fn check_training(&mut self) {
        if self.spec.training.seeds.is_empty() {
            self.error(Diagnostic::at(Self::root().field("training").field("seeds"), "at least one seed is needed").hint("e.g. `seeds: [0, 1, 2]`"));
        }
        if self.spec.data.train_limit == Some(0) || self.spec.data.test_limit == Some(0) {
            self.error(Diagnostic::at(Self::root().field("data"), "a split limit of 0 leaves no samples"));
        }
    }

    /// What `Ema` node `i` tracks (index and decay), when it is one and its `of` exists.
    fn ema_of(&self, i: usize) -> Option<EmaOf> {
        match &self.spec.nodes[i].model {
            ModelSpec::Ema { of, decay, warmup, batch_stats } => {
                self.index.get(of.as_str()).map(|&of| EmaOf { of, decay: decay.get(), warmup: *warmup, batch_stats: *batch_stats })
            }
            _ => None,
        }
    }

    /// The architecture of node `i`: its own, or for an `Ema` node the tracked node's.
    fn model_of(&self, i: usize) -> &'a ModelSpec {
        match self.ema_of(i) {
            Some(e) if !matches!(self.spec.nodes[e.of].model, ModelSpec::Ema { .. }) => &self.spec.nodes[e.of].model,
            _ => &self.spec.nodes[i].model,
        }
    }

    /// The plan of a spec without problems, with the stages built by [`Resolver::assign_terms`].
    fn plan(self, stages: Vec<super::plan::PlanStage>) -> Plan {
        let (spec, t) = (self.spec, &self.spec.training);
        let node = |(i, n): (usize, &NodeSpec)| PlanNode {
            id: n.id.to_string(),
            model: self.model_of(i).clone(),
            fixed: n.fixed(),
            checkpoint: n.checkpoint.clone(),
            optimizer: n.optimizer.clone().unwrap_or_else(|| t.optimizer.clone()),
            schedule: n.schedule.clone().unwrap_or_else(|| t.schedule.clone()),
            train_on: n.train_on.clone(),
            backend: n.backend,
            device: n.device,
            ema: self.ema_of(i),
            switch_with: n.switch_with.as_ref().and_then(|s| self.index.get(s.as_str()).copied()),
            batch_stats: n.batch_stats,
        };
        let nodes = spec.nodes.iter().enumerate().map(node).collect();
        Plan {
            name: spec.name.to_string(),
            description: spec.description.clone(),
            data: spec.data.clone(),
            input_shape: self.input_shape,
            classes: self.classes,
            nodes,
            stages,
            batch_size: t.batch_size.get(),
            concurrency: t.concurrency,
            seeds: t.seeds.clone(),
            output: spec.output.clone(),
            backend: t.backend,
            device: t.device,
        }
    }
}

impl NodeSpec {
    /// Never trained by gradients: frozen, a recorded source, or an `Ema` node.
    fn fixed(&self) -> bool {
        self.frozen || self.model.is_recorded() || matches!(self.model, ModelSpec::Ema { .. })
    }
}
