//! Edges → loss terms: sources and target resolved, one check per loss kind, `Mutual` expanded
//! into one `MutualKl` term per peer.

use super::{Diagnostic, FieldPath, Pending, Resolver};
use crate::config::plan::Term;
use crate::config::schema::{EdgeSpec, LossSpec};
use crate::values::{NodeId, Temperature, Weight};

/// An `Edge` being resolved: where it is, its target and its sources.
struct EdgeAt<'e> {
    /// `edges[k]`.
    p: FieldPath,
    /// The target's index (`None` when unknown).
    to: Option<usize>,
    /// The target's id as written.
    to_id: &'e NodeId,
    /// The sources as written.
    from: &'e [NodeId],
    /// The known sources' indices and paths.
    from_i: Vec<usize>,
    from_paths: Vec<FieldPath>,
    head: Option<usize>,
    from_head: Option<usize>,
}

impl Resolver<'_> {
    /// Every edge's terms, in file order.
    pub(super) fn terms(&mut self) -> Vec<Pending> {
        let spec = self.spec;
        let mut terms = Vec::new();
        for (e, edge) in spec.edges.iter().enumerate() {
            let p = Self::root().field("edges").index(e);
            match edge {
                EdgeSpec::Edge { from, to, loss, weight, ramp_up_epochs, gate, head, from_head, stages } => {
                    let Some((at, loss)) = self.edge(p, from, to, loss, (*head, *from_head)) else { continue };
                    let term = Term {
                        to: at.to.expect("edge() returns resolved targets only"),
                        from: at.from_i,
                        loss,
                        weight: weight.get(),
                        ramp_up_epochs: *ramp_up_epochs,
                        gate: *gate,
                        origin: at.p.to_string(),
                        head: *head,
                        from_head: *from_head,
                        stages: stages.iter().map(|s| s.to_string()).collect(),
                    };
                    terms.push(Pending { term, to_path: at.p.field("to"), from_paths: at.from_paths });
                }
                EdgeSpec::Mutual { peers, temperature, weight } => terms.extend(self.mutual(p, peers, *temperature, *weight)),
            }
        }
        terms
    }

    /// An `Edge`: its nodes, its loss (checked, source weights normalised), its head and the
    /// sources' head. `None` when the target is unknown (the problems are recorded).
    fn edge<'e>(
        &mut self,
        p: FieldPath,
        from: &'e [NodeId],
        to: &'e NodeId,
        loss: &LossSpec,
        (head, from_head): (Option<usize>, Option<usize>),
    ) -> Option<(EdgeAt<'e>, LossSpec)> {
        let to_i = self.lookup(to, p.field("to"));
        let mut at = EdgeAt { p, to: to_i, to_id: to, from, from_i: Vec::new(), from_paths: Vec::new(), head, from_head };
        for (k, f) in from.iter().enumerate() {
            let fp = at.p.field("from").index(k);
            let Some(i) = self.lookup(f, fp.clone()) else { continue };
            if Some(i) == to_i {
                self.error(
                    Diagnostic::at(fp.clone(), format!("node `{f}` cannot be its own source"))
                        .hint("to put a node's own output into an ensemble target use `Ensemble(include_self: true)`"),
                );
            }
            if at.from_i.contains(&i) {
                self.error(Diagnostic::at(fp.clone(), format!("node `{f}` is listed twice")));
            }
            at.from_i.push(i);
            at.from_paths.push(fp);
        }
        let loss = self.check_loss(&at, loss);
        self.check_head(&at, &loss);
        self.check_from_head(&at, &loss);
        at.to.is_some().then_some((at, loss))
    }

    /// The checks of each loss kind; returns the loss with its source weights normalised.
    fn check_loss(&mut self, at: &EdgeAt, loss: &LossSpec) -> LossSpec {
        let mut loss = loss.clone();
        match &mut loss {
            LossSpec::CrossEntropy => self.check_cross_entropy(at),
            LossSpec::OwnOutput { .. } => self.check_own_output(at, ("OwnOutput", "the node's output")),
            LossSpec::OtherHeads { .. } => self.check_own_output(at, ("OtherHeads", "the node's other heads")),
            _ if at.from.is_empty() => {
                self.error(Diagnostic::at(at.p.field("loss"), "this loss needs at least one source node").hint("add `from: [\"teacher\"]`"))
            }
            LossSpec::SoftTarget { source_weights, .. } => self.check_soft_target(at, source_weights),
            LossSpec::Hint { from_tap, to_tap } => self.check_feature(at, from_tap, to_tap, false),
            LossSpec::Attention { from_tap, to_tap } => self.check_feature(at, from_tap, to_tap, true),
            LossSpec::Lfme => self.check_lfme(at),
            LossSpec::Dkd { .. } | LossSpec::Dist { .. } => self.check_one_source(at),
            LossSpec::PeerAttention { tap, dim, .. } => self.check_peer_attention(at, tap, *dim),
            LossSpec::MutualKl { .. } | LossSpec::Ensemble { .. } => {}
        }
        loss
    }

    /// `CrossEntropy` learns from the labels: no sources.
    fn check_cross_entropy(&mut self, at: &EdgeAt) {
        if !at.from.is_empty() {
            self.error(
                Diagnostic::at(at.p.field("from"), "`CrossEntropy` learns from the labels and takes no sources")
                    .hint("remove `from`, or use `SoftTarget` to learn from another node"),
            );
        }
    }

    /// `OwnOutput` and `OtherHeads` train one head from the node's own outputs: no sources, a
    /// head.
    fn check_own_output(&mut self, at: &EdgeAt, (name, what): (&str, &str)) {
        if !at.from.is_empty() {
            self.error(Diagnostic::at(at.p.field("from"), format!("`{name}` learns from {what} and takes no sources")).hint("remove `from`"));
        }
        if at.head.is_none() {
            self.error(
                Diagnostic::at(at.p.field("loss"), format!("`{name}` trains one head of a multi-head node (`Hydra`, `BranchedResNet`) from {what}"))
                    .hint("add `head: m`"),
            );
        }
    }

    /// `Dkd` and `Dist` compare the target with one source.
    fn check_one_source(&mut self, at: &EdgeAt) {
        if at.from.len() != 1 {
            self.error(
                Diagnostic::at(at.p.field("from"), "this loss compares the node with exactly one source").hint("give one node in `from` (a teacher or a peer)"),
            );
        }
    }

    /// `SoftTarget`'s source weights: one per source, normalised to sum to 1.
    fn check_soft_target(&mut self, at: &EdgeAt, weights: &mut [Weight]) {
        let path = at.p.field("loss").field("source_weights");
        if weights.is_empty() {
            return;
        }
        if weights.len() != at.from.len() {
            let msg = format!("{} source weights for {} sources", weights.len(), at.from.len());
            self.error(Diagnostic::at(path, msg).hint("give one weight per node in `from`, or none for equal weights"));
            return;
        }
        let total: f64 = weights.iter().map(|w| w.get()).sum();
        if total <= 0.0 {
            self.error(Diagnostic::at(path, "source weights sum to 0"));
            return;
        }
        for w in weights.iter_mut() {
            *w = Weight::new(w.get() / total).expect("a normalised weight is valid");
        }
    }

    /// `Hint` and `Attention`: one source; taps that exist, at the same resolution; attention
    /// needs feature maps.
    fn check_feature(&mut self, at: &EdgeAt, from_tap: &str, to_tap: &str, attention: bool) {
        if at.from.len() != 1 {
            self.error(Diagnostic::at(at.p.field("from"), "feature losses take exactly one source"));
        }
        let source = at.from_i.first().copied();
        let u = self.tap_shape(at, source, from_tap, "from_tap");
        let v = self.tap_shape(at, at.to, to_tap, "to_tap");
        let (Some(u), Some(v)) = (u, v) else { return };
        let what = if attention { "attention transfer" } else { "a hint (its adapter maps channels, not positions)" };
        if u.len() != v.len() || u[1..] != v[1..] {
            self.error(
                Diagnostic::at(
                    at.p.field("loss"),
                    format!("{what} needs taps of the same spatial size: `{from_tap}` is {u:?}, `{to_tap}` is {v:?} (channels first)"),
                )
                .hint("pick taps at the same resolution, e.g. both after the same number of pooling blocks"),
            );
        } else if attention && u.len() < 2 {
            self.error(
                Diagnostic::at(at.p.field("loss"), format!("attention transfer needs feature maps, but `{from_tap}` is a flat vector {u:?}"))
                    .hint("use conv taps (`block1`, `stage2`, ...), or `Hint` for flat features"),
            );
        }
    }

    /// `PeerAttention`: the tap exists on the target and on every source with the same number of
    /// channels (one pair of projections reads them all), and the projection has a width.
    fn check_peer_attention(&mut self, at: &EdgeAt, tap: &str, dim: usize) {
        if dim == 0 {
            self.error(Diagnostic::at(at.p.field("loss").field("dim"), "the projection width must be at least 1").hint("the OKDDip authors use channels / 8"));
        }
        let Some(own) = self.tap_shape(at, at.to, tap, "tap") else { return };
        for &i in &at.from_i.clone() {
            let Some(other) = self.tap_shape(at, Some(i), tap, "tap") else { continue };
            if other[0] != own[0] {
                self.error(
                    Diagnostic::at(
                        at.p.field("loss").field("tap"),
                        format!("`{tap}` has {} channels on `{}` but {} on `{}`", own[0], at.to_id, other[0], self.spec.nodes[i].id),
                    )
                    .hint("the peers' features go through the same projections: pick a tap with as many channels on every peer"),
                );
            }
        }
    }

    /// The shape of tap `tap` of `node`, or an error at `loss.<field>` listing its taps.
    fn tap_shape(&mut self, at: &EdgeAt, node: Option<usize>, tap: &str, field: &'static str) -> Option<Vec<usize>> {
        let n = node?;
        let model = self.model_of(n);
        let taps = model.tap_shapes(&self.input_shape);
        match taps.iter().find(|(t, _)| t == tap) {
            Some((_, shape)) => Some(shape.clone()),
            None => {
                let names: Vec<&str> = taps.iter().map(|(t, _)| t.as_str()).collect();
                let d = Diagnostic::at(at.p.field("loss").field(field), format!("node `{}` has no tap `{tap}`", self.spec.nodes[n].id));
                self.error(d.hint(format!("its taps are: {}", names.join(", "))));
                None
            }
        }
    }

    /// `Lfme`: a data set with domains, one expert per whole domain, every domain the target
    /// trains on covered.
    fn check_lfme(&mut self, at: &EdgeAt) {
        let spec = self.spec;
        if self.domains.is_empty() {
            self.error(Diagnostic::at(at.p.field("loss"), "`Lfme` needs a data set with domains").hint("use `source: RotatedMnist(test_domain: ...)`"));
        }
        let mut covered: Vec<usize> = Vec::new();
        let mut all_single = true;
        for (&f, fp) in at.from_i.iter().zip(&at.from_paths) {
            let sub = spec.nodes[f].train_on.as_ref().map(|s| s.domains.clone()).unwrap_or_default();
            let class_filter = spec.nodes[f].train_on.as_ref().is_some_and(|s| !s.classes.is_empty() || !s.exclude_classes.is_empty());
            if sub.len() != 1 || class_filter {
                all_single = false;
                self.error(
                    Diagnostic::at(fp.clone(), format!("LFME expert `{}` must train on exactly one whole domain", spec.nodes[f].id))
                        .hint("give it `train_on: Subset(domains: [d])`, without class filters"),
                );
            } else if covered.contains(&sub[0]) {
                self.error(Diagnostic::at(fp.clone(), format!("two experts for domain {}", sub[0])));
            } else {
                covered.push(sub[0]);
            }
        }
        let Some(t) = at.to else { return };
        let wanted = spec.nodes[t].train_on.as_ref().filter(|s| !s.domains.is_empty()).map_or(self.domains.clone(), |s| s.domains.clone());
        let missing: Vec<usize> = wanted.iter().copied().filter(|d| !covered.contains(d)).collect();
        if !missing.is_empty() && !self.domains.is_empty() && all_single {
            self.error(
                Diagnostic::at(at.p.field("from"), format!("no expert for domain(s) {missing:?}, which `{}` trains on", spec.nodes[t].id))
                    .hint("add one expert node per training domain"),
            );
        }
    }

    /// `head: m` needs a multi-head target with that head, and a logit loss.
    fn check_head(&mut self, at: &EdgeAt, loss: &LossSpec) {
        let (Some(m), Some(t)) = (at.head, at.to) else { return };
        let heads = self.model_of(t).heads();
        let to = at.to_id;
        let path = at.p.field("head");
        if heads == 0 {
            self.error(
                Diagnostic::at(path, format!("`head` needs a multi-head target (`Hydra`, `BranchedResNet`), and `{to}` is not one"))
                    .hint("remove `head`, or make the node a `Hydra(...)` or a `BranchedResNet(...)`"),
            );
        } else if m == 0 || m > heads {
            self.error(Diagnostic::at(path, format!("`{to}` has heads 1..={heads}, not {m}")).hint("heads are numbered from 1, like their taps `head1`, …"));
        } else if matches!(loss, LossSpec::OtherHeads { .. }) && heads < 2 {
            self.error(
                Diagnostic::at(path, format!("`{to}` has one head: `OtherHeads` needs others to learn from"))
                    .hint("give the `Hydra` `heads: 2` or more (a `BranchedResNet` `branches: 2` or more)"),
            );
        } else if matches!(loss, LossSpec::Hint { .. } | LossSpec::Attention { .. } | LossSpec::Lfme | LossSpec::PeerAttention { .. }) {
            self.error(
                Diagnostic::at(path, "`head` applies to logit losses (CrossEntropy, SoftTarget, MutualKl, Ensemble, Dkd, Dist)")
                    .hint("remove `head`: feature losses read the node's taps"),
            );
        }
    }

    /// `from_head: m` needs sources that all have head m, and a loss that reads the sources'
    /// logits.
    fn check_from_head(&mut self, at: &EdgeAt, loss: &LossSpec) {
        let Some(m) = at.from_head else { return };
        let path = at.p.field("from_head");
        if !matches!(loss, LossSpec::SoftTarget { .. } | LossSpec::MutualKl { .. } | LossSpec::Ensemble { .. } | LossSpec::Dkd { .. } | LossSpec::Dist { .. }) {
            self.error(
                Diagnostic::at(path, "`from_head` applies to losses that read the sources' logits (SoftTarget, MutualKl, Ensemble, Dkd, Dist)")
                    .hint("remove `from_head`, or learn from a head with `SoftTarget(temperature: …)`"),
            );
            return;
        }
        for (k, &f) in at.from_i.iter().enumerate() {
            let heads = self.model_of(f).heads();
            let id = &at.from[k];
            if heads == 0 {
                self.error(
                    Diagnostic::at(
                        path.clone(),
                        format!("`from_head` needs multi-head sources (`Hydra`, `BranchedResNet`, or an `Ema` of one), and `{id}` is not one"),
                    )
                    .hint("remove `from_head`"),
                );
            } else if m == 0 || m > heads {
                self.error(
                    Diagnostic::at(path.clone(), format!("source `{id}` has heads 1..={heads}, not {m}"))
                        .hint("heads are numbered from 1, like their taps `head1`, …"),
                );
            }
        }
    }

    /// `Mutual`: one `MutualKl` term per peer, from the other peers.
    fn mutual(&mut self, p: FieldPath, peers: &[NodeId], temperature: Temperature, weight: Weight) -> Vec<Pending> {
        if peers.len() < 2 {
            self.error(Diagnostic::at(p.field("peers"), "mutual learning needs at least two peers"));
        }
        let mut ids: Vec<(usize, FieldPath)> = Vec::new();
        for (k, peer) in peers.iter().enumerate() {
            let q = p.field("peers").index(k);
            let Some(i) = self.lookup(peer, q.clone()) else { continue };
            if ids.iter().any(|(j, _)| *j == i) {
                self.error(Diagnostic::at(q, format!("peer `{peer}` is listed twice")));
            } else {
                ids.push((i, q));
            }
        }
        ids.iter()
            .filter_map(|(i, q)| {
                let others: Vec<&(usize, FieldPath)> = ids.iter().filter(|(j, _)| j != i).collect();
                if others.is_empty() {
                    return None;
                }
                let term = Term {
                    to: *i,
                    from: others.iter().map(|(j, _)| *j).collect(),
                    loss: LossSpec::MutualKl { temperature, standardize: false },
                    weight: weight.get(),
                    ramp_up_epochs: 0,
                    gate: Default::default(),
                    origin: p.to_string(),
                    head: None,
                    from_head: None,
                    stages: Vec::new(),
                };
                Some(Pending { term, to_path: q.clone(), from_paths: others.iter().map(|(_, r)| r.clone()).collect() })
            })
            .collect()
    }
}
