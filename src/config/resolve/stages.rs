//! Stages: which nodes each one trains, which terms act in it, and whether every source of a
//! term is available when the stage runs (trained with it, trained earlier, or loaded).

use std::collections::HashMap;

use super::{Declared, Diagnostic, FieldPath, Pending, Resolver, closest};
use crate::config::plan::PlanStage;
use crate::config::schema::StageSpec;
use crate::losses::Targets;

/// The most born-again generations a stage may declare.
const MAX_GENERATIONS: usize = 100;

impl Resolver<'_> {
    /// The declared stages; without `stages:`, one stage `main` training every non-frozen node
    /// that receives a loss term (a node that only serves as a source keeps its checkpoint).
    pub(super) fn declare_stages(&mut self, terms: &[Pending]) -> Vec<Declared> {
        let spec = self.spec;
        let t = &spec.training;
        if spec.stages.is_empty() {
            let train = (0..spec.nodes.len())
                // a duplicate id is reported once
                .filter(|&i| !spec.nodes[i].fixed() && self.is_first(i) && terms.iter().any(|p| p.term.to == i))
                .map(|i| (i, Self::root().field("nodes").index(i)))
                .collect();
            return vec![Declared { name: "main".into(), train, epochs: t.epochs.get(), update: t.update, generations: 1 }];
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        spec.stages
            .iter()
            .enumerate()
            .map(|(s, st)| {
                let p = Self::root().field("stages").index(s);
                if let Some(first) = seen.insert(st.name.as_str(), s) {
                    self.error(Diagnostic::at(p.field("name"), format!("duplicate stage name `{}` (also `stages[{first}]`)", st.name)));
                }
                self.declare_stage(st, &p)
            })
            .collect()
    }

    /// One declared stage: at least one node, each trainable and listed once.
    fn declare_stage(&mut self, st: &StageSpec, p: &FieldPath) -> Declared {
        let spec = self.spec;
        if st.train.is_empty() {
            self.error(Diagnostic::at(p.field("train"), "a stage must train at least one node"));
        }
        let mut train: Vec<(usize, FieldPath)> = Vec::new();
        for (k, id) in st.train.iter().enumerate() {
            let q = p.field("train").index(k);
            let Some(i) = self.lookup(id, q.clone()) else { continue };
            if spec.nodes[i].fixed() {
                let what = match &spec.nodes[i].model {
                    _ if spec.nodes[i].frozen => "is frozen",
                    crate::models::ModelSpec::Ema { .. } => "is an `Ema` node (it follows another node's weights)",
                    _ => "is a recorded source",
                };
                self.error(Diagnostic::at(q, format!("node `{id}` {what} and cannot be trained")).hint(if spec.nodes[i].frozen {
                    "remove `frozen: true` from the node, or remove it from this stage"
                } else {
                    "remove it from this stage"
                }));
            } else if train.iter().any(|(j, _)| *j == i) {
                self.error(Diagnostic::at(q, format!("node `{id}` is listed twice")));
            } else {
                train.push((i, q));
            }
        }
        let generations = st.generations.unwrap_or(1);
        if !(1..=MAX_GENERATIONS).contains(&generations) {
            let d = Diagnostic::at(
                p.field("generations"),
                format!("`generations` counts the born-again generations of the stage's node: 1 to {MAX_GENERATIONS}, not {generations}"),
            );
            self.error(d.hint("e.g. `generations: 3` (the node and two born-again copies)"));
        } else if generations > 1 && train.len() != 1 {
            let d = Diagnostic::at(p.field("generations"), format!("born-again generations repeat one node, but this stage trains {}", st.train.len()));
            self.error(d.hint("put the node whose generations you want alone in its stage"));
        }
        let t = &spec.training;
        Declared { name: st.name.to_string(), train, epochs: st.epochs.map_or(t.epochs.get(), |e| e.get()), update: st.update.unwrap_or(t.update), generations }
    }

    /// Every term lands in a stage where its target trains.
    pub(super) fn check_term_targets(&mut self, terms: &[Pending], declared: &[Declared]) {
        for p in terms {
            if declared.iter().any(|d| d.trains(p.term.to)) {
                continue;
            }
            let n = &self.spec.nodes[p.term.to];
            let why = if n.model.is_recorded() {
                "is a recorded source"
            } else if let Some(e) = self.ema_of(p.term.to) {
                &format!("is an `Ema` node (it follows `{}`'s weights)", self.spec.nodes[e.of].id)
            } else if n.frozen {
                "is frozen"
            } else {
                "is not trained in any stage"
            };
            self.error(
                Diagnostic::at(p.to_path.clone(), format!("this loss goes to node `{}`, which {why}", n.id))
                    .hint("a loss term only acts on a node that trains; add the node to a stage's `train` list"),
            );
        }
    }

    /// An edge's `stages:` names stages in which its target trains.
    pub(super) fn check_term_stages(&mut self, terms: &[Pending], declared: &[Declared]) {
        for p in terms {
            for (k, st) in p.term.stages.iter().enumerate() {
                let path = p.to_path.parent().field("stages").index(k);
                match declared.iter().find(|d| &d.name == st) {
                    None => {
                        let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
                        let hint = match closest(st, names.iter().copied()) {
                            Some(c) => format!("did you mean `{c}`? The stages are: {}", names.join(", ")),
                            None => format!("the stages are: {}", names.join(", ")),
                        };
                        self.error(Diagnostic::at(path, format!("no stage `{st}`")).hint(hint));
                    }
                    Some(d) if !d.trains(p.term.to) => self.error(
                        Diagnostic::at(path, format!("node `{}` does not train in stage `{st}`", self.spec.nodes[p.term.to].id))
                            .hint("list only stages whose `train` includes the edge's `to`"),
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    /// The plan's stages: each trained node's terms (at least one), with their sources checked.
    pub(super) fn assign_terms(&mut self, terms: &[Pending], declared: &[Declared]) -> Vec<PlanStage> {
        let mut stages = Vec::new();
        for (s, d) in declared.iter().enumerate() {
            let mut stage_terms = Vec::new();
            for (node, npath) in &d.train {
                let mine: Vec<&Pending> =
                    terms.iter().filter(|p| p.term.to == *node && (p.term.stages.is_empty() || p.term.stages.contains(&d.name))).collect();
                if mine.is_empty() {
                    let id = &self.spec.nodes[*node].id;
                    self.error(
                        Diagnostic::at(npath.clone(), format!("node `{id}` trains in stage `{}` but no edge gives it a loss", d.name))
                            .hint(format!("add `Edge(to: \"{id}\", loss: CrossEntropy)`")),
                    );
                }
                for p in mine {
                    self.check_sources(p, s, declared);
                    if d.generations > 1 {
                        self.check_generation_term(p);
                    }
                    stage_terms.push(p.term.clone());
                }
                if d.generations > 1 {
                    self.check_generation_ids(*node, npath, d.generations);
                }
            }
            stages.push(PlanStage {
                name: d.name.clone(),
                train: d.train.iter().map(|(i, _)| *i).collect(),
                epochs: d.epochs,
                update: d.update,
                terms: stage_terms,
            });
        }
        stages
    }

    /// Every source of term `p` in stage `s` has outputs for what the target trains on: it
    /// trains in the stage on the same samples, was trained earlier, or is loaded.
    fn check_sources(&mut self, p: &Pending, s: usize, declared: &[Declared]) {
        let spec = self.spec;
        let d = &declared[s];
        let (node, name) = (p.term.to, &d.name);
        for (&src, spath) in p.term.from.iter().zip(&p.from_paths) {
            let in_stage = d.trains(src);
            let (src_node, to_node) = (&spec.nodes[src], &spec.nodes[node]);
            // a source trained on a subset in this stage only has outputs on that subset
            if in_stage && p.term.loss.kind().reads().targets != Targets::RoutedExperts && src_node.train_on.is_some() && src_node.train_on != to_node.train_on
            {
                self.error(
                    Diagnostic::at(
                        spath.clone(),
                        format!(
                            "`{}` trains only on a subset in stage `{name}`, so its outputs do not cover every sample `{}` trains on",
                            src_node.id, to_node.id
                        ),
                    )
                    .hint("give both nodes the same `train_on`, or train the source in an earlier stage"),
                );
            }
            // an `Ema` node has outputs where the node it tracks has weights
            let (src, src_node) = match self.ema_of(src) {
                Some(e) => (e.of, &spec.nodes[e.of]),
                None => (src, src_node),
            };
            let in_stage = d.trains(src);
            let loaded = src_node.checkpoint.is_some() || src_node.model.is_recorded();
            let trained_at: Vec<usize> = (0..declared.len()).filter(|&k| declared[k].trains(src)).collect();
            if in_stage || loaded || trained_at.iter().any(|&k| k < s) {
                continue;
            }
            let src_id = &src_node.id;
            let diagnostic = match trained_at.iter().find(|&&k| k > s) {
                Some(&later) => Diagnostic::at(
                    spath.clone(),
                    format!("stage `{name}` needs node `{src_id}` as a source, but `{src_id}` is only trained later, in stage `{}`", declared[later].name),
                )
                .hint(format!("move the stage that trains `{src_id}` before `{name}`, or train both in the same stage")),
                None => Diagnostic::at(
                    spath.clone(),
                    format!("stage `{name}` needs node `{src_id}` as a source, but `{src_id}` is never trained and has no checkpoint"),
                )
                .hint(format!("train `{src_id}` in an earlier stage, or give it `checkpoint: \"...\"`")),
            };
            self.error(diagnostic);
        }
    }

    /// A term of a born-again stage: the next generation reads the last in place of its one
    /// source, so a term has at most one, and reads its output (no `from_head`).
    fn check_generation_term(&mut self, p: &Pending) {
        if p.term.from.len() > 1 {
            let msg = format!(
                "born-again generations learn from the generation before them in place of a term's one source, but this edge has {}",
                p.term.from.len()
            );
            self.error(Diagnostic::at(p.from_paths[1].clone(), msg).hint("give the stage's node one teacher, or drop `generations`"));
        } else if p.term.from_head.is_some() {
            let msg = "born-again generations read the generation before them whole, not one of its heads";
            self.error(Diagnostic::at(p.to_path.parent().field("from_head"), msg).hint("drop `from_head`, or `generations`"));
        }
    }

    /// The generations' ids `<id>-gen<g>` are free.
    fn check_generation_ids(&mut self, node: usize, path: &FieldPath, generations: usize) {
        let id = &self.spec.nodes[node].id;
        for g in 2..=generations {
            let name = format!("{id}-gen{g}");
            if self.index.contains_key(name.as_str()) {
                let msg = format!("generation {g} of `{id}` is named `{name}`, which another node already is");
                self.error(Diagnostic::at(path.clone(), msg).hint("rename that node"));
            }
        }
    }

    /// Nodes nobody trains, loads or uses; `Ema` nodes of nodes that never train.
    pub(super) fn check_unused_nodes(&mut self, terms: &[Pending], declared: &[Declared]) {
        let spec = self.spec;
        for (i, n) in spec.nodes.iter().enumerate() {
            // (an average of a recorded source or of another average is reported by check_ema)
            let plain_network = |e: &crate::config::EmaOf| e.of != i && spec.nodes[e.of].model.architecture().is_some();
            if let Some(e) = self.ema_of(i).filter(|e| plain_network(e) && !declared.iter().any(|d| d.trains(e.of))) {
                let of = &spec.nodes[e.of].id;
                self.error(
                    Diagnostic::at(
                        Self::root().field("nodes").index(i).field("model").field("of"),
                        format!("`{of}` never trains, so its average would never move"),
                    )
                    .hint(format!("train `{of}` in a stage, or remove `{}`", n.id)),
                );
            }
            let used = terms.iter().any(|p| p.term.from.contains(&i) || p.term.to == i);
            let trained = declared.iter().any(|d| d.trains(i));
            if self.is_first(i) && !n.fixed() && n.checkpoint.is_none() && !trained && !used {
                self.error(
                    Diagnostic::at(Self::root().field("nodes").index(i).field("id"), format!("node `{}` is never trained, loaded or used", n.id))
                        .hint("add it to a stage's `train` list, or remove it"),
                );
            }
        }
    }
}
