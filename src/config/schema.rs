//! The experiment file schema: plain serde types, `deny_unknown_fields`, explicit defaults.
//!
//! A file is parsed into an [`ExperimentSpec`] (this module), then checked and resolved into a
//! [`crate::config::Plan`] (`resolve.rs`). Every field is documented in `experiments/README.md`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::spec::DataSpec;
use crate::values::*;

pub use super::gate::{Gate, Progress};
pub use crate::data::subset::Subset;
pub use crate::losses::{Combine, LossSpec};
pub use crate::models::ModelSpec;

/// One experiment file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Experiment")]
pub struct ExperimentSpec {
    /// Name of the experiment: results go to `<output>/<name>/<run-id>/`.
    pub name: ExperimentName,
    /// Free text shown by `cohort run` and stored in the manifest.
    #[serde(default)]
    pub description: String,
    /// Data set, split and augmentation shared by every node.
    pub data: DataSpec,
    /// The networks taking part.
    pub nodes: Vec<NodeSpec>,
    /// The loss terms: who learns from what.
    #[serde(default)]
    pub edges: Vec<EdgeSpec>,
    /// Stages run in order; empty = one stage training every non-frozen node.
    #[serde(default)]
    pub stages: Vec<StageSpec>,
    /// Epochs, batch size, optimiser, schedule, update order and seeds.
    #[serde(default)]
    pub training: TrainingSpec,
    /// Root folder of the results.
    #[serde(default = "default_output")]
    pub output: PathBuf,
}

fn default_output() -> PathBuf {
    PathBuf::from("results")
}

/// One network of the cohort.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Node")]
pub struct NodeSpec {
    /// Unique id used by edges and stages, in result files and in charts.
    pub id: NodeId,
    /// Architecture.
    pub model: ModelSpec,
    /// A frozen node never trains: it needs `checkpoint` and is evaluated in eval mode.
    #[serde(default)]
    pub frozen: bool,
    /// Where it teaches without training (frozen, or in a stage that does not train it), it runs
    /// in training mode: batch norm with each batch's statistics, as mdistiller runs its teacher
    /// under OFD (`teacher.train()`); its running statistics move in that copy alone, never in its
    /// checkpoint or its own evaluation. Default: eval mode.
    #[serde(default, skip_serializing_if = "crate::values::is_false")]
    pub batch_stats: bool,
    /// Weights to start from: a checkpoint written by an earlier run (`.bpk`), or a PyTorch
    /// `state_dict` of the architecture's reference definition (`.pth`, `.pt`, `.safetensors`;
    /// docs/pytorch.md).
    #[serde(default)]
    pub checkpoint: Option<PathBuf>,
    /// Optimiser of this node; default `training.optimizer`.
    #[serde(default)]
    pub optimizer: Option<OptimizerSpec>,
    /// Learning-rate schedule of this node; default `training.schedule`.
    #[serde(default)]
    pub schedule: Option<ScheduleSpec>,
    /// Train this node only on part of the training split (a domain expert, a transfer set
    /// without some classes); default: every sample. Evaluation always uses the full splits.
    #[serde(default)]
    pub train_on: Option<Subset>,
    /// Backend of this node; default `training.backend` (e.g. one node on the CPU beside GPU
    /// peers). Outputs cross between devices as detached values.
    #[serde(default)]
    pub backend: Option<BackendChoice>,
    /// GPU index of this node (one peer per GPU); default `training.device`. CPU backends have
    /// one device, 0.
    #[serde(default)]
    pub device: Option<usize>,
    /// SwitOKD (Qian et al., ECCV 2022): this node, a teacher trained online with the student
    /// named here, pauses its own optimiser step ("expert mode") in every step where the gap
    /// between them is too large for the student (see `docs/losses.md`); otherwise both train
    /// ("learning mode"). The fraction of expert-mode steps is logged per epoch.
    #[serde(default)]
    pub switch_with: Option<NodeId>,
}

/// A loss term of the file. `Edge` is the general form; `Mutual` is shorthand for a DML cohort.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Edge")]
pub enum EdgeSpec {
    /// `weight · loss(sources → to)`, added to the loss of node `to`.
    Edge {
        /// Source nodes (empty for `CrossEntropy`, which uses the labels).
        #[serde(default)]
        from: Vec<NodeId>,
        /// The node whose loss this term joins.
        to: NodeId,
        /// Which loss.
        loss: LossSpec,
        /// Multiplier of the term (for Hinton's KD: α on `CrossEntropy`, 1 − α on `SoftTarget`).
        #[serde(default = "unit_weight")]
        weight: Weight,
        /// Sigmoid ramp-up of the weight over the first N epochs, w·exp(−5(1 − e/N)²) (ONE, Lan
        /// et al. 2018). 0 = constant weight.
        #[serde(default)]
        ramp_up_epochs: usize,
        /// Knowledge Transfer Graph gate (Minami et al., ACCV 2020) multiplying the weight as a
        /// function of training progress; default `Through` (1).
        #[serde(default)]
        gate: Gate,
        /// For a `Hydra` target: the head (1..=M) this term trains; default the head mean.
        #[serde(default)]
        head: Option<usize>,
        /// Learn from head m (1..=M) of every source instead of its output (the sources are
        /// multi-head nodes): PCL's peer mean teacher, where branch k learns from branch j of the
        /// temporal mean network (`Edge(from: ["mean"], from_head: 2, to: "pcl", head: 1, …)`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_head: Option<usize>,
        /// Only in these stages (e.g. FitNets' hint-only first stage); default every stage in
        /// which `to` trains.
        #[serde(default)]
        stages: Vec<StageName>,
    },
    /// Deep Mutual Learning among `peers`: for each peer k, adds
    /// `weight · (1/(K−1)) Σ_{l≠k} T²·KL(p_l^T ‖ p_k^T)` (same as K `MutualKl` edges).
    /// Cross-entropy on the labels is not implied: add `Edge(to: …, loss: CrossEntropy)` per peer.
    Mutual {
        /// The K ≥ 2 peers.
        peers: Vec<NodeId>,
        /// Softmax temperature (1 in the DML paper).
        #[serde(default = "unit_temperature")]
        temperature: Temperature,
        /// Multiplier of the KL term.
        #[serde(default = "unit_weight")]
        weight: Weight,
    },
}

/// A stage trains some nodes while the others act as fixed sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Stage")]
pub struct StageSpec {
    /// Name shown in logs and used in result files.
    pub name: StageName,
    /// Nodes trained in this stage (the order is the sequential update order).
    pub train: Vec<NodeId>,
    /// Epochs of this stage; default `training.epochs`.
    #[serde(default)]
    pub epochs: Option<Epochs>,
    /// Update order of this stage; default `training.update`.
    #[serde(default)]
    pub update: Option<UpdateOrder>,
    /// Born-again generations (Furlanello et al., ICML 2018): the stage trains its one node, then
    /// `K − 1` fresh copies of it in turn (`<id>-gen2` … `<id>-gen<K>`, stages `<name>-gen<g>`),
    /// each with the stage's terms and taught by the generation before it in place of the
    /// terms' source. Default 1 (the node alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generations: Option<usize>,
}

/// Training settings shared by all stages and nodes unless overridden.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Training")]
pub struct TrainingSpec {
    /// Epochs per stage.
    pub epochs: Epochs,
    /// Mini-batch size (every node sees the same batch).
    pub batch_size: BatchSize,
    /// Default optimiser of every trainable node.
    pub optimizer: OptimizerSpec,
    /// Default learning-rate schedule.
    pub schedule: ScheduleSpec,
    /// How peers trained together update within a step.
    pub update: UpdateOrder,
    /// Whether the nodes of a stage compute their steps on parallel threads.
    pub concurrency: Concurrency,
    /// One run per seed (initialisation, shuffling, dropout, augmentation, hold-out).
    pub seeds: Vec<u64>,
    /// Tensor backend (`cohort run --backend` overrides); must be compiled in.
    pub backend: BackendChoice,
    /// Device index for GPU backends (`cohort run --device` overrides).
    pub device: usize,
}

/// Tensor backends. Which ones a binary has depends on its cargo features (`flex` by default;
/// `ndarray`, `tch`, `cuda`, `wgpu` on request).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendChoice {
    /// The first compiled-in of flex, ndarray, tch, cuda, wgpu.
    #[default]
    Auto,
    /// burn-flex (pure Rust CPU, the default).
    Flex,
    /// burn-ndarray (CPU).
    Ndarray,
    /// LibTorch on CPU (burn-tch).
    Tch,
    /// NVIDIA GPU (burn-cuda).
    Cuda,
    /// Any GPU with a Vulkan driver, or Mesa's software Vulkan on a CPU (burn-wgpu); `device: N`
    /// is the N-th adapter, discrete GPUs first (docs/gpu.md).
    Wgpu,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "flex" => Ok(Self::Flex),
            "ndarray" => Ok(Self::Ndarray),
            "tch" | "libtorch" => Ok(Self::Tch),
            "cuda" => Ok(Self::Cuda),
            "wgpu" => Ok(Self::Wgpu),
            _ => Err(format!("unknown backend `{s}`: auto, flex, ndarray, tch, cuda or wgpu")),
        }
    }
}

/// Execution of the nodes trained together (results differ only by floating-point rounding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Concurrency {
    /// `Threads` when the stage trains two or more nodes with simultaneous updates and more than
    /// one thread is available, else `Serial`.
    #[default]
    Auto,
    /// Each node steps on its own thread with its own share of the cores (a single-threaded pool
    /// per node on 2 cores); the exchange of outputs is a barrier between forward and backward.
    Threads,
    /// Nodes step one after another, each using all threads for its operations.
    Serial,
}

impl Default for TrainingSpec {
    fn default() -> Self {
        Self {
            epochs: Epochs::new(10).expect("valid"),
            batch_size: BatchSize::new(128).expect("valid"),
            optimizer: OptimizerSpec::default(),
            schedule: ScheduleSpec::default(),
            update: UpdateOrder::default(),
            concurrency: Concurrency::default(),
            seeds: vec![0],
            backend: BackendChoice::default(),
            device: 0,
        }
    }
}

/// DML update orders (`docs/losses.md`, "Update orders").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateOrder {
    /// All nodes compute their losses from the same pre-step outputs, then all step.
    #[default]
    Simultaneous,
    /// Nodes step one after another in the stage's `train` order; each later node sees the
    /// refreshed outputs of the nodes that stepped before it (the DML paper's algorithm).
    Sequential,
}

/// Optimisers. Defaults are PyTorch's (burn's own differ: its momentum dampening defaults to 0.1
/// and Adam's ε to 1e-5; cohort sets both explicitly).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Optimizer")]
pub enum OptimizerSpec {
    /// SGD with optional (Nesterov) momentum and L2 weight decay, as `torch.optim.SGD`.
    Sgd {
        /// Learning rate.
        lr: LearningRate,
        /// Momentum (0 = plain SGD).
        #[serde(default = "zero")]
        momentum: NonNegative,
        /// Dampening of the momentum (PyTorch's default 0; burn's is 0.1).
        #[serde(default = "zero")]
        dampening: NonNegative,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
        /// L2 penalty added to the gradient.
        #[serde(default = "zero")]
        weight_decay: NonNegative,
    },
    /// Adam (Kingma & Ba 2015) as `torch.optim.Adam`: β = (0.9, 0.999), ε = 1e-8 by default.
    Adam {
        /// Learning rate.
        lr: LearningRate,
        /// β1.
        #[serde(default = "beta1")]
        beta1: Fraction,
        /// β2.
        #[serde(default = "beta2")]
        beta2: Fraction,
        /// ε (PyTorch's default 1e-8; burn's is 1e-5).
        #[serde(default = "epsilon")]
        epsilon: NonNegative,
        /// L2 penalty added to the gradient (coupled, as `torch.optim.Adam`).
        #[serde(default = "zero")]
        weight_decay: NonNegative,
    },
}

fn zero() -> NonNegative {
    NonNegative::new(0.0).expect("valid")
}
fn beta1() -> Fraction {
    Fraction::new(0.9).expect("valid")
}
fn beta2() -> Fraction {
    Fraction::new(0.999).expect("valid")
}
fn epsilon() -> NonNegative {
    NonNegative::new(1e-8).expect("valid")
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        OptimizerSpec::Adam { lr: LearningRate::new(1e-3).expect("valid"), beta1: beta1(), beta2: beta2(), epsilon: epsilon(), weight_decay: zero() }
    }
}

impl std::fmt::Display for OptimizerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptimizerSpec::Sgd { lr, momentum, dampening, nesterov, weight_decay } => write!(
                f,
                "Sgd(lr {lr}, momentum {momentum}{}{}, weight decay {weight_decay})",
                if dampening.get() > 0.0 { format!(", dampening {dampening}") } else { String::new() },
                if *nesterov { ", nesterov" } else { "" }
            ),
            OptimizerSpec::Adam { lr, beta1, beta2, epsilon, weight_decay } => {
                write!(f, "Adam(lr {lr}, betas ({beta1}, {beta2}), eps {:e}, weight decay {weight_decay})", epsilon.get())
            }
        }
    }
}

/// Learning-rate schedule: optional linear warm-up, then a decay rule (per epoch).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Schedule")]
pub struct ScheduleSpec {
    /// Decay after warm-up.
    pub decay: Decay,
    /// Linear warm-up from lr/warmup_epochs to lr over this many epochs.
    pub warmup_epochs: usize,
}

/// Decay rules.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Decay {
    /// Constant learning rate.
    #[default]
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Period in epochs.
        every: Epochs,
        /// Factor.
        gamma: NonNegative,
    },
    /// Multiply by `gamma` at each listed epoch.
    MultiStep {
        /// Epochs (0-based) at which the rate drops.
        milestones: Vec<usize>,
        /// Factor.
        gamma: NonNegative,
    },
    /// Cosine annealing from lr to `min_lr` over the stage.
    Cosine {
        /// Final learning rate.
        #[serde(default)]
        min_lr: Option<NonNegative>,
    },
}
