//! Experiment files: the RON schema ([`schema`]), value newtypes ([`values`]), and the two steps
//! from text to something runnable: [`parse`] (syntax, types, values; errors carry ron's
//! position) and [`resolve()`] (cross-references and stage order; errors are located by path).

pub mod diagnostic;
pub mod locate;
pub mod resolve;
pub mod schema;
pub mod values;

use std::fmt::Write as _;
use std::path::Path;

pub use diagnostic::{ConfigError, Diagnostic};
pub use resolve::{Plan, PlanNode, PlanStage, Term, resolve};
pub use schema::*;

/// ron options used for every experiment file: `Some(..)` may be omitted and a variant wrapping
/// a struct may be written `Variant(field: ..)`, so files need no `#![enable(..)]` header.
pub fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron_extensions())
}

/// The ron extensions cohort reads and writes (`manifest.ron` is written with them too, so its
/// plan reads back and can be pasted into an experiment file).
pub fn ron_extensions() -> ron::extensions::Extensions {
    use ron::extensions::Extensions;
    Extensions::IMPLICIT_SOME | Extensions::UNWRAP_VARIANT_NEWTYPES
}

/// Parses experiment text (`file` only names it in errors).
pub fn parse(source: &str, file: &Path) -> Result<ExperimentSpec, ConfigError> {
    ron_options()
        .from_str::<ExperimentSpec>(source)
        .map_err(|e| ConfigError::new(file, source, vec![diagnostic::from_ron(&e)]))
}

/// Parses and resolves experiment text.
pub fn plan_from_str(source: &str, file: &Path) -> Result<Plan, ConfigError> {
    let spec = parse(source, file)?;
    resolve(&spec).map_err(|d| ConfigError::new(file, source, d))
}

/// Reads, parses and resolves an experiment file; also returns its text (for hashing).
pub fn load_plan(file: &Path) -> Result<(Plan, String), ConfigError> {
    let source = std::fs::read_to_string(file).map_err(|e| ConfigError::unreadable(file, &e))?;
    let plan = plan_from_str(&source, file)?;
    Ok((plan, source))
}

impl Plan {
    /// A human-readable summary of what would run.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "experiment `{}`{}", self.name, if self.description.is_empty() { String::new() } else { format!(": {}", self.description) });
        let src = match &self.data.source {
            DataSource::Mnist1d(p) => format!("MNIST-1D (generated, {} samples, seed {})", p.num_samples, p.seed),
            DataSource::Mnist(_) => "MNIST (IDX files)".to_string(),
            DataSource::Cifar10(_) => "CIFAR-10 (binary files)".to_string(),
            DataSource::RotatedMnist(r) => format!("Rotated MNIST (test domain {}°)", crate::data::rotated::angle(r.test_domain)),
        };
        let _ = writeln!(s, "  data: {src}; input {:?}, {} classes; validation {}, jitter {}", self.input_shape, self.classes, self.data.validation, self.data.jitter);
        let _ = writeln!(s, "  batch {}, seeds {:?}, backend {:?}, output {}", self.batch_size, self.seeds, self.backend, self.output.join(&self.name).display());
        let _ = writeln!(s, "  nodes:");
        for n in &self.nodes {
            let state = if n.frozen { "frozen".to_string() } else { n.optimizer.to_string() };
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
                let src = match (&t.loss, from.is_empty()) {
                    (LossSpec::OwnOutput { .. }, _) => "own output".to_string(),
                    (_, true) => "labels".to_string(),
                    (_, false) => from.join(" + "),
                };
                let to = match t.head {
                    Some(m) => format!("{}.head{m}", self.nodes[t.to].id),
                    None => self.nodes[t.to].id.clone(),
                };
                let _ = writeln!(s, "    {to:<12} <- {src:<20} {:.3} × {}", t.weight, loss_label(&t.loss));
            }
        }
        s
    }
}

/// Short label of a loss, e.g. `SoftTarget(T=20)`.
pub fn loss_label(l: &LossSpec) -> String {
    match l {
        LossSpec::CrossEntropy => "CrossEntropy".into(),
        LossSpec::SoftTarget { temperature, .. } => format!("SoftTarget(T={temperature})"),
        LossSpec::MutualKl { temperature } => format!("MutualKl(T={temperature})"),
        LossSpec::Ensemble { temperature, combine, include_self } => {
            format!("Ensemble({combine:?}, T={temperature}{})", if *include_self { ", incl. self" } else { "" })
        }
        LossSpec::Hint { from_tap, to_tap } => format!("Hint({from_tap} -> {to_tap})"),
        LossSpec::Attention { from_tap, to_tap } => format!("Attention({from_tap} -> {to_tap})"),
        LossSpec::Lfme => "Lfme".into(),
        LossSpec::OwnOutput { temperature } => format!("OwnOutput(T={temperature})"),
    }
}

/// Short label of a training subset, e.g. `classes ≠ [3]`, `domains [1]`.
pub fn subset_label(t: &Subset) -> String {
    let mut parts = Vec::new();
    if !t.classes.is_empty() {
        parts.push(format!("classes {:?}", t.classes));
    }
    if !t.exclude_classes.is_empty() {
        parts.push(format!("classes ≠ {:?}", t.exclude_classes));
    }
    if !t.domains.is_empty() {
        parts.push(format!("domains {:?}", t.domains));
    }
    if parts.is_empty() { "everything".into() } else { parts.join(", ") }
}
