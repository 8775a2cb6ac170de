//! burn's wgpu backend (feature `wgpu`): which adapter `device: N` names, and how a run records it.
//!
//! cohort counts adapters the way a researcher counts GPUs: discrete GPUs first, then integrated,
//! virtual and other adapters (one of another type only where there is no GPU of these: burn's
//! selectors cannot reach it beside one), and software adapters (Mesa's lavapipe, which runs
//! Vulkan on the CPU) last; `device: N` is the N-th of that list, so `device: 0` is the fastest GPU where there
//! is one and lavapipe where there is none. The list is the one burn's runtime opens adapters from
//! when left to choose the graphics API (`WgpuBackend::Auto`, mirrored here): the first API of
//! Vulkan, DirectX 12 and OpenGL (Metal on macOS) that has a GPU, else the first with a software
//! adapter — so the adapter cohort names is the adapter burn computes on. Within a type, adapters
//! keep the driver's order, which is burn's `DiscreteGpu(i)` / `IntegratedGpu(i)` index.
//!
//! cohort's own kernels (`crate::kernels`) are flex's: on wgpu every layer runs burn's ops, as
//! CubeCL kernels compiled to WGSL at run time.

use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use burn::tensor::wgpu::wgpu;
use burn::tensor::{Device, DeviceKind};

use super::EngineError;

/// One adapter: the selector burn opens it with, and what the driver says of it.
#[derive(Clone, Debug)]
pub struct Adapter {
    /// burn's selector for this adapter.
    pub kind: DeviceKind,
    /// Name, type, driver and graphics API, as the driver reports them.
    pub info: wgpu::AdapterInfo,
}

impl Adapter {
    /// `NVIDIA H100 (discrete GPU; Vulkan, NVIDIA 550.54)`: what manifests and reports record.
    pub fn describe(&self) -> String {
        let i = &self.info;
        let kind = match i.device_type {
            wgpu::DeviceType::DiscreteGpu => "discrete GPU",
            wgpu::DeviceType::IntegratedGpu => "integrated GPU",
            wgpu::DeviceType::VirtualGpu => "virtual GPU",
            wgpu::DeviceType::Cpu => "software, on the CPU",
            wgpu::DeviceType::Other => "other adapter",
        };
        let driver = [i.driver.as_str(), i.driver_info.as_str()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" ");
        let driver = if driver.is_empty() { String::new() } else { format!(", {driver}") };
        format!("{} ({kind}; {:?}{driver})", i.name, i.backend)
    }
}

/// The order of adapter types in cohort's count (GPUs first, software last).
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// The graphics APIs burn's `Auto` tries, best first.
fn chain() -> Vec<wgpu::Backend> {
    if cfg!(target_os = "macos") { vec![wgpu::Backend::Metal] } else { vec![wgpu::Backend::Vulkan, wgpu::Backend::Dx12, wgpu::Backend::Gl] }
}

/// Runs a future that completes without waiting on anything outside it (adapter enumeration on
/// native targets) to its end on this thread.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

/// The adapters one graphics API offers here, in the driver's order.
fn probe(api: wgpu::Backend) -> Vec<wgpu::AdapterInfo> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor { backends: api.into(), ..wgpu::InstanceDescriptor::new_without_display_handle() });
    block_on(instance.enumerate_adapters(api.into())).iter().map(wgpu::Adapter::get_info).collect()
}

/// Every adapter `device: N` can name, in cohort's order (module docs); empty where no graphics
/// API has one (no Vulkan driver installed). Listed once per process: the Vulkan loader crashes
/// when instances come and go on several threads at once (burn's runtime guards its own), and
/// the adapters do not change while a process runs.
pub fn adapters() -> Vec<Adapter> {
    static ADAPTERS: OnceLock<Vec<Adapter>> = OnceLock::new();
    ADAPTERS.get_or_init(list_adapters).clone()
}

/// [`adapters`], asked of the graphics APIs.
fn list_adapters() -> Vec<Adapter> {
    let mut software_only = None;
    let mut found = None;
    for api in chain() {
        let list = probe(api);
        if list.iter().any(|a| a.device_type != wgpu::DeviceType::Cpu) {
            found = Some(list);
            break;
        }
        if software_only.is_none() && !list.is_empty() {
            software_only = Some(list);
        }
    }
    let list = found.or(software_only).unwrap_or_default();
    // burn's index counts adapters of one type in the driver's order
    let mut seen = [0usize; 5];
    let mut adapters: Vec<Adapter> = list
        .into_iter()
        .map(|info| {
            let r = rank(info.device_type);
            let i = seen[r as usize];
            seen[r as usize] += 1;
            let kind = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu(i),
                wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu(i),
                wgpu::DeviceType::VirtualGpu => DeviceKind::VirtualGpu(i),
                // burn's selector has no `Other(i)`; its default picks the best adapter, which is
                // this one only where no indexed GPU competes (kept only then, below)
                wgpu::DeviceType::Other => DeviceKind::DefaultDevice,
                // burn opens the first software adapter for `Cpu`
                wgpu::DeviceType::Cpu => DeviceKind::Cpu,
            };
            Adapter { kind, info }
        })
        .collect();
    adapters.sort_by_key(|a| rank(a.info.device_type)); // stable: the driver's order within a type
    // burn's selectors without an index reach only the first adapter of their type, and its
    // default one reaches an `Other` adapter only where no indexed GPU is preferred over it
    let indexed = adapters.iter().any(|a| matches!(a.kind, DeviceKind::DiscreteGpu(_) | DeviceKind::IntegratedGpu(_) | DeviceKind::VirtualGpu(_)));
    let mut unindexed = Vec::new();
    adapters.retain(|a| match a.kind {
        DeviceKind::DefaultDevice if indexed => false,
        DeviceKind::Cpu | DeviceKind::DefaultDevice => {
            let first = !unindexed.contains(&a.kind);
            unindexed.push(a.kind.clone());
            first
        }
        _ => true,
    });
    adapters
}

/// The wgpu device `index` (module docs) and its description, or an error listing what there is.
pub fn device(index: usize) -> Result<(Device, String), EngineError> {
    let adapters = adapters();
    match adapters.get(index) {
        Some(a) => Ok((Device::wgpu(a.kind.clone()), format!("wgpu:{index} {}", a.describe()))),
        None if adapters.is_empty() => Err(EngineError::NoAdapter),
        None => Err(EngineError::AdapterIndex {
            index,
            adapters: adapters.iter().enumerate().map(|(i, a)| format!("{i}: {}", a.describe())).collect::<Vec<_>>().join("; "),
        }),
    }
}
