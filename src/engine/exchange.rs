//! The exchange between the nodes of a step: what each node computes and shares (its logits and
//! the feature taps others read, detached), on which rows of the batch (training subsets), and
//! how a target node's rows are looked up in a source's output (including LFME's routing of each
//! sample to its own domain's expert).

use std::collections::HashMap;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::{Plan, Subset};
use crate::losses::{AdapterSpec, Targets};
use crate::models::Tap;

/// The adapter slot a term reads: its edge's origin, or the key its kind shares one slot under
/// ([`crate::losses::LossKind::adapter_key`]) with the same sources.
pub fn slot_key(t: &crate::config::Term) -> String {
    match t.loss.kind().adapter_key() {
        Some(k) => format!("{k}<-{:?}", t.from),
        None => t.origin.clone(),
    }
}

/// The adapters of node `n` across all stages: `(slot key, spec)` for each of its terms
/// whose loss kind owns one ([`crate::losses::LossKind::adapter`]; one per [`slot_key`]), in plan order (index =
/// position in [`super::trainee::Trainee::adapters`]), for a training split of `samples`.
pub fn adapter_slots(plan: &Plan, n: usize, samples: usize) -> Vec<(String, AdapterSpec)> {
    let mut out: Vec<(String, AdapterSpec)> = Vec::new();
    let shape = |node: usize, tap: &str| {
        plan.nodes[node].model.tap_shapes(&plan.input_shape).into_iter().find(|(name, _)| name == tap).map(|(_, s)| s).expect("the resolver checked the tap")
    };
    for st in &plan.stages {
        for t in st.terms.iter().filter(|t| t.to == n) {
            let key = slot_key(t);
            if out.iter().any(|(o, _)| *o == key) {
                continue;
            }
            let own = |tap: &str| shape(n, tap);
            let source = |tap: &str| shape(t.from[0], tap);
            if let Some(a) = t.loss.kind().adapter(&own, &source, samples) {
                out.push((key, a));
            }
        }
    }
    out
}

/// What each node of a stage computes and shares in a step.
#[derive(Clone, Debug, Default)]
pub struct NodeNeeds {
    /// Taps of the node's own feature terms (tracked).
    pub own_taps: Vec<String>,
    /// Taps other nodes' feature terms read from this node (shared detached).
    pub shared_taps: Vec<String>,
    /// The part of the batch the node trains on (trained nodes only).
    pub subset: Option<Subset>,
    /// Adapter index of each term that has one, by [`slot_key`].
    pub adapters: HashMap<String, usize>,
    /// Domain of an LFME expert (`train_on: Subset(domains: [d])`).
    pub domain: Option<usize>,
}

impl NodeNeeds {
    pub(super) fn taps(&self) -> Vec<String> {
        let mut v = self.own_taps.clone();
        v.extend(self.shared_taps.iter().filter(|t| !self.own_taps.contains(t)).cloned());
        v
    }
}

/// [`NodeNeeds`] of every node taking part in stage `s` (trained nodes and sources).
pub fn stage_needs(plan: &Plan, s: usize) -> HashMap<usize, NodeNeeds> {
    let st = &plan.stages[s];
    let mut needs: HashMap<usize, NodeNeeds> = HashMap::new();
    for &n in &st.train {
        let e = needs.entry(n).or_default();
        e.subset = plan.nodes[n].train_on.clone();
        // the slots' order only: the bank sizes are not read here
        e.adapters = adapter_slots(plan, n, 0).into_iter().enumerate().map(|(k, (o, _))| (o, k)).collect();
    }
    for t in &st.terms {
        let reads = t.loss.kind().reads();
        // the head trained, and for `OtherHeads` and `Branches` every head of the node
        let heads: Vec<usize> = match (t.head, reads.targets) {
            (Some(_), Targets::OtherHeads) | (None, Targets::Branches) => (1..=plan.nodes[t.to].model.heads()).collect(),
            (Some(m), _) => vec![m],
            (None, _) => Vec::new(),
        };
        for &h in &heads {
            add(&mut needs.entry(t.to).or_default().own_taps, &crate::models::head_tap(h));
        }
        // and for `Branches` every branch's features
        if reads.targets == Targets::Branches {
            for &h in &heads {
                add(&mut needs.entry(t.to).or_default().own_taps, &crate::models::branch_tap(h));
            }
        }
        for &f in &t.from {
            let e = needs.entry(f).or_default();
            e.domain = plan.nodes[f].train_on.as_ref().and_then(|s| (s.domains.len() == 1).then(|| s.domains[0]));
            // a `from_head: m` term reads head m of each source, shared detached
            if let Some(m) = t.from_head {
                add(&mut e.shared_taps, &crate::models::head_tap(m));
            }
        }
        // the target's own tap (tracked) and every source's (shared, detached)
        for tap in reads.own_taps {
            add(&mut needs.entry(t.to).or_default().own_taps, tap);
        }
        for tap in reads.source_taps {
            for &f in &t.from {
                add(&mut needs.entry(f).or_default().shared_taps, tap);
            }
        }
    }
    needs
}

/// Appends `tap` to `list` unless it is there.
fn add(list: &mut Vec<String>, tap: &str) {
    if !list.iter().any(|t| t == tap) {
        list.push(tap.to_string());
    }
}

/// What a node shares in a step, detached: its logits and the taps others read, on `rows` of
/// the batch (`None` = every row).
#[derive(Clone, Debug)]
pub struct Shared {
    pub(super) rows: Option<Vec<usize>>,
    pub(super) logits: Tensor<2>,
    pub(super) taps: Vec<(String, Tap)>,
}

/// [`Shared`] as plain data, to cross between threads.
#[derive(Clone, Debug)]
pub(super) struct SharedData {
    rows: Option<Vec<usize>>,
    logits: TensorData,
    taps: Vec<(String, TensorData)>,
}

impl Shared {
    pub(super) fn into_data(self) -> SharedData {
        SharedData { rows: self.rows, logits: self.logits.into_data(), taps: self.taps.into_iter().map(|(n, t)| (n, t.into_data())).collect() }
    }
    pub(super) fn from_data(d: &SharedData, device: &Device) -> Shared {
        Shared {
            rows: d.rows.clone(),
            logits: Tensor::from_data(d.logits.clone(), device),
            taps: d.taps.iter().map(|(n, t)| (n.clone(), Tap::from_data(t.clone(), device))).collect(),
        }
    }
    pub(super) fn tap(&self, name: &str) -> Tap {
        self.taps.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone()).expect("the source shares every tap asked for")
    }
    /// The logits a term reads from this source: its output, or head m's (`from_head`).
    pub(super) fn logits_of(&self, from_head: Option<usize>) -> Tensor<2> {
        match from_head.map(|m| self.tap(&crate::models::head_tap(m))) {
            None => self.logits.clone(),
            Some(Tap::Flat(h)) => h,
            Some(_) => panic!("a head's logits are a flat tap"),
        }
    }
}

/// Rows of the batch in `subset` (`None`: all rows).
pub(super) fn subset_rows(subset: &Option<Subset>, batch: &BatchMeta) -> Option<Vec<usize>> {
    subset.as_ref().map(|s| (0..batch.labels.len()).filter(|&b| s.contains(batch.labels[b] as usize, batch.domains[b] as usize)).collect())
}

/// Labels and domains of the batch (what subsets are selected by).
#[derive(Clone, Debug)]
pub(super) struct BatchMeta {
    pub(super) labels: Vec<i64>,
    pub(super) domains: Vec<u8>,
    /// Each row's index in the training split.
    pub(super) indices: Vec<usize>,
}

pub(super) fn index_tensor(rows: &[usize], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(rows.iter().map(|&r| r as i64).collect::<Vec<_>>(), [rows.len()]), device)
}

/// Positions, within a source's `have` rows, of the target's `want` rows (`None`: take the
/// source's output as it is). The resolver guarantees `have` covers `want` (the same subset,
/// or every row).
fn restrict_index(have: &Option<Vec<usize>>, want: &Option<Vec<usize>>) -> Option<Vec<usize>> {
    match (have, want) {
        (None, None) => None,
        (None, Some(w)) => Some(w.clone()),
        (Some(h), Some(w)) if h == w => None,
        (Some(h), Some(w)) => Some(w.iter().map(|r| h.iter().position(|x| x == r).expect("the source covers the target's rows")).collect()),
        (Some(_), None) => panic!("a source trained on a subset cannot feed a node trained on everything (the resolver rejects this)"),
    }
}

/// `t` on `device`: itself when it is there already, else a detached copy through host memory
/// (another GPU or another backend).
pub(super) fn on_device<const D: usize>(t: Tensor<D>, device: &Device) -> Tensor<D> {
    if t.device() == *device { t } else { Tensor::from_data(t.into_data(), device) }
}

/// A source's detached output `t` (on its `have` rows) on the `want` rows of the node reading
/// it, on that node's `device`.
pub(super) fn restrict(t: Tensor<2>, have: &Option<Vec<usize>>, want: &Option<Vec<usize>>, device: &Device) -> Tensor<2> {
    let t = on_device(t, device);
    match restrict_index(have, want) {
        None => t,
        Some(idx) => t.select(0, index_tensor(&idx, device)),
    }
}

/// [`restrict`] for a feature tap.
pub(super) fn restrict_tap(t: Tap, have: &Option<Vec<usize>>, want: &Option<Vec<usize>>, device: &Device) -> Tap {
    let t = t.on_device(device);
    match restrict_index(have, want) {
        None => t,
        Some(idx) => t.select(index_tensor(&idx, device)),
    }
}

/// For each of the target's rows, the logits of the expert of that sample's domain.
pub(super) fn lfme_target(
    experts: &[usize],
    needs: &HashMap<usize, NodeNeeds>,
    outputs: &HashMap<usize, Shared>,
    want: &Option<Vec<usize>>,
    meta: &BatchMeta,
    device: &Device,
) -> Tensor<2> {
    let all: Vec<usize> = (0..meta.labels.len()).collect();
    let rows = want.as_ref().unwrap_or(&all);
    let mut idx = vec![usize::MAX; rows.len()];
    let mut parts = Vec::new();
    let mut offset = 0;
    for s in experts {
        // an expert with none of its domain's samples in this batch shares nothing
        let (Some(sh), Some(d)) = (outputs.get(s), needs[s].domain) else { continue };
        let have = sh.rows.as_ref().unwrap_or(&all);
        for (k, &r) in rows.iter().enumerate() {
            if meta.domains[r] as usize == d {
                idx[k] = offset + have.iter().position(|&x| x == r).expect("an expert covers its domain's rows");
            }
        }
        offset += have.len();
        parts.push(on_device(sh.logits.clone(), device));
    }
    assert!(idx.iter().all(|&i| i != usize::MAX), "every sample has its domain's expert (the resolver checks coverage)");
    Tensor::cat(parts, 0).select(0, index_tensor(&idx, device))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row of the LFME target is the logits row of the expert of that sample's domain,
    /// wherever that expert's rows sit in its own (subset) output.
    #[test]
    fn lfme_target_routes_rows_to_their_domain_expert() {
        let device = Device::flex();
        let meta = BatchMeta { labels: vec![0; 5], domains: vec![1, 0, 0, 1, 0], indices: (0..5).collect() };
        let row = |v: f32| [v, -v];
        let logits = |rows: &[f32]| Tensor::<2>::from_data(TensorData::new(rows.iter().flat_map(|&v| row(v)).collect::<Vec<_>>(), [rows.len(), 2]), &device);
        let mut outputs = HashMap::new();
        outputs.insert(7, Shared { rows: Some(vec![1, 2, 4]), logits: logits(&[10.0, 20.0, 40.0]), taps: vec![] });
        outputs.insert(9, Shared { rows: Some(vec![0, 3]), logits: logits(&[100.0, 300.0]), taps: vec![] });
        let mut needs = HashMap::new();
        needs.insert(7, NodeNeeds { domain: Some(0), ..Default::default() });
        needs.insert(9, NodeNeeds { domain: Some(1), ..Default::default() });
        let got: Vec<f32> = lfme_target(&[7, 9], &needs, &outputs, &None, &meta, &device).into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(got, vec![100.0, -100.0, 10.0, -10.0, 20.0, -20.0, 300.0, -300.0, 40.0, -40.0]);
        // a target trained on rows 2 and 3 only
        let got: Vec<f32> = lfme_target(&[7, 9], &needs, &outputs, &Some(vec![2, 3]), &meta, &device).into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(got, vec![20.0, -20.0, 300.0, -300.0]);
    }

    #[test]
    fn restrict_index_maps_rows_between_subsets() {
        assert_eq!(restrict_index(&None, &None), None);
        assert_eq!(restrict_index(&None, &Some(vec![2, 5])), Some(vec![2, 5]));
        assert_eq!(restrict_index(&Some(vec![1, 2, 5]), &Some(vec![1, 2, 5])), None);
        assert_eq!(restrict_index(&Some(vec![1, 2, 5]), &Some(vec![2, 5])), Some(vec![1, 2]));
    }
}
