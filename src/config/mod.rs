//! Experiment files: the RON schema ([`schema`]), value newtypes ([`values`]), and the two steps
//! from text to something runnable: [`parse`] (syntax, types, values; errors carry ron's
//! position) and [`resolve()`] (cross-references and stage order; errors are located by path).

pub mod gate;
pub mod overrides;
pub mod plan;
pub mod resolve;
pub mod schema;

/// The value newtypes (kept at `config::values` for the schema's readers).
pub use crate::values;

use std::path::Path;

pub use crate::data::spec::{Cifar10Spec, Cifar100Spec, DataSource, DataSpec, MnistSpec, Normalization, RotatedSpec};
pub use crate::diagnostics::{self as diagnostic, ConfigError, Diagnostic, locate};
pub use plan::{EmaOf, Plan, PlanNode, PlanStage, Term};
pub use resolve::resolve;
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
    ron_options().from_str::<ExperimentSpec>(source).map_err(|e| ConfigError::new(file, source, vec![diagnostic::from_ron(&e)]))
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
