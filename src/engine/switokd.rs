//! SwitOKD's expert mode (Qian et al., "Switchable Online Knowledge Distillation", ECCV 2022): a
//! trained teacher pauses in the steps where its student is too far behind, and the epoch's
//! share of paused steps is a metric.

use std::collections::HashMap;

use burn::tensor::Tensor;

use super::exchange::{BatchMeta, Shared};
use super::step::StepContext;
use crate::config::PlanStage;

/// Each trained teacher of `st` → its student trained in the same stage (`switch_with`).
pub(super) fn pairs(plan: &crate::config::Plan, st: &PlanStage) -> HashMap<usize, usize> {
    st.train.iter().filter_map(|&n| plan.nodes[n].switch_with.filter(|s| st.train.contains(s)).map(|s| (n, s))).collect()
}

impl StepContext<'_> {
    /// Whether trained node `n` pauses in this step: it has a SwitOKD student whose pre-step
    /// outputs are in `outputs`, and the rule says expert mode ([`expert_mode`]).
    pub(super) fn pauses(&self, n: usize, outputs: &HashMap<usize, Shared>, meta: &BatchMeta) -> bool {
        let Some(student) = self.switch.get(&n) else { return false };
        let (Some(t), Some(s)) = (outputs.get(&n), outputs.get(student)) else { return false };
        let values = |z: &Tensor<2>| z.clone().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 logits");
        let [_, classes] = t.logits.dims();
        expert_mode(&values(&t.logits), &values(&s.logits), &meta.labels, classes)
    }
}

/// SwitOKD's switching rule (Qian et al., ECCV 2022, eqs. (5)–(9); the authors' code) for a
/// teacher with logits `t` and its student with logits `s` (`[B, C]` row-major) on labels `y`:
/// with `p = softmax(·)`, `G = mean_b ‖p_s − p_t‖₁` (the distillation gap), `s_y = mean_b ‖p_s −
/// onehot(y)‖₁`, `t_y = mean_b ‖p_t − onehot(y)‖₁`, `ε = exp(−t_y/(t_y + s_y))` and the adaptive
/// threshold `δ = s_y − ε·t_y`: expert mode (the teacher pauses) when `G > δ` and `t_y < s_y`.
pub fn expert_mode(t: &[f32], s: &[f32], y: &[i64], classes: usize) -> bool {
    let probs = |z: &[f32]| crate::stats::softmax_rows(z, classes);
    let (pt, ps) = (probs(t), probs(s));
    let b = y.len() as f64;
    let to_label = |p: &[f64]| -> f64 {
        p.chunks(classes)
            .zip(y)
            .map(|(r, &l)| r.iter().enumerate().map(|(c, v)| if c as i64 == l { (v - 1.0).abs() } else { v.abs() }).sum::<f64>())
            .sum::<f64>()
            / b
    };
    let gap = pt.iter().zip(&ps).map(|(a, b)| (a - b).abs()).sum::<f64>() / b;
    let (s_y, t_y) = (to_label(&ps), to_label(&pt));
    let epsilon = (-t_y / (t_y + s_y)).exp();
    gap > s_y - epsilon * t_y && t_y < s_y
}
