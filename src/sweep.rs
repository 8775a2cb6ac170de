//! Sweeps: an experiment file × a grid of overridden fields × seeds, expanded into independent
//! runs in a fixed order, so that `--shard i/n` (a Slurm array task, another machine, another
//! process) takes every n-th run and all shards together cover each run exactly once.
//!
//! A grid axis is `PATH=V1,V2,…` where PATH addresses a field of the experiment file:
//! `training.optimizer.lr`, `edges[3].weight`, `nodes[0].model.hidden`, `data.train_limit`.
//! Enum variants are stepped through without naming them (`training.optimizer.lr` reaches the
//! `lr` of `Adam(..)` or `Sgd(..)`). Values are JSON (`0.01`, `true`, `"text"`, `[64, 64]`) or a
//! bare word (a unit variant such as `MeanLogits`). Each grid point becomes its own experiment,
//! named `<name>.<field>-<value>…`, so `cohort compare results/<name>.*` compares them.

use std::path::Path;

use serde_json::Value;

use crate::config::{self, ConfigError, ExperimentSpec, Plan};

/// One axis of the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// Field path, e.g. `edges[3].weight`.
    pub path: String,
    /// Values, as written.
    pub values: Vec<String>,
}

impl std::str::FromStr for Axis {
    type Err = String;
    /// `PATH=V1,V2,…` (commas inside brackets or quotes do not split).
    fn from_str(s: &str) -> Result<Self, String> {
        let (path, vals) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected PATH=V1,V2,… e.g. training.optimizer.lr=0.001,0.002"))?;
        let mut values = Vec::new();
        let (mut depth, mut quoted, mut cur) = (0i32, false, String::new());
        for c in vals.chars() {
            match c {
                '"' => quoted = !quoted,
                '[' | '(' if !quoted => depth += 1,
                ']' | ')' if !quoted => depth -= 1,
                ',' if !quoted && depth == 0 => {
                    values.push(std::mem::take(&mut cur).trim().to_string());
                    continue;
                }
                _ => {}
            }
            cur.push(c);
        }
        values.push(cur.trim().to_string());
        if path.trim().is_empty() || values.iter().any(String::is_empty) {
            return Err(format!("`{s}`: empty path or value"));
        }
        Ok(Axis { path: path.trim().to_string(), values })
    }
}

/// One run of a sweep: a grid point's plan and a seed.
#[derive(Clone, Debug)]
pub struct SweepRun {
    /// Position in the expanded sweep (what `--shard` splits on).
    pub index: usize,
    /// The grid point's plan, with `seeds = [seed]`.
    pub plan: Plan,
    /// The grid point's experiment text (RON), hashed into the manifest.
    pub text: String,
    /// The seed.
    pub seed: u64,
    /// `path=value` of each axis.
    pub point: Vec<(String, String)>,
}

/// A `--shard i/n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 0-based.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}`: expected I/N with 0 ≤ I < N, e.g. 0/4 (Slurm: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether run `index` of the sweep belongs to this shard.
    pub fn takes(&self, index: usize) -> bool {
        index % self.count == self.index
    }
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

/// A value as a name part: letters, digits, '_', '-' and '.' kept, the rest '_'.
fn name_part(v: &str) -> String {
    v.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '.') { c } else { '_' }).collect::<String>().trim_matches('_').to_string()
}

/// The last field name of a path: `edges[3].weight` → `weight`, `nodes[1]` → `nodes1`.
fn path_key(path: &str) -> String {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

/// Errors of a sweep definition.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The base file is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A grid point is invalid.
    #[error("grid point {point}: {problem}")]
    Point {
        /// `path=value, …`.
        point: String,
        /// What is wrong.
        problem: String,
    },
}

/// Every run of the sweep of `file` over `grid` (cartesian product, first axis slowest) and
/// `seeds` (default: the file's), in a fixed order.
pub fn expand(file: &Path, source: &str, grid: &[Axis], seeds: Option<&[u64]>) -> Result<Vec<SweepRun>, SweepError> {
    let base = config::parse(source, file)?;
    let mut points: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for axis in grid {
        points = points.into_iter().flat_map(|p| axis.values.iter().map(move |v| [p.clone(), vec![(axis.path.clone(), v.clone())]].concat())).collect();
    }
    let mut runs = Vec::new();
    for point in points {
        let label = point.iter().map(|(p, v)| format!("{p}={v}")).collect::<Vec<_>>().join(", ");
        let err = |problem: String| SweepError::Point { point: label.clone(), problem };
        let mut spec = base.clone();
        for (path, value) in &point {
            spec = set(&spec, path, value).map_err(err)?;
        }
        if !point.is_empty() {
            let suffix: String = point.iter().map(|(p, v)| format!(".{}-{}", path_key(p), name_part(v))).collect();
            let name = format!("{}{suffix}", base.name);
            spec.name = config::values::ExperimentName::new(name).map_err(|e| err(e.replace(config::values::HINT_SEPARATOR, "; ")))?;
            spec.description = format!("{} [sweep: {label}]", spec.description).trim().to_string();
        }
        let text = ron::ser::to_string_pretty(&spec, ron::ser::PrettyConfig::default().extensions(config::ron_extensions())).expect("a spec serialises");
        let plan = config::resolve(&spec).map_err(|d| err(d.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; ")))?;
        for &seed in seeds.unwrap_or(&plan.seeds) {
            let mut plan = plan.clone();
            plan.seeds = vec![seed];
            runs.push(SweepRun { index: runs.len(), plan, text: text.clone(), seed, point: point.clone() });
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r#"Experiment(
        name: "s",
        data: (source: Mnist1d()),
        nodes: [Node(id: "a", model: Mlp(hidden: [8])), Node(id: "b", model: Mlp(hidden: [8]))],
        edges: [Edge(to: "a", loss: CrossEntropy), Edge(to: "b", loss: CrossEntropy), Mutual(peers: ["a", "b"], weight: 1.0)],
        training: (optimizer: Adam(lr: 0.001), seeds: [0, 1]),
    )"#;

    #[test]
    fn axes_and_shards_parse() {
        let a: Axis = "nodes[0].model.hidden=[8, 8],[16]".parse().unwrap();
        assert_eq!(a.values, vec!["[8, 8]", "[16]"]);
        assert!("nope".parse::<Axis>().is_err());
        assert_eq!("1/3".parse::<Shard>().unwrap(), Shard { index: 1, count: 3 });
        assert!("3/3".parse::<Shard>().is_err() && "0/0".parse::<Shard>().is_err());
    }

    #[test]
    fn grid_points_override_fields_through_variants() {
        let grid: Vec<Axis> = vec!["training.optimizer.lr=0.01,0.1".parse().unwrap(), "edges[2].weight=0.5".parse().unwrap()];
        let runs = expand(Path::new("s.ron"), SRC, &grid, None).unwrap();
        assert_eq!(runs.len(), 4); // 2 lr × 1 weight × 2 seeds
        assert_eq!(runs[0].plan.name, "s.lr-0.01.weight-0.5");
        assert_eq!(runs[3].plan.name, "s.lr-0.1.weight-0.5");
        assert_eq!((runs[0].seed, runs[1].seed), (0, 1));
        assert_eq!(crate::engine::optim::base_lr(&runs[2].plan.nodes[0].optimizer), 0.1);
        let mutual = runs[0].plan.stages[0].terms.iter().find(|t| !t.from.is_empty()).unwrap();
        assert_eq!(mutual.weight, 0.5);
        // the grid point's text is a valid experiment file for the same plan
        let again = config::plan_from_str(&runs[0].text, Path::new("x.ron")).unwrap();
        assert_eq!(again.name, runs[0].plan.name);
    }

    #[test]
    fn bad_points_are_reported() {
        let e = expand(Path::new("s.ron"), SRC, &["training.optimizer.lr=-1".parse().unwrap()], None).unwrap_err().to_string();
        assert!(e.contains("lr=-1"), "{e}");
        let e = expand(Path::new("s.ron"), SRC, &["training.nope=1".parse().unwrap()], None).unwrap_err().to_string();
        assert!(e.contains("no field `nope`"), "{e}");
        let e = expand(Path::new("s.ron"), SRC, &["edges[9].weight=1".parse().unwrap()], None).unwrap_err().to_string();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn shards_partition_the_runs() {
        let grid: Vec<Axis> = vec!["training.optimizer.lr=0.01,0.1,0.2".parse().unwrap()];
        let runs = expand(Path::new("s.ron"), SRC, &grid, Some(&[0, 1, 2])).unwrap();
        let mut seen = vec![0; runs.len()];
        for i in 0..4 {
            let s = Shard { index: i, count: 4 };
            runs.iter().filter(|r| s.takes(r.index)).for_each(|r| seen[r.index] += 1);
        }
        assert!(seen.iter().all(|&c| c == 1));
    }
}
