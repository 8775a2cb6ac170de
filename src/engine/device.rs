//! Where nodes compute: the backend and device of a run and of each node.

use burn::tensor::Device;

use super::EngineError;
use crate::config::{BackendChoice, Plan};

/// The default backend of this binary (the first compiled-in of flex, ndarray, tch, cuda, wgpu)
/// and its name.
pub fn backend_device() -> (Device, String) {
    device_for(BackendChoice::Auto, 0).expect("a backend is compiled in")
}

/// The device of `choice` (GPU index `index`) and its name, or an error naming the cargo
/// feature that compiles it in.
#[allow(deprecated, unreachable_code, unused_variables)] // burn marks tch/ndarray deprecated; unused arms depend on features
pub fn device_for(choice: BackendChoice, index: usize) -> Result<(Device, String), EngineError> {
    use BackendChoice as B;
    let missing = |backend: &'static str| EngineError::BackendMissing { backend };
    let cpu = |backend: &'static str| -> Result<(), EngineError> { if index == 0 { Ok(()) } else { Err(EngineError::NoSuchDevice { index, backend }) } };
    match choice {
        B::Auto => {
            #[cfg(feature = "flex")]
            return device_for(B::Flex, index);
            #[cfg(feature = "ndarray")]
            return device_for(B::Ndarray, index);
            #[cfg(feature = "tch")]
            return device_for(B::Tch, index);
            #[cfg(feature = "cuda")]
            return device_for(B::Cuda, index);
            #[cfg(feature = "wgpu")]
            return device_for(B::Wgpu, index);
            Err(missing("flex"))
        }
        B::Flex => {
            #[cfg(feature = "flex")]
            return cpu("flex").map(|_| (Device::flex(), "flex".into()));
            Err(missing("flex"))
        }
        B::Ndarray => {
            #[cfg(feature = "ndarray")]
            return cpu("ndarray").map(|_| (Device::ndarray(), "ndarray".into()));
            Err(missing("ndarray"))
        }
        B::Tch => {
            #[cfg(feature = "tch")]
            return tch_device(index);
            Err(missing("tch"))
        }
        B::Cuda => {
            #[cfg(feature = "cuda")]
            return Ok((Device::cuda(index), format!("cuda:{index}")));
            Err(missing("cuda"))
        }
        B::Wgpu => {
            #[cfg(feature = "wgpu")]
            return super::wgpu::device(index);
            Err(missing("wgpu"))
        }
    }
}

/// Every backend compiled in, in `auto`'s order, with the devices it computes on (`cohort
/// devices`): index `N` of a list is `device: N`.
#[allow(deprecated)] // burn marks tch deprecated
pub fn devices() -> Vec<(&'static str, Vec<String>)> {
    let mut all = Vec::new();
    let cpu = || format!("the CPU ({} threads)", rayon::current_num_threads());
    #[cfg(feature = "flex")]
    all.push(("flex", vec![cpu()]));
    #[cfg(feature = "ndarray")]
    all.push(("ndarray", vec![cpu()]));
    #[cfg(feature = "tch")]
    {
        let gpus = Device::enumerate(burn::tensor::DeviceType::LibTorch).len();
        all.push((
            "tch",
            if gpus == 0 { vec![format!("{} (LibTorch; no CUDA GPU visible)", cpu())] } else { (0..gpus).map(|i| format!("LibTorch cuda:{i}")).collect() },
        ));
    }
    #[cfg(feature = "cuda")]
    all.push(("cuda", (0..Device::enumerate(burn::tensor::DeviceType::Cuda).len()).map(|i| format!("CUDA GPU {i}")).collect()));
    #[cfg(feature = "wgpu")]
    all.push(("wgpu", super::wgpu::adapters().iter().map(super::wgpu::Adapter::describe).collect()));
    let _ = cpu;
    all
}

/// The device a run on `choice` with training device `run` draws its initial weights on (then
/// moved to each node's device): the run's own, except on wgpu, whose generator is not the CPU's —
/// there flex's, where it is compiled in, so that a run on a GPU starts from the weights the CPU
/// run of the same seed starts from and the two differ only by the GPU's rounding.
#[allow(unused_variables)] // `choice` matters only with the wgpu feature
pub fn init_device(choice: BackendChoice, run: &Device) -> Device {
    #[cfg(all(feature = "wgpu", feature = "flex"))]
    if choice == BackendChoice::Wgpu {
        return Device::flex().autodiff();
    }
    run.clone()
}

/// LibTorch's device `index`: `cuda:index` where LibTorch sees CUDA GPUs (a CUDA LibTorch,
/// `scripts/install-libtorch.sh --cuda`, on a machine with the NVIDIA driver and a GPU), else the
/// CPU, which is device 0. `CUDA_VISIBLE_DEVICES=` (empty) keeps a GPU machine's runs on the CPU.
#[cfg(feature = "tch")]
#[allow(deprecated)] // burn-tch is deprecated upstream (still published for 0.22): the GPU path that installs offline
fn tch_device(index: usize) -> Result<(Device, String), EngineError> {
    let gpus = Device::enumerate(burn::tensor::DeviceType::LibTorch).len();
    match gpus {
        0 if index == 0 => Ok((Device::libtorch(), "tch (LibTorch CPU; no CUDA GPU visible)".into())),
        0 => Err(EngineError::NoGpu { index, backend: "tch" }),
        n if index < n => Ok((Device::libtorch_cuda(index), format!("tch (LibTorch cuda:{index})"))),
        n => Err(EngineError::GpuIndex { index, gpus: n, backend: "tch" }),
    }
}

/// Where a node computes: its device without autodiff (evaluation, fixed sources) and with it
/// (training).
#[derive(Clone, Debug)]
pub struct Placement {
    /// Eval-mode device.
    pub plain: Device,
    /// The same device with autodiff.
    pub train: Device,
    /// Backend and device, as the manifest records them.
    pub name: String,
}

impl Placement {
    /// The placement on `plain` (and its autodiff twin), named `name` in manifests and reports.
    pub fn of(plain: Device, name: String) -> Self {
        Placement { train: plain.clone().autodiff(), plain, name }
    }
}

/// Every node's placement: its own `backend`/`device`, else the plan's (after `--backend` /
/// `--device`). An error names the node whose backend is not compiled in or whose device does
/// not exist.
pub fn placements(plan: &Plan) -> Result<Vec<Placement>, EngineError> {
    (0..plan.nodes.len())
        .map(|n| {
            let (backend, device) = plan.placement(n);
            let node = &plan.nodes[n];
            match device_for(backend, device) {
                Ok((plain, name)) => Ok(Placement::of(plain, name)),
                Err(e) if node.backend.is_some() || node.device.is_some() => Err(EngineError::NodePlacement { node: node.id.clone(), source: Box::new(e) }),
                Err(e) => Err(e),
            }
        })
        .collect()
}

/// The run's backend as the manifest records it: the plan's device, then every node placed
/// elsewhere, e.g. `flex, node `b`: ndarray`.
pub fn describe(plan: &Plan, run: &Placement, places: &[Placement]) -> String {
    let mut name = run.name.clone();
    for (node, place) in plan.nodes.iter().zip(places) {
        if place.train != run.train {
            name.push_str(&format!(", node `{}`: {}", node.id, place.name));
        }
    }
    name
}
