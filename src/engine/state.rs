//! A run's networks and optimisers on disk: initial weights (fresh or from a checkpoint), the
//! resumable state of the last complete epoch, and the final checkpoints. Paths come from
//! [`RunDir`] / [`StateDir`]; files are written whole (bytes first, then an atomic rename), so a
//! full disk is an I/O error that names the file and leaves the previous state intact.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::trainee::Trainee;
use super::{EngineError, Placement, RUN_LOCK, optim, step};
use crate::config::{ModelSpec, Plan};
use crate::fsutil::atomic_write_bytes;
use crate::models::Network;
use crate::models::pytorch::WeightsFormat;
use crate::random::{Stream, stream_seed};
use crate::results::{RunDir, StateDir};

/// `state/progress.json`: the last complete epoch.
#[derive(Serialize, Deserialize)]
struct Progress {
    stage: usize,
    epochs_done: usize,
}

/// Where a resumed run continues: the stage, and the epochs of it already done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// Stage index.
    pub stage: usize,
    /// Epochs of that stage already done.
    pub epochs_done: usize,
}

/// Writes `module`'s parameters to `path` (burnpack), whole or not at all.
fn save_module<M: Module>(module: M, path: &Path) -> Result<(), EngineError> {
    let bytes = module.into_record().into_bytes().map_err(|e| EngineError::Serialise { path: path.into(), problem: e.to_string() })?;
    atomic_write_bytes(path, &bytes).map_err(|e| EngineError::io(path, e))
}

/// `module` with the parameters of the burnpack file `path`.
fn load_module<M: Module>(module: M, path: &Path) -> Result<M, EngineError> {
    module.try_load_file(path).map_err(|e| EngineError::Checkpoint { path: path.into(), problem: e.to_string() })
}

/// `net` (a network of `model`) with the weights of node `node`'s `checkpoint:` file: a
/// checkpoint of a run (`.bpk`) or a PyTorch `state_dict` (`.pth`, `.pt`, `.safetensors`).
fn initial_weights(net: Network, node: &str, model: &ModelSpec, path: &Path) -> Result<Network, EngineError> {
    match WeightsFormat::of(path) {
        WeightsFormat::Burnpack => {
            net.try_load_file(path).map_err(|e| EngineError::InitialCheckpoint { node: node.into(), path: path.into(), problem: e.to_string() })
        }
        _ => net.load_torch(path).map_err(|problems| EngineError::TorchWeights { node: node.into(), path: path.into(), model: model.to_string(), problems }),
    }
}

/// The weights a node of a run starts from (its `checkpoint:` file), in a model of `spec`: what
/// a frozen node of the run computed with.
pub fn load_initial(spec: &ModelSpec, input_shape: &[usize], classes: usize, node: &str, path: &Path, device: &Device) -> Result<Network, EngineError> {
    let _guard = RUN_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    initial_weights(Network::init(spec, input_shape, classes, device), node, spec, path)
}

/// Loads a node checkpoint written by a run into a model of `spec` (for inspection and export).
/// Takes the run lock, since building the model draws from the backend's global generator.
pub fn load_checkpoint(spec: &ModelSpec, input_shape: &[usize], classes: usize, path: &Path, device: &Device) -> Result<Network, EngineError> {
    let _guard = RUN_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    load_module(Network::init(spec, input_shape, classes, device), path)
}

/// Every node's network (its checkpoint, or fresh weights from its own seed stream) with the
/// adapters of its hint terms, drawn after the network; `None` for recorded sources. Weights
/// are drawn on `device` (the run's, or flex for a run on wgpu: [`super::device::init_device`]),
/// then moved to the node's own placement, so that where a node computes does not change its
/// initial weights. `samples`: the training split's size (CRD's memory bank).
pub fn init_models(plan: &Plan, seed: u64, samples: usize, device: &Device, places: &[Placement]) -> Result<Vec<Option<Trainee>>, EngineError> {
    let mut models = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if n.model.is_recorded() || n.ema.is_some() {
                return Ok(None); // outputs from a file, no network; an average is filled in below
            }
            device.seed(stream_seed(seed, Stream::Init, i) as u64);
            let mut net = Network::init(&n.model, &plan.input_shape, plan.classes, device);
            if let Some(path) = &n.checkpoint {
                net = initial_weights(net, &n.id, &n.model, path)?;
            }
            let slots: Vec<crate::losses::AdapterSpec> = step::adapter_slots(plan, i, samples).into_iter().map(|(_, a)| a).collect();
            let t = Trainee::new(net, &slots, device);
            // `fork`, not `to_device`: the moved parameters are leaves of their own graph
            Ok(Some(if places[i].train == *device { t } else { t.fork(&places[i].train) }))
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    // an `Ema` node starts as a copy of the network it tracks, on its own placement
    for (i, n) in plan.nodes.iter().enumerate() {
        if let Some(e) = n.ema {
            let net = models[e.of].as_ref().expect("an Ema node tracks a network").net.clone();
            models[i] = Some(Trainee { net, adapters: Vec::new() }.fork(&places[i].train));
        }
    }
    Ok(models)
}

/// Writes every trained node's network, adapters and optimiser, and the progress, as the state
/// of `stage` after `epochs_done` epochs: into `state.tmp`, then swapped in for `state` (the
/// old state is kept as `state.old` until the new one is in place).
pub fn save(dir: &RunDir, plan: &Plan, at: Resume, models: &[Option<Trainee>], optimizers: &HashMap<usize, ModuleOptimizer>) -> Result<(), EngineError> {
    let (live, next, previous) = (dir.state(), dir.state_next(), dir.state_previous());
    let _ = std::fs::remove_dir_all(&next.root);
    std::fs::create_dir_all(&next.root).map_err(|e| EngineError::io(&next.root, e))?;
    for (n, node) in plan.nodes.iter().enumerate() {
        if !node.has_state() {
            continue;
        }
        // the network as a plain checkpoint; the hint adapters (if any) beside it
        let Trainee { net, adapters } = models[n].clone().expect("trained nodes have a model");
        save_module(net, &next.network(&node.id))?;
        if !adapters.is_empty() {
            save_module(adapters, &next.adapters(&node.id))?;
        }
        if let Some(opt) = optimizers.get(&n) {
            let path = next.optimizer(&node.id);
            let bytes = opt.into_bytes().map_err(|e| EngineError::Serialise { path: path.clone(), problem: e.to_string() })?;
            atomic_write_bytes(&path, &bytes).map_err(|e| EngineError::io(&path, e))?;
        }
    }
    let progress = serde_json::to_string(&Progress { stage: at.stage, epochs_done: at.epochs_done }).expect("serialises");
    atomic_write_bytes(&next.progress(), progress.as_bytes()).map_err(|e| EngineError::io(next.progress(), e))?;
    // swap in the new state: state -> state.old, state.tmp -> state, drop state.old
    let _ = std::fs::remove_dir_all(&previous.root);
    if live.exists() {
        std::fs::rename(&live.root, &previous.root).map_err(|e| EngineError::io(&live.root, e))?;
    }
    std::fs::rename(&next.root, &live.root).map_err(|e| EngineError::io(&live.root, e))?;
    let _ = std::fs::remove_dir_all(&previous.root);
    Ok(())
}

/// Loads the resumable state into `models`, if there is one, and says where to continue.
pub fn load(dir: &RunDir, plan: &Plan, models: &mut [Option<Trainee>]) -> Result<Option<Resume>, EngineError> {
    // a crash between the two renames of `save` leaves only state.old
    let (live, previous) = (dir.state(), dir.state_previous());
    if !live.exists() && previous.exists() {
        std::fs::rename(&previous.root, &live.root).map_err(|e| EngineError::io(&previous.root, e))?;
    }
    let Ok(text) = std::fs::read_to_string(live.progress()) else { return Ok(None) };
    let p: Progress = serde_json::from_str(&text).map_err(|e| EngineError::Checkpoint { path: live.progress(), problem: e.to_string() })?;
    for (n, node) in plan.nodes.iter().enumerate() {
        if !node.has_state() {
            continue;
        }
        let Trainee { net, adapters } = models[n].take().expect("trained nodes have a model");
        let net = load_module(net, &live.network(&node.id))?;
        let adapters = if adapters.is_empty() { adapters } else { load_module(adapters, &live.adapters(&node.id))? };
        models[n] = Some(Trainee { net, adapters });
    }
    Ok(Some(Resume { stage: p.stage, epochs_done: p.epochs_done }))
}

/// The optimiser of each node trained in stage `s`: fresh, or, when the stage is resumed
/// after some epochs, with the state saved in `state`.
pub fn optimizers(plan: &Plan, s: usize, state: &StateDir, resumed: bool) -> Result<HashMap<usize, ModuleOptimizer>, EngineError> {
    let mut out = HashMap::new();
    for &n in &plan.stages[s].train {
        let mut opt = optim::build(&plan.nodes[n].optimizer);
        let saved = state.optimizer(&plan.nodes[n].id);
        if resumed && saved.exists() {
            opt = opt.load(&saved).map_err(|e| EngineError::Checkpoint { path: saved, problem: e.to_string() })?;
        }
        out.insert(n, opt);
    }
    Ok(out)
}

/// Writes the final checkpoint of each node trained in stage `s` and of the `Ema` nodes
/// tracking them (`checkpoints/<node>.bpk`).
pub fn save_checkpoints(dir: &RunDir, plan: &Plan, s: usize, models: &[Option<Trainee>]) -> Result<(), EngineError> {
    let train = &plan.stages[s].train;
    for n in train.iter().copied().chain(plan.emas_of(train).map(|(e, ..)| e)) {
        let path = dir.checkpoint(&plan.nodes[n].id);
        let folder = path.parent().expect("checkpoints/ is a folder");
        std::fs::create_dir_all(folder).map_err(|e| EngineError::io(folder, e))?;
        save_module(models[n].clone().expect("trained nodes have a model").net, &path)?;
    }
    Ok(())
}
