//! The data set's own parameters and the nodes: unique ids, models that fit the data, subsets
//! that exist, checkpoints where they make sense.

use super::{Diagnostic, FieldPath, Resolver};
use crate::config::schema::{NodeSpec, Subset};

impl Resolver<'_> {
    /// The data set's parameters (MNIST-1D's generator, Rotated MNIST's held-out domain) and the
    /// augmentations (they must fit the sample shape).
    pub(super) fn check_data(&mut self) {
        let path = Self::root().field("data").field("source");
        let spec = self.spec;
        if let Some((message, hint)) = spec.data.normalization_problem(&self.input_shape) {
            self.error(Diagnostic::at(Self::root().field("data").field("normalize"), message).hint(hint));
        }
        for (k, message, hint) in spec.data.augmentation_problems(&self.input_shape) {
            let d = Diagnostic::at(Self::root().field("data").field("augment").index(k), message);
            self.error(match hint {
                Some(h) => d.hint(h),
                None => d,
            });
        }
        for (field, message, hint) in spec.data.source.problems() {
            let at = field.map_or_else(|| path.clone(), |f| path.field(f));
            let d = Diagnostic::at(at, message);
            self.error(match hint {
                Some(h) => d.hint(h),
                None => d,
            });
        }
    }

    /// Every node, building the id index.
    pub(super) fn check_nodes(&mut self) {
        let spec = self.spec;
        let nodes_path = Self::root().field("nodes");
        if spec.nodes.is_empty() {
            self.error(Diagnostic::at(nodes_path.clone(), "the cohort has no nodes").hint("add at least one `Node(id: ..., model: ...)`"));
        }
        for (i, n) in spec.nodes.iter().enumerate() {
            let p = nodes_path.index(i);
            if let Some(first) = self.index.insert(n.id.as_str(), i) {
                self.index.insert(n.id.as_str(), first);
                self.error(Diagnostic::at(p.field("id"), format!("duplicate node id `{}` (also `nodes[{first}]`)", n.id)).hint("node ids must be unique"));
            }
            self.check_model(n, &p.field("model"));
            if let Some(sub) = &n.train_on {
                self.check_subset(n, sub, &p.field("train_on"));
            }
            self.check_checkpoint(n, &p);
        }
        for (i, n) in spec.nodes.iter().enumerate() {
            self.check_ema(i, n, &nodes_path.index(i));
            self.check_switch(i, n, &nodes_path.index(i));
        }
    }

    /// SwitOKD's `switch_with` names another node that trains, neither of them on a subset.
    fn check_switch(&mut self, i: usize, n: &NodeSpec, p: &FieldPath) {
        let Some(student) = &n.switch_with else { return };
        let at = p.field("switch_with");
        let Some(s) = self.lookup(student, at.clone()) else { return };
        let problem = if s == i {
            Some(format!("`{}` cannot switch with itself", n.id))
        } else if self.spec.nodes[s].fixed() || n.fixed() {
            Some("SwitOKD switches between two nodes that both train".to_string())
        } else if n.train_on.is_some() || self.spec.nodes[s].train_on.is_some() {
            Some("SwitOKD compares the two nodes on the whole batch: neither may have `train_on`".to_string())
        } else {
            None
        };
        if let Some(message) = problem {
            self.error(Diagnostic::at(at, message).hint("put `switch_with: \"student\"` on the teacher, both trained in the same stage"));
        }
    }

    /// An `Ema` node tracks an existing network that is not itself an average, and has no
    /// weights of its own to load.
    fn check_ema(&mut self, i: usize, n: &NodeSpec, p: &FieldPath) {
        let crate::models::ModelSpec::Ema { of, .. } = &n.model else { return };
        let at = p.field("model").field("of");
        let Some(t) = self.lookup(of, at.clone()) else { return };
        let tracked = &self.spec.nodes[t];
        let problem = if t == i {
            Some("an `Ema` node cannot track itself".to_string())
        } else if matches!(tracked.model, crate::models::ModelSpec::Ema { .. }) {
            Some(format!("`{of}` is itself an `Ema` node"))
        } else if tracked.model.is_recorded() {
            Some(format!("`{of}` is a recorded source: it has outputs, not weights to average"))
        } else {
            None
        };
        if let Some(message) = problem {
            self.error(Diagnostic::at(at, message).hint("track a network that trains, e.g. `Ema(of: \"peer1\", decay: 0.999)`"));
        }
        if n.checkpoint.is_some() {
            self.error(
                Diagnostic::at(p.field("checkpoint"), format!("`Ema` node `{}` starts as a copy of `{of}`", n.id))
                    .hint("remove `checkpoint` (give it to the tracked node instead)"),
            );
        }
    }

    /// The model against the data's sample shape; the architecture names its own problems.
    fn check_model(&mut self, n: &NodeSpec, path: &FieldPath) {
        for problem in n.model.problems(&self.input_shape) {
            let at = if problem.field.is_empty() { path.clone() } else { path.field(problem.field) };
            let d = Diagnostic::at(at, problem.message);
            self.error(match problem.hint {
                Some(h) => d.hint(h),
                None => d,
            });
        }
    }

    /// `train_on`: classes and domains that exist, and at least one class left.
    fn check_subset(&mut self, n: &NodeSpec, sub: &Subset, q: &FieldPath) {
        let classes = self.classes;
        for (field, list) in [("classes", &sub.classes), ("exclude_classes", &sub.exclude_classes)] {
            if let Some(bad) = list.iter().find(|&&c| c >= classes) {
                self.error(
                    Diagnostic::at(q.field(field), format!("class {bad} does not exist: the data set has classes 0..={}", classes - 1))
                        .hint("classes are numbered from 0, e.g. `exclude_classes: [3]` drops the digit 3"),
                );
            }
        }
        for &d in &sub.domains {
            if self.domains.is_empty() {
                self.error(Diagnostic::at(q.field("domains"), "this data set has no domains").hint("domains exist in `RotatedMnist(...)`"));
                break;
            } else if !self.domains.contains(&d) {
                let hint = format!("the training domains are {:?} (the test domain is held out)", self.domains);
                self.error(Diagnostic::at(q.field("domains"), format!("domain {d} is not a training domain")).hint(hint));
            }
        }
        if (0..classes).all(|c| !(sub.classes.is_empty() || sub.classes.contains(&c)) || sub.exclude_classes.contains(&c)) {
            self.error(
                Diagnostic::at(q.clone(), format!("node `{}` would train on no class at all", n.id))
                    .hint("`classes` keeps, `exclude_classes` drops; leave one class at least"),
            );
        }
    }

    /// A recorded source has no weights to load; a frozen network needs some.
    fn check_checkpoint(&mut self, n: &NodeSpec, p: &FieldPath) {
        let recorded = n.model.is_recorded();
        if recorded && n.checkpoint.is_some() {
            self.error(
                Diagnostic::at(p.field("checkpoint"), format!("node `{}` is `Recorded`: it has outputs, not weights", n.id)).hint("remove `checkpoint`"),
            );
        }
        if n.frozen && n.checkpoint.is_none() && !recorded {
            self.error(
                Diagnostic::at(p.field("frozen"), format!("frozen node `{}` has no checkpoint: it would stay at random weights", n.id))
                    .hint("add `checkpoint: \"path/to/node.bpk\"`, or train it in an earlier stage instead of freezing it"),
            );
        }
    }
}
