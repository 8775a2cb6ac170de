//! Evaluation: logits of a whole split, then metrics computed in f64 on the CPU (independent of
//! the backend): loss, accuracy, expected calibration error, the ensemble's metrics, agreement
//! between peers and their mean pairwise KL.

use burn::tensor::{Device, Tensor, TensorData};

use super::Placement;
use crate::config::Plan;
use crate::data::batch::{eval_batches, gather};
use crate::data::{Prepared, Samples};
use crate::models::{Network, Tap, Taps, head_tap};
use crate::results::MetricRow;

/// Samples per forward pass when evaluating (no gradients are kept, so larger than a
/// training batch; the results do not depend on it).
pub const EVAL_BATCH: usize = 1000;

/// Node id of the rows of the trained nodes' ensemble (mean of their probabilities).
pub const ENSEMBLE: &str = "ensemble";
/// Node id of the rows of pairwise statistics between the trained nodes.
pub const COHORT: &str = "cohort";

/// The metric rows of one evaluation, and its summary for the epoch line.
pub struct Evaluated {
    /// Rows for `metrics.csv`.
    pub rows: Vec<MetricRow>,
    /// ` a 91.20% b 90.10% | ensemble 92.00%` (test accuracies).
    pub line: String,
}

/// Evaluates `models` (the nodes `nodes`, in eval mode) and, when there are several, their
/// ensemble (of the networks other than `Ema` averages), on the validation and test splits of `data`: loss, accuracy and ECE per node and
/// per Hydra head (`<id>.head<m>`, with the heads' agreement and pairwise KL), the ensemble's,
/// and the nodes' agreement and pairwise KL (`cohort`). Rows carry `stage` and `epoch`.
pub fn evaluate(plan: &Plan, stage: usize, epoch: usize, nodes: &[usize], models: &[Network], data: &Prepared, places: &[Placement]) -> Evaluated {
    let stage = &plan.stages[stage].name;
    let mut ev = Evaluated { rows: Vec::new(), line: String::new() };
    for (split, samples) in [("validation", &data.validation), ("test", &data.test)] {
        if samples.is_empty() {
            continue;
        }
        let mut rows = Rows { stage, epoch, split, out: &mut ev.rows };
        let probs: Vec<Vec<f64>> = nodes.iter().zip(models).map(|(&n, m)| predict(m, samples, EVAL_BATCH, &places[n].plain).probs()).collect();
        for ((&n, p), model) in nodes.iter().zip(&probs).zip(models) {
            let id = &plan.nodes[n].id;
            let s = scores(p, plan.classes, &samples.labels);
            rows.scores(id, s);
            if split == "test" {
                ev.line.push_str(&format!(" {id} {:.2}%", 100.0 * s.accuracy));
            }
            let heads = plan.nodes[n].model.heads();
            if heads > 0 {
                let head_probs: Vec<Vec<f64>> = predict_heads(model, heads, samples, EVAL_BATCH, &places[n].plain).iter().map(Logits::probs).collect();
                for (m, hp) in head_probs.iter().enumerate() {
                    rows.scores(&format!("{id}.{}", head_tap(m + 1)), scores(hp, plan.classes, &samples.labels));
                }
                if head_probs.len() >= 2 {
                    rows.push(id, "head_agreement", agreement(&head_probs, plan.classes));
                    rows.push(id, "head_pairwise_kl", pairwise_kl(&head_probs, plan.classes));
                }
            }
        }
        // the ensemble of the networks themselves: `Ema` averages are reported alone
        let members: Vec<Vec<f64>> = nodes.iter().zip(&probs).filter(|(n, _)| plan.nodes[**n].ema.is_none()).map(|(_, p)| p.clone()).collect();
        let members = if members.is_empty() { probs } else { members };
        if members.len() >= 2 {
            let s = ensemble_scores(&members, plan.classes, &samples.labels);
            rows.scores(ENSEMBLE, s);
            rows.push(COHORT, "agreement", agreement(&members, plan.classes));
            rows.push(COHORT, "pairwise_kl", pairwise_kl(&members, plan.classes));
            if split == "test" {
                ev.line.push_str(&format!(" | ensemble {:.2}%", 100.0 * s.accuracy));
            }
        }
    }
    ev
}

/// Rows of one split of one evaluation.
struct Rows<'a> {
    stage: &'a str,
    epoch: usize,
    split: &'a str,
    out: &'a mut Vec<MetricRow>,
}

impl Rows<'_> {
    fn push(&mut self, node: &str, metric: &str, value: f64) {
        self.out.push(MetricRow { stage: self.stage.into(), epoch: self.epoch, node: node.into(), split: self.split.into(), metric: metric.into(), value });
    }
    fn scores(&mut self, node: &str, s: Scores) {
        self.push(node, "loss", s.loss);
        self.push(node, "accuracy", s.accuracy);
        self.push(node, "ece", s.ece);
    }
}

/// Logits of `n` samples × `c` classes, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Logits {
    /// Samples.
    pub n: usize,
    /// Classes.
    pub c: usize,
    /// Values.
    pub values: Vec<f32>,
}

impl Logits {
    /// Softmax probabilities (f64), row-major.
    pub fn probs(&self) -> Vec<f64> {
        crate::stats::softmax_rows(&self.values, self.c)
    }
}

/// Logits of `model` (already in eval mode) on all of `samples`.
pub fn predict(model: &Network, samples: &Samples, batch_size: usize, device: &Device) -> Logits {
    let mut values = Vec::with_capacity(samples.len() * samples.classes);
    for idx in eval_batches(samples.len(), batch_size) {
        let b = gather(samples, &idx, &[], None);
        let x = Tensor::<2>::from_data(TensorData::new(b.inputs, [idx.len(), samples.row_len()]), device);
        let z = model.forward(x);
        values.extend(z.into_data().try_into_vec::<f32>().expect("float logits"));
    }
    Logits { n: samples.len(), c: samples.classes, values }
}

/// Logits of each head of a multi-head model (taps `head1`, …, `headM`) on all of `samples`.
pub fn predict_heads(model: &Network, heads: usize, samples: &Samples, batch_size: usize, device: &Device) -> Vec<Logits> {
    let names: Vec<String> = (1..=heads).map(head_tap).collect();
    let mut values = vec![Vec::with_capacity(samples.len() * samples.classes); heads];
    for idx in eval_batches(samples.len(), batch_size) {
        let b = gather(samples, &idx, &[], None);
        let x = Tensor::<2>::from_data(TensorData::new(b.inputs, [idx.len(), samples.row_len()]), device);
        let mut taps = Taps::new(&names);
        model.forward_taps(x, &mut taps);
        for (m, name) in names.iter().enumerate() {
            match taps.take(name) {
                Some(Tap::Flat(z)) => values[m].extend(z.into_data().try_into_vec::<f32>().expect("float logits")),
                _ => panic!("the model has no head tap `{name}`"),
            }
        }
    }
    values.into_iter().map(|v| Logits { n: samples.len(), c: samples.classes, values: v }).collect()
}

/// Loss, accuracy and calibration of one predictor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// Mean negative log-likelihood of the true class.
    pub loss: f64,
    /// Fraction of correct argmax predictions.
    pub accuracy: f64,
    /// Expected calibration error with 15 equal-width confidence bins (Guo et al. 2017):
    /// `Σ_bins (|bin|/N)·|accuracy(bin) − mean confidence(bin)|`.
    pub ece: f64,
}

fn argmax(row: &[f64]) -> usize {
    row.iter().enumerate().fold((0, f64::MIN), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0
}

/// Scores of probabilities `p` (row-major, `c` classes) against `labels`.
pub fn scores(p: &[f64], c: usize, labels: &[u8]) -> Scores {
    const BINS: usize = 15;
    let n = labels.len();
    let (mut loss, mut correct) = (0.0, 0usize);
    let mut bins = [(0usize, 0.0f64, 0usize); BINS]; // (count, sum of confidence, correct)
    for (row, &y) in p.chunks(c).zip(labels) {
        loss -= row[y as usize].max(1e-45).ln();
        let k = argmax(row);
        let ok = k == y as usize;
        correct += usize::from(ok);
        let conf = row[k];
        let bin = ((conf * BINS as f64).ceil() as usize).clamp(1, BINS) - 1;
        bins[bin].0 += 1;
        bins[bin].1 += conf;
        bins[bin].2 += usize::from(ok);
    }
    let ece = bins.iter().filter(|b| b.0 > 0).map(|&(cnt, conf, ok)| (cnt as f64 / n as f64) * (ok as f64 / cnt as f64 - conf / cnt as f64).abs()).sum();
    Scores { loss: loss / n as f64, accuracy: correct as f64 / n as f64, ece }
}

/// Scores of the ensemble that averages the members' probabilities.
pub fn ensemble_scores(members: &[Vec<f64>], c: usize, labels: &[u8]) -> Scores {
    let k = members.len() as f64;
    let mean: Vec<f64> = (0..members[0].len()).map(|i| members.iter().map(|m| m[i]).sum::<f64>() / k).collect();
    scores(&mean, c, labels)
}

/// Mean over pairs of members of the fraction of samples where both predict the same class.
pub fn agreement(members: &[Vec<f64>], c: usize) -> f64 {
    let preds: Vec<Vec<usize>> = members.iter().map(|m| m.chunks(c).map(argmax).collect()).collect();
    let mut total = 0.0;
    let mut pairs = 0;
    for i in 0..preds.len() {
        for j in i + 1..preds.len() {
            let same = preds[i].iter().zip(&preds[j]).filter(|(a, b)| a == b).count();
            total += same as f64 / preds[i].len() as f64;
            pairs += 1;
        }
    }
    total / pairs as f64
}

/// Mean over ordered pairs (i ≠ j) of the batch-mean `KL(p_i ‖ p_j)`.
pub fn pairwise_kl(members: &[Vec<f64>], c: usize) -> f64 {
    let mut total = 0.0;
    let mut pairs = 0;
    for (i, pi) in members.iter().enumerate() {
        for (j, pj) in members.iter().enumerate() {
            if i == j {
                continue;
            }
            let n = pi.len() / c;
            let kl: f64 = pi.iter().zip(pj).map(|(&a, &b)| if a > 0.0 { a * (a.ln() - b.max(1e-45).ln()) } else { 0.0 }).sum();
            total += kl / n as f64;
            pairs += 1;
        }
    }
    total / pairs as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_by_hand() {
        // 2 samples, 2 classes: first right with 0.8, second wrong with 0.6 confidence
        let p = [0.8, 0.2, 0.6, 0.4];
        let s = scores(&p, 2, &[0, 1]);
        assert!((s.loss - (-(0.8f64.ln()) - 0.4f64.ln()) / 2.0).abs() < 1e-12);
        assert_eq!(s.accuracy, 0.5);
        // bins: 0.8 -> bin 11 (acc 1, conf .8), 0.6 -> bin 8 (acc 0, conf .6): ece = .5·.2 + .5·.6
        assert!((s.ece - 0.4).abs() < 1e-12);
        let m = vec![vec![0.8, 0.2, 0.6, 0.4], vec![0.3, 0.7, 0.6, 0.4]];
        assert_eq!(agreement(&m, 2), 0.5);
        let e = ensemble_scores(&m, 2, &[0, 1]);
        assert_eq!(e.accuracy, 0.5); // mean rows [0.55, 0.45], [0.6, 0.4]
        let kl01 = (0.8 * (0.8f64 / 0.3).ln() + 0.2 * (0.2f64 / 0.7).ln()) / 2.0;
        let kl10 = (0.3 * (0.3f64 / 0.8).ln() + 0.7 * (0.7f64 / 0.2).ln()) / 2.0;
        assert!((pairwise_kl(&m, 2) - (kl01 + kl10) / 2.0).abs() < 1e-12);
    }
}
