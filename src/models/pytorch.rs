//! Weights from and to PyTorch: a PyTorch `state_dict` (`.pth`/`.pt`, read without Python by
//! burn's store, or `.safetensors`) loaded into a zoo network, and a trained network written as
//! a `.safetensors` `state_dict` that `model.load_state_dict(safetensors.torch.load_file(..))`
//! accepts in PyTorch.
//!
//! Names follow the reference PyTorch definition of each architecture (RepDistiller's
//! `models/`, vendored in `scripts/reference_models/repdistiller/`): every architecture that has
//! one maps the path of each of its burn modules to the reference module's name
//! ([`Network::torch_module`]); the tensor names inside a module (`weight`, `bias`,
//! `running_mean`, `running_var`) are PyTorch's, batch norm's `gamma`/`beta` and a linear
//! layer's transposed weight are converted by burn's PyTorch adapters. `num_batches_tracked`
//! (a PyTorch counter that only matters for batch norm without momentum) is ignored on loading
//! and written as 0.
//!
//! Batch-norm running statistics come along both ways, so a loaded network in eval mode
//! computes what the PyTorch network computes in `model.eval()` (tests/it/pytorch.rs: to 1e-4).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use burn::store::{ApplyError, BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};

use super::Network;

/// How a weights file is read, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightsFormat {
    /// cohort's own checkpoints (`.bpk`, burn's burnpack).
    Burnpack,
    /// A PyTorch `state_dict` saved with `torch.save` (`.pth`, `.pt`).
    Pytorch,
    /// A `state_dict` in safetensors (`.safetensors`) with PyTorch's names.
    Safetensors,
}

impl WeightsFormat {
    /// The format of `path`, by its extension.
    pub fn of(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("pth" | "pt") => WeightsFormat::Pytorch,
            Some("safetensors") => WeightsFormat::Safetensors,
            _ => WeightsFormat::Burnpack,
        }
    }
}

/// The suffix of PyTorch's batch-norm batch counter.
const BATCHES_TRACKED: &str = "num_batches_tracked";

/// A prefix no reference name starts with: mapped names are marked with it until every rule has
/// run, so that one rule's output is never matched by another (burn's remapper applies its rules
/// one after the other), then it is removed.
const MARK: &str = "@";

impl Network {
    /// The reference PyTorch definition whose names the network's weights take, e.g.
    /// `RepDistiller's models/resnet.py`; `None` for architectures without one.
    pub fn reference(&self) -> Option<&'static str> {
        match self {
            Network::ResNet(_) => Some("RepDistiller's models/resnet.py"),
            Network::Wrn(_) => Some("RepDistiller's models/wrn.py"),
            Network::Vgg(_) => Some("RepDistiller's models/vgg.py"),
            Network::MobileNetV2(_) => Some("RepDistiller's models/mobilenetv2.py"),
            Network::ShuffleNetV1(_) => Some("RepDistiller's models/ShuffleNetv1.py"),
            Network::ShuffleNetV2(_) => Some("RepDistiller's models/ShuffleNetv2.py"),
            _ => None,
        }
    }

    /// The name in the reference PyTorch definition of the module at burn path `module` (e.g.
    /// `stages.0.1.conv1` → `layer1.1.conv1`); `None` where the architecture has no reference.
    pub fn torch_module(&self, module: &str) -> Option<String> {
        match self {
            Network::ResNet(_) => super::resnet::ResNet::torch_module(module),
            Network::Wrn(_) => super::wrn::Wrn::torch_module(module),
            Network::Vgg(_) => super::vgg::Vgg::torch_module(module),
            Network::MobileNetV2(_) => super::mobilenet::MobileNetV2::torch_module(module),
            Network::ShuffleNetV1(_) => super::shufflenet::ShuffleNetV1::torch_module(module),
            Network::ShuffleNetV2(_) => super::shufflenet::ShuffleNetV2::torch_module(module),
            _ => None,
        }
    }

    /// The variant's name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Network::Mlp(_) => "Mlp",
            Network::Cnn1d(_) => "Cnn1d",
            Network::Cnn2d(_) => "Cnn2d",
            Network::ResNet(_) => "ResNet",
            Network::Hydra(_) => "Hydra",
            Network::Branched(_) => "Branched",
            Network::Wrn(_) => "Wrn",
            Network::Vgg(_) => "Vgg",
            Network::MobileNetV2(_) => "MobileNetV2",
            Network::ShuffleNetV1(_) => "ShuffleNetV1",
            Network::ShuffleNetV2(_) => "ShuffleNetV2",
        }
    }

    /// burn module path → reference module name, for every module holding tensors.
    fn module_names(&self) -> Result<Vec<(String, String)>, String> {
        let Some(reference) = self.reference() else {
            return Err(format!(
                "`{}` has no reference PyTorch definition to take names from; PyTorch weights load into the CIFAR zoo (ResNet, Wrn, Vgg, MobileNetV2, ShuffleNetV1, ShuffleNetV2: RepDistiller's models)",
                self.kind()
            ));
        };
        let modules: BTreeSet<String> =
            self.collect(None, None, true).into_iter().filter_map(|t| t.name.rsplit_once('.').map(|(m, _)| m.to_string())).collect();
        modules
            .into_iter()
            .map(|m| self.torch_module(&m).map(|t| (m.clone(), t)).ok_or_else(|| format!("no name in {reference} for module `{m}` (a bug: please report it)")))
            .collect()
    }

    /// Loads a PyTorch `state_dict` (`.pth`/`.pt` or `.safetensors`) into this network; every
    /// missing, unexpected or misshapen tensor is listed. A `.pth` training checkpoint whose
    /// `state_dict` sits under `model`, `state_dict`, `model_state_dict` or `net` is read too.
    pub fn load_torch(mut self, path: &Path) -> Result<Self, Vec<String>> {
        let names = self.module_names().map_err(|e| vec![e])?;
        let torch_to_burn = remapper(names.iter().map(|(b, t)| (t.as_str(), b.as_str())));
        let result = match WeightsFormat::of(path) {
            WeightsFormat::Safetensors => {
                let mut store = SafetensorsStore::from_file(path)
                    .with_from_adapter(PyTorchToBurnAdapter)
                    .skip_enum_variants(true)
                    .map_indices_contiguous(false)
                    .allow_partial(true)
                    .validate(false)
                    .remap(torch_to_burn);
                self.load_from(&mut store).map_err(|e| vec![e.to_string()])?
            }
            _ => {
                // a bare state_dict, or a training checkpoint that nests it under a key
                // (RepDistiller's and torchdistill's teachers: {"model": state_dict, "epoch": ..})
                let mut first = None;
                for key in [None, Some("model"), Some("state_dict"), Some("model_state_dict"), Some("net")] {
                    let mut store = PytorchStore::from_file(path)
                        .skip_enum_variants(true)
                        .map_indices_contiguous(false)
                        .allow_partial(true)
                        .validate(false)
                        .remap(torch_to_burn.clone());
                    if let Some(k) = key {
                        store = store.with_top_level_key(k);
                    }
                    match self.load_from(&mut store) {
                        Ok(r) if !r.applied.is_empty() => {
                            first = Some(r);
                            break;
                        }
                        Ok(r) if key.is_none() => first = Some(r),
                        Err(e) if key.is_none() => return Err(vec![e.to_string()]),
                        _ => {}
                    }
                }
                first.expect("the bare state_dict's attempt either returns or is kept")
            }
        };
        let burn_to_torch: HashMap<&str, &str> = names.iter().map(|(b, t)| (b.as_str(), t.as_str())).collect();
        let torch_name = |burn: &str| match burn.rsplit_once('.') {
            Some((m, leaf)) => {
                let leaf = match leaf {
                    "gamma" => "weight",
                    "beta" => "bias",
                    l => l,
                };
                format!("{}.{leaf}", burn_to_torch.get(m).copied().unwrap_or(m))
            }
            None => burn.to_string(),
        };
        let mut problems: Vec<String> = Vec::new();
        problems.extend(result.missing.iter().map(|(p, _)| format!("missing: `{}` (not in the file)", torch_name(p))));
        problems.extend(result.unused.iter().filter(|k| !k.ends_with(BATCHES_TRACKED)).map(|k| format!("unexpected: `{k}` (no such tensor in this network)")));
        // shapes in PyTorch's layout: a linear layer's weight is [out, in] there, [in, out] in burn
        let torch_shape = |path: &str, s: &burn::tensor::Shape| {
            let mut d: Vec<usize> = s.iter().copied().collect();
            if path.ends_with(".weight") && d.len() == 2 {
                d.reverse();
            }
            d
        };
        problems.extend(result.errors.iter().map(|e| match e {
            ApplyError::ShapeMismatch { path, expected, found } => {
                format!("wrong shape: `{}` is {:?} in the file, the network's is {:?}", torch_name(path), torch_shape(path, found), torch_shape(path, expected))
            }
            ApplyError::DTypeMismatch { path, expected, found } => {
                format!("wrong type: `{}` is {found:?} in the file, the network's is {expected:?}", torch_name(path))
            }
            other => other.to_string(),
        }));
        if problems.is_empty() { Ok(self) } else { Err(problems) }
    }

    /// Writes the network as a `.safetensors` `state_dict` with the reference PyTorch names
    /// (float32; `num_batches_tracked` = 0 for every batch norm).
    pub fn save_torch_safetensors(&self, path: &Path) -> Result<Vec<(String, Vec<usize>)>, String> {
        self.save_torch_safetensors_with(path, HashMap::new())
    }

    /// [`Network::save_torch_safetensors`] with `metadata` in the file's header (beside
    /// `format: pt`; e.g. the cohort model and the number of classes, which
    /// scripts/load-in-pytorch.py reads).
    pub fn save_torch_safetensors_with(&self, path: &Path, mut metadata: HashMap<String, String>) -> Result<Vec<(String, Vec<usize>)>, String> {
        let names: HashMap<String, String> = self.module_names()?.into_iter().collect();
        let tensors = self.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true);
        let mut out: Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)> = Vec::new();
        let mut norms = BTreeSet::new();
        for t in &tensors {
            let (module, leaf) = t.name.rsplit_once('.').ok_or_else(|| format!("tensor `{}` outside any module", t.name))?;
            let torch = names.get(module).ok_or_else(|| format!("no reference name for `{module}`"))?;
            if leaf == "running_mean" {
                norms.insert(torch.clone());
            }
            let bytes = t.to_bytes().map_err(|e| format!("{}: {e:?}", t.name))?;
            out.push((format!("{torch}.{leaf}"), t.shape.to_vec(), bytes.to_vec(), safetensors::Dtype::F32));
        }
        for n in norms {
            out.push((format!("{n}.{BATCHES_TRACKED}"), Vec::new(), 0i64.to_le_bytes().to_vec(), safetensors::Dtype::I64));
        }
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = out
            .iter()
            .map(|(n, shape, bytes, dtype)| {
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes).map(|v| (n.clone(), v)).map_err(|e| format!("{n}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        metadata.insert("format".to_string(), "pt".to_string());
        if let Some(r) = self.reference() {
            metadata.insert("reference".to_string(), r.to_string());
        }
        let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| e.to_string())?;
        crate::fsutil::atomic_write_bytes(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(out.into_iter().map(|(n, s, ..)| (n, s)).collect())
    }
}

/// A remapper renaming each tensor of module `from` to module `to`, keeping the tensor's own
/// name, with no rule applying to another's output.
fn remapper<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> KeyRemapper {
    let mut rules: Vec<(String, String)> = pairs.map(|(from, to)| (format!("^{}\\.([^.]+)$", regex_escape(from)), format!("{MARK}{to}.$1"))).collect();
    rules.push((format!("^{MARK}"), String::new()));
    KeyRemapper::from_patterns(rules).expect("escaped names are valid patterns")
}

/// `s` with regex metacharacters escaped (module names hold letters, digits, `_` and `.`).
fn regex_escape(s: &str) -> String {
    s.chars().flat_map(|c| if c.is_ascii_alphanumeric() || c == '_' { vec![c] } else { vec!['\\', c] }).collect()
}
