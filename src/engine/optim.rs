//! Optimisers and learning-rate schedules of the plan, built with PyTorch's semantics.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, ModuleOptimizer};

use super::sgd::{Momentum, Sgd};
use crate::config::{Decay, OptimizerSpec, ScheduleSpec};

/// A fresh optimiser for `spec` (dampening and ε set explicitly: burn's defaults differ). SGD is
/// cohort's [`Sgd`] (burn's arithmetic, one pass per parameter).
pub fn build(spec: &OptimizerSpec) -> ModuleOptimizer {
    let decay = |wd: f64| (wd > 0.0).then(|| WeightDecayConfig::new(wd as f32));
    match spec {
        OptimizerSpec::Sgd { momentum, dampening, nesterov, weight_decay, .. } => ModuleOptimizer::from(Sgd {
            momentum: (momentum.get() > 0.0).then(|| Momentum { momentum: momentum.get() as f32, dampening: dampening.get(), nesterov: *nesterov }),
            weight_decay: (weight_decay.get() > 0.0).then(|| weight_decay.get() as f32),
        }),
        OptimizerSpec::Adam { beta1, beta2, epsilon, weight_decay, .. } => AdamConfig::new()
            .with_beta_1(beta1.get() as f32)
            .with_beta_2(beta2.get() as f32)
            .with_epsilon(epsilon.get() as f32)
            .with_weight_decay(decay(weight_decay.get()))
            .init(),
    }
}

/// The base learning rate of `spec`.
pub fn base_lr(spec: &OptimizerSpec) -> f64 {
    match spec {
        OptimizerSpec::Sgd { lr, .. } | OptimizerSpec::Adam { lr, .. } => lr.get(),
    }
}

/// Learning rate in epoch `epoch` (0-based) of a stage of `epochs` epochs: linear warm-up
/// `lr·(e+1)/W` for the first W epochs, then the decay rule over the remaining epochs.
pub fn lr_at(lr: f64, s: &ScheduleSpec, epoch: usize, epochs: usize) -> f64 {
    let w = s.warmup_epochs;
    if epoch < w {
        return lr * (epoch + 1) as f64 / w as f64;
    }
    let e = epoch - w;
    let span = epochs.saturating_sub(w).max(1);
    match &s.decay {
        Decay::Constant => lr,
        Decay::Step { every, gamma } => lr * gamma.get().powi((e / every.get()) as i32),
        Decay::MultiStep { milestones, gamma } => lr * gamma.get().powi(milestones.iter().filter(|&&m| m <= epoch).count() as i32),
        Decay::Cosine { min_lr } => {
            let min = min_lr.map_or(0.0, |m| m.get());
            min + (lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * e as f64 / span as f64).cos())
        }
    }
}

/// Sigmoid ramp-up factor `exp(−5(1 − min(e/N, 1))²)` of a distillation weight (N = 0: 1).
pub fn ramp_up(epoch: usize, n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let t = (epoch as f64 / n as f64).min(1.0);
    (-5.0 * (1.0 - t).powi(2)).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::{Epochs, NonNegative};

    #[test]
    fn schedules() {
        let cos = ScheduleSpec { decay: Decay::Cosine { min_lr: None }, warmup_epochs: 2 };
        assert_eq!(lr_at(1.0, &cos, 0, 12), 0.5);
        assert_eq!(lr_at(1.0, &cos, 1, 12), 1.0);
        assert_eq!(lr_at(1.0, &cos, 2, 12), 1.0);
        assert!((lr_at(1.0, &cos, 7, 12) - 0.5).abs() < 1e-12);
        let step = ScheduleSpec { decay: Decay::Step { every: Epochs::new(3).unwrap(), gamma: NonNegative::new(0.1).unwrap() }, warmup_epochs: 0 };
        assert_eq!(lr_at(1.0, &step, 2, 10), 1.0);
        assert!((lr_at(1.0, &step, 3, 10) - 0.1).abs() < 1e-12);
        let ms = ScheduleSpec { decay: Decay::MultiStep { milestones: vec![2, 4], gamma: NonNegative::new(0.5).unwrap() }, warmup_epochs: 0 };
        assert_eq!([0, 2, 3, 4].map(|e| lr_at(1.0, &ms, e, 10)), [1.0, 0.5, 0.5, 0.25]);
        assert_eq!(ramp_up(0, 0), 1.0);
        assert!((ramp_up(0, 10) - (-5f64).exp()).abs() < 1e-12);
        assert_eq!(ramp_up(10, 10), 1.0);
    }
}
