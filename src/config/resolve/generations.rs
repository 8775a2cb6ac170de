//! Born-again generations (Furlanello et al., "Born-Again Neural Networks", ICML 2018): a stage
//! declared with `generations: K` becomes K stages, each training a fresh copy of the stage's
//! node taught by the copy before it.

use crate::config::plan::{Plan, PlanStage};

/// `plan` with every stage `s` of `generations[s] = K > 1` followed by K − 1 stages
/// `<name>-gen2` … `<name>-gen<K>`; stage `<name>-gen<g>` trains a new node `<id>-gen<g>` — the
/// stage's node as declared (model, optimiser, schedule, initial checkpoint), initialised anew as
/// its own node — with the stage's terms, every source replaced by generation g − 1 (the
/// resolver has checked that each term has at most one source and reads its output).
/// Generation 1 is the node itself, taught by the terms' own sources.
pub(super) fn born_again(mut plan: Plan, generations: &[usize]) -> Plan {
    let declared = std::mem::take(&mut plan.stages);
    for (stage, &k) in declared.into_iter().zip(generations) {
        if k < 2 {
            plan.stages.push(stage);
            continue;
        }
        let first = stage.train[0];
        let mut last = first;
        let copies: Vec<PlanStage> = (2..=k)
            .map(|g| {
                let mut node = plan.nodes[first].clone();
                node.id = format!("{}-gen{g}", node.id);
                plan.nodes.push(node);
                let this = plan.nodes.len() - 1;
                let name = format!("{}-gen{g}", stage.name);
                let terms = stage
                    .terms
                    .iter()
                    .map(|t| {
                        let mut t = t.clone();
                        t.to = this;
                        t.from = t.from.iter().map(|_| last).collect();
                        if !t.stages.is_empty() {
                            t.stages = vec![name.clone()];
                        }
                        t
                    })
                    .collect();
                last = this;
                PlanStage { name, train: vec![this], epochs: stage.epochs, update: stage.update, terms }
            })
            .collect();
        plan.stages.push(stage);
        plan.stages.extend(copies);
    }
    plan
}
