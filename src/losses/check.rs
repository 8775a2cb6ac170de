//! What a loss kind's checks see of the edge being resolved: its place in the file, its nodes
//! and their facts. The resolver builds one per edge and collects the diagnostics.

use crate::data::subset::Subset;
use crate::diagnostics::Diagnostic;
use crate::diagnostics::locate::FieldPath;
use crate::models::ModelSpec;

/// A node as the checks see it.
pub struct NodeFacts<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its architecture (an `Ema` node's: the tracked node's).
    pub model: &'a ModelSpec,
    /// What it trains on.
    pub train_on: Option<&'a Subset>,
}

/// An edge being resolved.
pub struct EdgeCheck<'a> {
    /// `edges[k]`.
    pub path: FieldPath,
    /// The target's index (`None` when unknown).
    pub to: Option<usize>,
    /// The target's id as written.
    pub to_id: &'a str,
    /// How many sources the edge names.
    pub written_sources: usize,
    /// The known sources' indices and their paths.
    pub from: Vec<usize>,
    /// Paths of the known sources.
    pub from_paths: Vec<FieldPath>,
    /// `head: m`.
    pub head: Option<usize>,
    /// Every node of the file, by index.
    pub nodes: &'a [NodeFacts<'a>],
    /// Shape of one sample, without the batch.
    pub input_shape: &'a [usize],
    /// The training split's domains (empty for data without domains).
    pub domains: &'a [usize],
    /// What the checks found.
    pub errs: Vec<Diagnostic>,
}

impl EdgeCheck<'_> {
    /// Records a problem.
    pub fn error(&mut self, d: Diagnostic) {
        self.errs.push(d);
    }

    /// `edges[k].loss`.
    pub fn loss_path(&self) -> FieldPath {
        self.path.field("loss")
    }

    /// Reports sources given to a loss that takes none (`name` learns from `what`).
    pub fn no_sources(&mut self, name: &str, what: &str, hint: &str) {
        if self.written_sources > 0 {
            let d = Diagnostic::at(self.path.field("from"), format!("`{name}` learns from {what} and takes no sources"));
            self.error(d.hint(hint));
        }
    }

    /// Reports a number of sources other than one (`message` says why one).
    pub fn one_source(&mut self, message: &str, hint: Option<&str>) {
        if self.written_sources != 1 {
            let d = Diagnostic::at(self.path.field("from"), message);
            self.error(match hint {
                Some(h) => d.hint(h),
                None => d,
            });
        }
    }

    /// Reports a loss that trains one head of the target but has no `head: m`.
    pub fn needs_head(&mut self, name: &str, what: &str) {
        if self.head.is_none() {
            let d =
                Diagnostic::at(self.loss_path(), format!("`{name}` trains one head of a multi-head node (`Branched`, `Hydra`, `BranchedResNet`) from {what}"));
            self.error(d.hint("add `head: m`"));
        }
    }

    /// The number of heads of the target (0 when unknown or single-headed).
    pub fn target_heads(&self) -> usize {
        self.to.map_or(0, |t| self.nodes[t].model.heads())
    }

    /// The shape of tap `tap` of `node`, or an error at `loss.<field>` listing its taps.
    pub fn tap_shape(&mut self, node: Option<usize>, tap: &str, field: &'static str) -> Option<Vec<usize>> {
        let n = node?;
        let taps = self.nodes[n].model.tap_shapes(self.input_shape);
        match taps.iter().find(|(t, _)| t == tap) {
            Some((_, shape)) => Some(shape.clone()),
            None => {
                let names: Vec<&str> = taps.iter().map(|(t, _)| t.as_str()).collect();
                let d = Diagnostic::at(self.loss_path().field(field), format!("node `{}` has no tap `{tap}`", self.nodes[n].id));
                self.error(d.hint(format!("its taps are: {}", names.join(", "))));
                None
            }
        }
    }
}

impl EdgeCheck<'_> {
    /// The shapes of a feature term's taps, `from_tap` on its one source and `to_tap` on the
    /// target (reporting a number of sources other than one and unknown taps).
    pub fn feature_taps(&mut self, from_tap: &str, to_tap: &str) -> Option<(Vec<usize>, Vec<usize>)> {
        self.one_source("feature losses take exactly one source", None);
        let source = self.from.first().copied();
        let u = self.tap_shape(source, from_tap, "from_tap");
        let v = self.tap_shape(self.to, to_tap, "to_tap");
        Some((u?, v?))
    }

    /// Whether two taps have the same positions (the adapter or the comparison maps channels
    /// only); reports them otherwise, saying `what` needs it.
    pub fn same_positions(&mut self, what: &str, (from_tap, u): (&str, &[usize]), (to_tap, v): (&str, &[usize])) -> bool {
        let same = u.len() == v.len() && u[1..] == v[1..];
        if !same {
            let msg = format!("{what} needs taps of the same spatial size: `{from_tap}` is {u:?}, `{to_tap}` is {v:?} (channels first)");
            let d = Diagnostic::at(self.loss_path(), msg);
            self.error(d.hint("pick taps at the same resolution, e.g. both after the same number of pooling blocks"));
        }
        same
    }
}
