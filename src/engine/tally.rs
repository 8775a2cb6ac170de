//! What the steps of one epoch add up to, and the training rows of `metrics.csv` it gives: each
//! trained node's mean loss, each of its terms' mean value, its learning rate, and SwitOKD's
//! share of paused steps.

use std::collections::HashMap;

use super::step::{StepReport, TermValue};
use crate::config::Plan;
use crate::results::MetricRow;

/// The sums of one epoch's steps.
pub(super) struct Tally {
    /// Each trained node's (loss sum, steps it trained in), in `stage.train` order.
    sums: Vec<(f64, usize)>,
    /// Each trained node's sums of its terms' values and diagnostics.
    terms: Vec<Vec<TermValue>>,
    /// SwitOKD: steps each teacher paused in.
    paused: HashMap<usize, usize>,
    /// Steps so far.
    steps: usize,
}

impl Tally {
    /// An empty tally for `trained` nodes.
    pub(super) fn new(trained: usize) -> Self {
        Tally { sums: vec![(0.0, 0); trained], terms: vec![Vec::new(); trained], paused: HashMap::new(), steps: 0 }
    }

    /// Steps so far.
    pub(super) fn steps(&self) -> usize {
        self.steps
    }

    /// Adds one step.
    pub(super) fn add(&mut self, report: &StepReport) {
        self.steps += 1;
        for &n in &report.paused {
            *self.paused.entry(n).or_insert(0) += 1;
        }
        for (k, (loss, terms)) in report.losses.iter().zip(&report.terms).enumerate() {
            if let (Some(l), Some(terms)) = (loss, terms) {
                self.sums[k].0 += l;
                self.sums[k].1 += 1;
                if self.terms[k].is_empty() {
                    self.terms[k] =
                        terms.iter().map(|t| TermValue { value: 0.0, diagnostics: t.diagnostics.iter().map(|(d, _)| (*d, 0.0)).collect() }).collect();
                }
                for (sum, t) in self.terms[k].iter_mut().zip(terms) {
                    sum.value += t.value;
                    sum.diagnostics.iter_mut().zip(&t.diagnostics).for_each(|(a, (_, v))| a.1 += v);
                }
            }
        }
    }

    /// The rows of stage `s`'s epoch `epoch` (from 0) with learning rates `lr`; `switched`: the
    /// SwitOKD teachers.
    pub(super) fn rows(&self, plan: &Plan, s: usize, epoch: usize, lr: &HashMap<usize, f64>, switched: &HashMap<usize, usize>) -> Vec<MetricRow> {
        let st = &plan.stages[s];
        let mut rows = Vec::new();
        for (k, &n) in st.train.iter().enumerate() {
            let row = |metric: &str, value: f64| MetricRow {
                stage: st.name.clone(),
                epoch: epoch + 1,
                node: plan.nodes[n].id.clone(),
                split: "train".into(),
                metric: metric.into(),
                value,
            };
            let (sum, count) = self.sums[k];
            // a node whose subset had no sample this epoch has no training loss to report
            if count > 0 {
                rows.push(row("loss", sum / count as f64));
            }
            rows.push(row("lr", lr[&n]));
            if switched.contains_key(&n) {
                // the fraction of this epoch's steps in which the teacher paused
                rows.push(row("expert_mode", self.paused.get(&n).copied().unwrap_or(0) as f64 / self.steps as f64));
            }
            if count > 0 {
                for (name, sum) in plan.term_metrics(s, n).iter().zip(&self.terms[k]) {
                    rows.push(row(name, sum.value / count as f64));
                    let term = name.strip_prefix("loss:").unwrap_or(name);
                    for (d, v) in &sum.diagnostics {
                        rows.push(row(&format!("{d}:{term}"), v / count as f64));
                    }
                }
            }
        }
        rows
    }
}
