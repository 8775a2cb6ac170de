//! `--set PATH=VALUE` (of `cohort run` and `cohort sweep`): one field of an experiment file
//! overridden without renaming the experiment. A script that chooses a value on a validation
//! hold-out passes it on to the next run (scripts/reproduce-hinton-mnist.sh); the run's manifest
//! records the plan with the value set and the description names it. A sweep's grid points set
//! their fields the same way ([`set`]).
//!
//! PATH addresses a field of the experiment file: `training.optimizer.lr`, `edges[3].weight`,
//! `nodes[0].model.hidden`, `data.train_limit`. Enum variants are stepped through without naming
//! them (`training.optimizer.lr` reaches the `lr` of `Adam(..)` or `Sgd(..)`). Values are JSON
//! (`0.01`, `true`, `"text"`, `[64, 64]`) or a bare word (a unit variant such as `MeanLogits`).

use std::path::Path;

use serde_json::Value;

use super::{ConfigError, ExperimentSpec, Plan};

/// A `--set` that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// The experiment file itself is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A `--set` names no field, or its value does not fit the field or the experiment.
    #[error("--set {set}: {problem}")]
    Invalid {
        /// `path=value`.
        set: String,
        /// What is wrong.
        problem: String,
    },
}

/// A `--set PATH=VALUE`: one field of the experiment file overridden.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// Field path, e.g. `nodes[0].model.dropout`.
    pub path: String,
    /// The value, as written (JSON or a bare word).
    pub value: String,
}

impl std::str::FromStr for Override {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((path, value)) if !path.trim().is_empty() && !value.trim().is_empty() => {
                Ok(Override { path: path.trim().to_string(), value: value.trim().to_string() })
            }
            _ => Err(format!("`{s}`: expected PATH=VALUE, e.g. nodes[0].model.dropout=0.5 or training.optimizer.lr=0.03")),
        }
    }
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.path, self.value)
    }
}

/// The experiment of `source` with `overrides` applied, and the text whose hash the manifest
/// records: the file's own text when there is no override (so that `--resume` accepts runs
/// started without `--set`), else the overridden experiment written out. The description ends
/// with `[set: path=value, …]`; the name is the file's (`--set name=…` renames).
pub fn overridden(file: &Path, source: &str, overrides: &[Override]) -> Result<(ExperimentSpec, String), OverrideError> {
    let mut spec = super::parse(source, file)?;
    if overrides.is_empty() {
        return Ok((spec, source.to_string()));
    }
    for o in overrides {
        spec = set(&spec, &o.path, &o.value).map_err(|problem| OverrideError::Invalid { set: o.to_string(), problem })?;
    }
    let label = overrides.iter().map(Override::to_string).collect::<Vec<_>>().join(", ");
    spec.description = format!("{} [set: {label}]", spec.description).trim().to_string();
    Ok((spec.clone(), spec_text(&spec)))
}

/// An experiment written out as an experiment file.
pub(crate) fn spec_text(spec: &ExperimentSpec) -> String {
    ron::ser::to_string_pretty(spec, ron::ser::PrettyConfig::default().extensions(super::ron_extensions())).expect("a spec serialises")
}

/// `cohort run FILE --set …`'s plan and the text hashed into its manifest.
pub fn plan_with_overrides(file: &Path, source: &str, overrides: &[Override]) -> Result<(Plan, String), OverrideError> {
    let (spec, text) = overridden(file, source, overrides)?;
    let plan = super::resolve(&spec).map_err(|d| match overrides.is_empty() {
        true => OverrideError::Config(ConfigError::new(file, source, d)),
        false => OverrideError::Invalid {
            set: overrides.iter().map(Override::to_string).collect::<Vec<_>>().join(" --set "),
            problem: d.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; "),
        },
    })?;
    Ok((plan, text))
}

/// The value at `path` in `root`, stepping through single-key objects (enum variants) whose
/// key is not the next segment.
fn field_mut<'a>(root: &'a mut Value, path: &str) -> Result<&'a mut Value, String> {
    let mut cur = root;
    for seg in path.split('.') {
        let (name, indices) = match seg.find('[') {
            Some(k) => (&seg[..k], &seg[k..]),
            None => (seg, ""),
        };
        if !name.is_empty() {
            cur = step_into(cur, name).ok_or_else(|| format!("`{path}`: no field `{name}` here"))?;
        }
        for part in indices.split('[').skip(1) {
            let i: usize = part.trim_end_matches(']').parse().map_err(|_| format!("`{path}`: bad index `[{part}`"))?;
            let list = descend_variants(cur);
            let len = list.as_array().map_or(0, Vec::len);
            cur = list.get_mut(i).ok_or_else(|| format!("`{path}`: index {i} out of range (the list has {len} entries)"))?;
        }
    }
    Ok(cur)
}

/// Through enum-variant wrappers `{"Variant": inner}` down to a non-wrapper value.
fn descend_variants(v: &mut Value) -> &mut Value {
    let is_wrapper = |v: &Value| v.as_object().is_some_and(|o| o.len() == 1 && o.keys().all(|k| k.starts_with(|c: char| c.is_ascii_uppercase())));
    if is_wrapper(v) { descend_variants(v.as_object_mut().expect("object").values_mut().next().expect("one entry")) } else { v }
}

fn step_into<'a>(v: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    if v.get(name).is_some() {
        return v.get_mut(name);
    }
    let inner = descend_variants(v);
    if inner.get(name).is_some() { inner.get_mut(name) } else { None }
}

/// `value` as JSON, else as a bare string (unit variants, names).
fn parse_value(value: &str) -> Value {
    serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()))
}

/// `spec` with `path` set to `value`, checked by deserialising it again.
pub fn set(spec: &ExperimentSpec, path: &str, value: &str) -> Result<ExperimentSpec, String> {
    let mut json = serde_json::to_value(spec).map_err(|e| e.to_string())?;
    let slot = field_mut(&mut json, path)?;
    // an optional field that is absent (null) takes the value directly
    *slot = parse_value(value);
    serde_json::from_value(json).map_err(|e| format!("`{path}={value}`: {e}"))
}
