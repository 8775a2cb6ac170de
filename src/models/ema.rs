//! The exponential moving average of a network's weights (an `Ema` node, see
//! [`super::ModelSpec::Ema`]).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

use super::Network;

/// Every float tensor of a module (parameters and batch-norm running statistics), detached and
/// flattened, in visit order.
struct Flatten(Vec<Tensor<1>>);

impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().detach();
        let n = t.shape().num_elements();
        self.0.push(t.reshape([n]));
    }
}

/// Maps each float tensor θ of the average to `decay·θ + (1 − decay)·θ_tracked`.
struct Average {
    tracked: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Average {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let other = self.tracked.next().expect("the average and the tracked network have the same architecture");
        let decay = self.decay;
        param.map(|t| {
            let shape = t.shape();
            let device = t.device();
            let other: Tensor<D> = other.to_device(&device).reshape(shape);
            t.detach().mul_scalar(decay).add(other.mul_scalar(1.0 - decay))
        })
    }
}

/// `average` moved toward `tracked`: every parameter and batch-norm running statistic θ becomes
/// `decay·θ + (1 − decay)·θ_tracked` (timm's `ModelEmaV2` convention: buffers averaged like the
/// weights). Computed on `average`'s device; the two networks must share their architecture.
pub fn ema_step(average: Network, tracked: &Network, decay: f64) -> Network {
    let mut flat = Flatten(Vec::new());
    tracked.visit(&mut flat);
    average.map(&mut Average { tracked: flat.0.into_iter(), decay })
}
