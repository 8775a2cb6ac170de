//! SGD with momentum, dampening, Nesterov and weight decay, computing what burn_optim's `Sgd`
//! computes (the same operations in the same order: the same bits, tested) with the update in one
//! pass ([`crate::kernels::sgd_momentum`]) instead of burn's five to seven.
//!
//! Per parameter `p` with gradient `g`, velocity `v`, learning rate `lr`:
//! `g ← p·λ + g` (weight decay λ, if set); first step `v ← g`, later `v ← g·(1−τ) + v·μ`;
//! `d ← v·μ + g` (Nesterov) or `v`; `p ← p − d·lr`. Without momentum `d = g`.
//!
//! The state is recorded under burn's names (`<param id>.momentum.velocity`), so an optimiser
//! record written by burn's `Sgd` loads here and the other way round.

use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource, join_path};
use burn::tensor::{Device, Tensor};

use crate::kernels::{SgdStep, sgd_momentum};

/// Momentum settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Momentum {
    /// μ (burn holds it as f32).
    pub momentum: f32,
    /// τ.
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
}

/// The optimiser (build it into a `ModuleOptimizer` with `ModuleOptimizer::from`).
#[derive(Clone, Debug, PartialEq)]
pub struct Sgd {
    /// Momentum, if any.
    pub momentum: Option<Momentum>,
    /// L2 penalty λ (burn holds it as f32), if any.
    pub weight_decay: Option<f32>,
}

/// One parameter's state: its velocity once it has momentum.
#[derive(Clone, Debug)]
pub struct SgdState<const D: usize> {
    velocity: Option<Tensor<D>>,
}

/// burn's `SgdState { momentum: Option<MomentumState { velocity } > }` path.
const MOMENTUM: &str = "momentum";
const VELOCITY: &str = "velocity";

impl<const D: usize> RecordState for SgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(v) = &self.velocity {
            out.push_tensor(&join_path(prefix, MOMENTUM), VELOCITY, v.clone().into_data());
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let velocity = src.take_tensor(&join_path(prefix, MOMENTUM), VELOCITY).map(|data| Tensor::from_data(data, device));
        Some(SgdState { velocity })
    }
}

impl Optimizer for Sgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(&self, lr: LearningRate, param: Tensor<D>, grad: Tensor<D>, state: Option<SgdState<D>>) -> (Tensor<D>, Option<SgdState<D>>) {
        let lr32 = lr as f32;
        let velocity = state.and_then(|s| s.velocity);
        match (self.momentum, velocity) {
            (Some(m), Some(velocity)) => {
                let step = SgdStep { lr: lr32, momentum: m.momentum, keep: (1.0 - m.dampening) as f32, nesterov: m.nesterov, decay: self.weight_decay };
                let (param, velocity) = sgd_momentum(param, grad, velocity, step);
                (param, Some(SgdState { velocity: Some(velocity) }))
            }
            (momentum, _) => {
                // the first step with momentum (v ← g), or plain SGD: burn's operations
                let grad = match self.weight_decay {
                    Some(penalty) => param.clone().mul_scalar(penalty).add(grad),
                    None => grad,
                };
                let (direction, velocity) = match momentum {
                    Some(m) if m.nesterov => (grad.clone().mul_scalar(m.momentum).add(grad.clone()), Some(grad)),
                    Some(_) => (grad.clone(), Some(grad)),
                    None => (grad, None),
                };
                (param - direction.mul_scalar(lr32), Some(SgdState { velocity }))
            }
        }
    }

    fn to_device<const D: usize>(state: SgdState<D>, device: &Device) -> SgdState<D> {
        SgdState { velocity: state.velocity.map(|v| v.to_device(device)) }
    }
}
