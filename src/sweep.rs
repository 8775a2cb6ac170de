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
//!
//! `--set PATH=VALUE` overrides apply before the grid ([`crate::config::overrides`]).

use std::path::Path;

use crate::config::overrides::{Override, OverrideError, overridden, set, spec_text};
use crate::config::{self, ConfigError, Plan};

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

/// A value as a name part: letters, digits, '_', '-' and '.' kept, the rest '_'.
fn name_part(v: &str) -> String {
    v.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '.') { c } else { '_' }).collect::<String>().trim_matches('_').to_string()
}

/// The longest experiment name (see `values::ExperimentName`).
const NAME_LIMIT: usize = 64;

/// An axis's name part: the last field name of its path (`edges[3].weight` → `weight`,
/// `nodes[1]` → `nodes1`), or the whole path (`edges3_weight`) when another axis of `grid`
/// ends in the same field.
fn path_key(path: &str, grid: &[Axis]) -> String {
    let last = |p: &str| -> String { p.rsplit('.').next().unwrap_or(p).chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect() };
    if grid.iter().filter(|a| last(&a.path) == last(path)).count() > 1 {
        path.replace('.', "_").chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
    } else {
        last(path)
    }
}

/// Errors of a sweep definition.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The base file is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A `--set` is invalid.
    #[error("{0}")]
    Override(#[from] OverrideError),
    /// A grid point is invalid.
    #[error("grid point {point}: {problem}")]
    Point {
        /// `path=value, …`.
        point: String,
        /// What is wrong.
        problem: String,
    },
}

/// A random search: `count` distinct grid points drawn with `seed` instead of the whole grid
/// (`cohort sweep --random N --sample-seed S`; KTG's search over gate assignments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Number of grid points.
    pub count: usize,
    /// Seed of the draw: the same seed draws the same points, in the same order.
    pub seed: u64,
}

/// The grid's points: the cartesian product (first axis slowest), or `sample.count` distinct
/// points of it in the order drawn. Points are numbered in mixed radix (first axis most
/// significant) and drawn by a seeded splitmix64 stream without replacement, so a product
/// too large to list (12 gated edges × 4 gates = 16.7 M points) is never listed.
pub fn grid_points(grid: &[Axis], sample: Option<Sample>) -> Result<Vec<Vec<(String, String)>>, String> {
    let sizes: Vec<usize> = grid.iter().map(|a| a.values.len()).collect();
    let total = sizes.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n)).ok_or("the grid has more points than can be numbered")?;
    let point = |mut k: usize| -> Vec<(String, String)> {
        let mut p = vec![(String::new(), String::new()); grid.len()];
        for (i, axis) in grid.iter().enumerate().rev() {
            p[i] = (axis.path.clone(), axis.values[k % sizes[i]].clone());
            k /= sizes[i];
        }
        p
    };
    let Some(sample) = sample else { return Ok((0..total).map(point).collect()) };
    if sample.count == 0 || sample.count > total {
        return Err(format!("--random {} asks for {} of the grid's {total} point(s); ask for 1 to {total}", sample.count, sample.count));
    }
    let mut state = crate::random::splitmix64(sample.seed ^ 0x5eed_5a3e_9a1d_0001);
    let mut drawn: Vec<usize> = Vec::with_capacity(sample.count);
    let mut seen = std::collections::HashSet::new();
    while drawn.len() < sample.count {
        state = crate::random::splitmix64(state);
        // rejection keeps the draw uniform over 0..total
        let limit = u64::MAX - u64::MAX % total as u64;
        if state >= limit {
            continue;
        }
        let k = (state % total as u64) as usize;
        if seen.insert(k) {
            drawn.push(k);
        }
    }
    Ok(drawn.into_iter().map(point).collect())
}

/// Every run of the sweep of `file` (with `overrides` applied) over `grid` (cartesian product,
/// first axis slowest, or a seeded random `sample` of it) and `seeds` (default: the file's), in
/// a fixed order.
pub fn expand(
    file: &Path,
    source: &str,
    overrides: &[Override],
    grid: &[Axis],
    sample: Option<Sample>,
    seeds: Option<&[u64]>,
) -> Result<Vec<SweepRun>, SweepError> {
    let (base, _) = overridden(file, source, overrides)?;
    let points = grid_points(grid, sample).map_err(|problem| SweepError::Point { point: "(the grid)".into(), problem })?;
    let mut runs = Vec::new();
    for point in points {
        let label = point.iter().map(|(p, v)| format!("{p}={v}")).collect::<Vec<_>>().join(", ");
        let err = |problem: String| SweepError::Point { point: label.clone(), problem };
        let mut spec = base.clone();
        for (path, value) in &point {
            spec = set(&spec, path, value).map_err(err)?;
        }
        if !point.is_empty() {
            let suffix: String = point.iter().map(|(p, v)| format!(".{}-{}", path_key(p, grid), name_part(v))).collect();
            let mut name = format!("{}{suffix}", base.name);
            if name.len() > NAME_LIMIT {
                // too long for a folder name: a fingerprint of the point (the description and
                // the manifest spell it out)
                name = format!("{}.point-{}", base.name, &crate::digest::sha256_hex(label.as_bytes())[..12]);
            }
            spec.name = config::values::ExperimentName::new(name).map_err(|e| err(e.replace(config::values::HINT_SEPARATOR, "; ")))?;
            spec.description = format!("{} [sweep: {label}]", spec.description).trim().to_string();
        }
        let text = spec_text(&spec);
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
    use crate::config::overrides::plan_with_overrides;

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
        let runs = expand(Path::new("s.ron"), SRC, &[], &grid, None, None).unwrap();
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
    fn overrides_set_fields_keep_the_name_and_are_recorded() {
        let sets: Vec<Override> = vec!["training.optimizer.lr=0.3".parse().unwrap(), "nodes[1].model.hidden=[4, 4]".parse().unwrap()];
        let (plan, text) = plan_with_overrides(Path::new("s.ron"), SRC, &sets).unwrap();
        assert_eq!(plan.name, "s");
        assert_eq!(crate::engine::optim::base_lr(&plan.nodes[0].optimizer), 0.3);
        assert!(plan.description.ends_with("[set: training.optimizer.lr=0.3, nodes[1].model.hidden=[4, 4]]"), "{}", plan.description);
        // the hashed text is the overridden experiment, a valid file for the same plan
        assert_eq!(config::plan_from_str(&text, Path::new("x.ron")).unwrap(), plan);
        // without overrides the file's own text is hashed (runs started without --set resume)
        assert_eq!(plan_with_overrides(Path::new("s.ron"), SRC, &[]).unwrap().1, SRC);
        // a sweep applies them before the grid
        let runs = expand(Path::new("s.ron"), SRC, &sets, &["edges[2].weight=2".parse().unwrap()], None, Some(&[0])).unwrap();
        assert_eq!(runs[0].plan.name, "s.weight-2");
        assert_eq!(crate::engine::optim::base_lr(&runs[0].plan.nodes[1].optimizer), 0.3);
        // bad overrides name the --set and the problem
        assert!("lr".parse::<Override>().is_err() && "=1".parse::<Override>().is_err());
        let e = plan_with_overrides(Path::new("s.ron"), SRC, &["training.nope=1".parse().unwrap()]).unwrap_err().to_string();
        assert!(e.starts_with("--set training.nope=1:") && e.contains("no field `nope`"), "{e}");
        let e = plan_with_overrides(Path::new("s.ron"), SRC, &["training.optimizer.lr=-1".parse().unwrap()]).unwrap_err().to_string();
        assert!(e.starts_with("--set training.optimizer.lr=-1:"), "{e}");
    }

    #[test]
    fn bad_points_are_reported() {
        let e = expand(Path::new("s.ron"), SRC, &[], &["training.optimizer.lr=-1".parse().unwrap()], None, None).unwrap_err().to_string();
        assert!(e.contains("lr=-1"), "{e}");
        let e = expand(Path::new("s.ron"), SRC, &[], &["training.nope=1".parse().unwrap()], None, None).unwrap_err().to_string();
        assert!(e.contains("no field `nope`"), "{e}");
        let e = expand(Path::new("s.ron"), SRC, &[], &["edges[9].weight=1".parse().unwrap()], None, None).unwrap_err().to_string();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn shards_partition_the_runs() {
        let grid: Vec<Axis> = vec!["training.optimizer.lr=0.01,0.1,0.2".parse().unwrap()];
        let runs = expand(Path::new("s.ron"), SRC, &[], &grid, None, Some(&[0, 1, 2])).unwrap();
        let mut seen = vec![0; runs.len()];
        for i in 0..4 {
            let s = Shard { index: i, count: 4 };
            runs.iter().filter(|r| s.takes(r.index)).for_each(|r| seen[r.index] += 1);
        }
        assert!(seen.iter().all(|&c| c == 1));
    }

    #[test]
    fn random_samples_are_distinct_reproducible_and_shardable() {
        let grid: Vec<Axis> =
            vec!["edges[0].weight=0,0.5,1".parse().unwrap(), "edges[1].weight=0,0.5,1".parse().unwrap(), "edges[2].weight=0.25,2".parse().unwrap()];
        let sample = Some(Sample { count: 8, seed: 7 });
        let points = grid_points(&grid, sample).unwrap();
        assert_eq!(points.len(), 8);
        let distinct: std::collections::HashSet<_> = points.iter().collect();
        assert_eq!(distinct.len(), 8, "no point drawn twice");
        assert_eq!(grid_points(&grid, sample).unwrap(), points, "the same seed draws the same points");
        assert_ne!(grid_points(&grid, Some(Sample { count: 8, seed: 8 })).unwrap(), points, "another seed, another draw");
        let all = grid_points(&grid, None).unwrap();
        assert_eq!(all.len(), 18);
        assert!(points.iter().all(|p| all.contains(p)), "every drawn point is a grid point");
        // all of the grid, drawn, is a permutation of it
        let mut every = grid_points(&grid, Some(Sample { count: 18, seed: 1 })).unwrap();
        every.sort();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(every, sorted);
        assert!(grid_points(&grid, Some(Sample { count: 19, seed: 1 })).unwrap_err().contains("1 to 18"));
        // axes ending in the same field are told apart in the names
        let runs = expand(Path::new("s.ron"), SRC, &[], &grid, Some(Sample { count: 1, seed: 0 }), Some(&[0])).unwrap();
        assert!(runs[0].plan.name.starts_with("s.edges0_weight-"), "{}", runs[0].plan.name);
        // a product far too large to list is sampled without listing it
        let huge: Vec<Axis> = (0..12).map(|k| format!("edges[{k}].gate=Through,Cutoff,PositiveLinear,NegativeLinear").parse().unwrap()).collect();
        assert_eq!(grid_points(&huge, Some(Sample { count: 8, seed: 0 })).unwrap().len(), 8);
        // the runs of a sample, sharded, are covered once
        let runs = expand(Path::new("s.ron"), SRC, &[], &grid, sample, Some(&[0])).unwrap();
        assert_eq!(runs.len(), 8);
        let names: std::collections::HashSet<_> = runs.iter().map(|r| r.plan.name.clone()).collect();
        assert_eq!(names.len(), 8, "8 distinct experiments");
        let mut seen = vec![0; runs.len()];
        for i in 0..3 {
            let s = Shard { index: i, count: 3 };
            runs.iter().filter(|r| s.takes(r.index)).for_each(|r| seen[r.index] += 1);
        }
        assert!(seen.iter().all(|&c| c == 1));
    }
}
