//! Edges → loss terms: sources and target resolved, one check per loss kind, `Mutual` expanded
//! into one `MutualKl` term per peer.

use super::{Diagnostic, FieldPath, Pending, Resolver};
use crate::config::plan::Term;
use crate::config::schema::{EdgeSpec, LossSpec};
use crate::losses::{Arity, EdgeCheck, MutualKl, NodeFacts, Targets};
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
        // what the loss kinds' checks see of every node, gathered once
        let nodes: Vec<NodeFacts> = (0..spec.nodes.len())
            .map(|i| NodeFacts { id: spec.nodes[i].id.as_str(), model: self.model_of(i), train_on: spec.nodes[i].train_on.as_ref() })
            .collect();
        let mut terms = Vec::new();
        for (e, edge) in spec.edges.iter().enumerate() {
            let p = Self::root().field("edges").index(e);
            match edge {
                EdgeSpec::Edge { from, to, loss, weight, ramp_up_epochs, gate, head, from_head, stages } => {
                    let Some((at, loss)) = self.edge(p.clone(), from, to, loss, (*head, *from_head), &nodes) else { continue };
                    if gate.is_per_sample() && (loss.kind().reads().targets != Targets::SourceLogits || at.from_i.len() != 1) {
                        let msg = format!(
                            "the `{gate:?}` gate passes the samples the edge's source classifies correctly: it needs one source whose logits `{}` reads",
                            loss.kind().name()
                        );
                        self.error(Diagnostic::at(p.field("gate"), msg).hint("use it on a KL edge from one node (e.g. `MutualKl`), or choose another gate"));
                        continue;
                    }
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
        nodes: &[NodeFacts],
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
        let loss = self.check_loss(&at, loss, nodes);
        self.check_head(&at, &loss);
        self.check_from_head(&at, &loss);
        at.to.is_some().then_some((at, loss))
    }

    /// The checks of the edge's loss kind ([`crate::losses::LossKind::check`]); returns the
    /// loss with its options normalised (source weights).
    fn check_loss(&mut self, at: &EdgeAt, loss: &LossSpec, nodes: &[NodeFacts]) -> LossSpec {
        let mut loss = loss.clone();
        if loss.kind().arity() == Arity::AtLeastOne && at.from.is_empty() {
            self.error(Diagnostic::at(at.p.field("loss"), "this loss needs at least one source node").hint("add `from: [\"teacher\"]`"));
            return loss;
        }
        let mut edge = EdgeCheck {
            path: at.p.clone(),
            to: at.to,
            to_id: at.to_id.as_str(),
            written_sources: at.from.len(),
            from: at.from_i.clone(),
            from_paths: at.from_paths.clone(),
            head: at.head,
            nodes,
            input_shape: &self.input_shape,
            domains: &self.domains,
            errs: Vec::new(),
        };
        loss.kind_mut().check(&mut edge);
        let errs = edge.errs;
        self.errs.extend(errs);
        loss
    }

    /// `head: m` needs a multi-head target with that head, and a logit loss.
    fn check_head(&mut self, at: &EdgeAt, loss: &LossSpec) {
        let (Some(m), Some(t)) = (at.head, at.to) else { return };
        let heads = self.model_of(t).heads();
        let to = at.to_id;
        let path = at.p.field("head");
        if heads == 0 {
            self.error(
                Diagnostic::at(path, format!("`head` needs a multi-head target (`Branched`, `Hydra`, `BranchedResNet`), and `{to}` is not one"))
                    .hint("remove `head`, or make the node a `Branched(of: ..., at: ..., branches: ...)`"),
            );
        } else if m == 0 || m > heads {
            self.error(Diagnostic::at(path, format!("`{to}` has heads 1..={heads}, not {m}")).hint("heads are numbered from 1, like their taps `head1`, …"));
        } else if !loss.kind().reads().takes_head() {
            let name = loss.kind().name();
            let d = Diagnostic::at(path, format!("`head` picks the head whose logits a loss trains, and `{name}` does not train the node's logits"));
            self.error(d.hint("remove `head`: feature losses read the node's taps"));
        }
    }

    /// `from_head: m` needs sources that all have head m, and a loss that reads the sources'
    /// logits.
    fn check_from_head(&mut self, at: &EdgeAt, loss: &LossSpec) {
        let Some(m) = at.from_head else { return };
        let path = at.p.field("from_head");
        if !loss.kind().reads().takes_from_head() {
            let name = loss.kind().name();
            let d = Diagnostic::at(
                path,
                format!("`from_head` picks the head of each source whose logits a loss reads, and `{name}` does not read the sources' logits"),
            );
            self.error(d.hint("remove `from_head`, or learn from a head with `SoftTarget(temperature: …)`"));
            return;
        }
        for (k, &f) in at.from_i.iter().enumerate() {
            let heads = self.model_of(f).heads();
            let id = &at.from[k];
            if heads == 0 {
                self.error(
                    Diagnostic::at(
                        path.clone(),
                        format!("`from_head` needs multi-head sources (`Branched`, `Hydra`, `BranchedResNet`, or an `Ema` of one), and `{id}` is not one"),
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
                    loss: MutualKl { temperature, standardize: false }.into(),
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
