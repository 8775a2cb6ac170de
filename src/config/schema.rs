//! The experiment file schema: plain serde types, `deny_unknown_fields`, explicit defaults.
//!
//! A file is parsed into an [`ExperimentSpec`] (this module), then checked and resolved into a
//! [`crate::config::Plan`] (`resolve.rs`). Every field is documented in `experiments/README.md`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::values::*;
use crate::data::mnist1d::Mnist1dParams;

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

/// Data set and split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Data")]
pub struct DataSpec {
    /// Which data set.
    pub source: DataSource,
    /// Fraction of the training split held out as a validation split (seeded by the run's seed).
    #[serde(default = "zero_fraction")]
    pub validation: Fraction,
    /// Use only the first N training samples (after the seeded hold-out); for quick trials.
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Use only the first N test samples.
    #[serde(default)]
    pub test_limit: Option<usize>,
    /// Random shifts of each training input by up to this many pixels (positions for 1-D data),
    /// zero-filled, redrawn every epoch (Hinton et al. 2015 used 2 on MNIST). 0 = off.
    #[serde(default)]
    pub jitter: usize,
    /// How inputs are scaled.
    #[serde(default)]
    pub normalize: Normalization,
}

fn zero_fraction() -> Fraction {
    Fraction::new(0.0).expect("0 is a fraction")
}

/// The data sets cohort knows. Nothing is downloaded at run time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DataSource {
    /// MNIST-1D generated in-process (4000 train / 1000 test × 40 by default).
    Mnist1d(Mnist1dParams),
    /// MNIST from the IDX files fetched by `cohort data fetch mnist` (60000 / 10000 × 1×28×28).
    Mnist(FolderSpec),
    /// CIFAR-10 binary version (`data_batch_{1..5}.bin`, `test_batch.bin`; 50000 / 10000 × 3×32×32).
    Cifar10(FolderSpec),
    /// Rotated MNIST, DomainBed protocol, built from the fetched MNIST files: six domains rotated
    /// 0, 15, …, 75°; `test_domain` is held out as the test split, the other five train (each
    /// sample tagged with its domain, for `train_on: Subset(domains: …)` and `Lfme`).
    RotatedMnist(RotatedSpec),
}

/// Rotated MNIST's split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Rotated")]
pub struct RotatedSpec {
    /// Held-out domain, 0..=5 (angle 15·d degrees).
    pub test_domain: usize,
    /// Seed of the shuffle that deals the 70 000 images into domains (fixed across runs, so
    /// every seed of an experiment sees the same domains).
    #[serde(default)]
    pub shuffle_seed: u32,
    /// Folder of the MNIST IDX files; default `<data root>/mnist`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// Where a file-based data set lives.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Folder")]
pub struct FolderSpec {
    /// Folder holding the files; default `<data root>/<dataset>` where the data root is
    /// `--data-dir`, else `$COHORT_DATA`, else `data/`.
    pub dir: Option<PathBuf>,
}

/// Input scaling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Normalization {
    /// Per channel: subtract the training split's mean, divide by its std (MNIST-1D is already
    /// standardised by its generator, so this leaves it unchanged up to rounding).
    #[default]
    Standardize,
    /// Pixels in [0, 1] (bytes / 255); MNIST-1D values as generated.
    UnitRange,
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
    /// Weights to start from (a checkpoint written by an earlier run).
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
}

/// A part of the training split: the samples whose class and domain pass both filters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Subset")]
pub struct Subset {
    /// Keep only these classes (empty = all).
    pub classes: Vec<usize>,
    /// Drop these classes (Hinton et al. 2015's transfer set without 3s: `[3]`).
    pub exclude_classes: Vec<usize>,
    /// Keep only these domains (empty = all); needs a data set with domains (RotatedMnist).
    pub domains: Vec<usize>,
}

impl Subset {
    /// Whether a sample of class `label` from `domain` belongs to the subset.
    pub fn contains(&self, label: usize, domain: usize) -> bool {
        (self.classes.is_empty() || self.classes.contains(&label)) && !self.exclude_classes.contains(&label) && (self.domains.is_empty() || self.domains.contains(&domain))
    }
}

/// Architectures (a closed set: a typo is a parse error).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Model")]
pub enum ModelSpec {
    /// Fully connected ReLU network on flattened inputs: in → hidden… → classes.
    /// Taps: `hidden1`, `hidden2`, … (post-activation).
    Mlp {
        /// Hidden widths, e.g. `[1200, 1200]` (Hinton's teacher), `[800, 800]` (student).
        hidden: Vec<Width>,
        /// Dropout probability after every hidden layer.
        #[serde(default = "zero_fraction")]
        dropout: Fraction,
        /// Dropout probability on the inputs (Hinton et al. 2012 used 0.2 with 0.5 hidden).
        #[serde(default = "zero_fraction")]
        input_dropout: Fraction,
        /// Max-norm constraint (Hinton et al. 2012, Srivastava et al. 2014): after every
        /// optimiser step the incoming weight vector of each hidden unit is scaled down to L2 norm
        /// `c` when it is longer, `w_j ← w_j · min(1, c/‖w_j‖)`. `None` = unconstrained.
        #[serde(default)]
        max_norm: Option<MaxNorm>,
    },
    /// 2-D CNN for images: per block conv3×3 (same) → ReLU → maxpool 2×2, then a hidden FC layer.
    /// Taps: `block1`, `block2`, … and `hidden`.
    Cnn2d {
        /// Channels of each block, e.g. `[32, 64]`.
        channels: Vec<Width>,
        /// Width of the fully connected layer before the classifier.
        #[serde(default = "default_fc")]
        hidden: Width,
        /// Dropout probability before the classifier.
        #[serde(default = "zero_fraction")]
        dropout: Fraction,
    },
    /// 1-D CNN for sequences (MNIST-1D): per block conv (kernel, same padding, stride 2 after the
    /// first) → ReLU, then a linear classifier. Taps: `block1`, `block2`, …
    Cnn1d {
        /// Channels of each block, e.g. `[25, 25, 25]` (the MNIST-1D paper's CNN).
        channels: Vec<Width>,
        /// Kernel size (odd).
        #[serde(default = "default_kernel")]
        kernel: Width,
    },
    /// Small pre-activation-free ResNet for images (CIFAR-style): a stem conv, then stages of
    /// `blocks` basic blocks with widths `widths`, global average pool, linear.
    /// Taps: `stage1`, `stage2`, … and `pool`.
    ResNet {
        /// Basic blocks per stage, e.g. `[3, 3, 3]` (ResNet-20).
        blocks: Vec<Width>,
        /// Channels per stage, e.g. `[16, 32, 64]`.
        widths: Vec<Width>,
    },
    /// Hydra (Tran et al. 2020): one shared fully connected body and `heads` light heads
    /// (Linear → ReLU → Linear each). The node's output is the head mean, `log((1/M) Σ_m
    /// softmax(h_m))`; an edge with `head: m` trains head m alone (e.g. from ensemble member m).
    /// Taps: `hidden1`, … of the body.
    Hydra {
        /// Widths of the shared body, e.g. `[512, 512]`.
        body: Vec<Width>,
        /// Number of heads M.
        heads: Width,
        /// Hidden width of each head.
        #[serde(default = "default_head_hidden")]
        head_hidden: Width,
        /// ONE (Lan et al. 2018): a gate (Linear on the body's features → softmax over heads)
        /// weights the heads' logits, and the node's output is the gated ensemble
        /// `Σ_m g_m·h_m` instead of the head mean.
        #[serde(default)]
        gate: bool,
    },
    /// Not a network: a teacher's outputs on the training split, written by `cohort
    /// export-logits` (offline / business-to-business transfer). The node is a fixed source
    /// with no weights; the file's fingerprint of the training split must match this
    /// experiment's. No taps.
    Recorded {
        /// The `.logits.json` file.
        file: PathBuf,
    },
}

fn default_fc() -> Width {
    Width::new(128).expect("valid")
}
fn default_head_hidden() -> Width {
    Width::new(64).expect("valid")
}
fn default_kernel() -> Width {
    Width::new(5).expect("valid")
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
        /// For a `Hydra` target: the head (1..=M) this term trains; default the head mean.
        #[serde(default)]
        head: Option<usize>,
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

fn unit_weight() -> Weight {
    Weight::new(1.0).expect("valid")
}
fn unit_temperature() -> Temperature {
    Temperature::new(1.0).expect("valid")
}

/// Loss kinds (exact definitions: DESIGN.md §3; all targets are detached).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Loss")]
pub enum LossSpec {
    /// Cross-entropy with the labels, batch mean. No sources.
    CrossEntropy,
    /// Hinton soft targets: `T²·KL(p^T ‖ q^T)`, batchmean, where p^T is the weighted mean of the
    /// sources' softened probabilities (one source: the teacher's).
    SoftTarget {
        /// Temperature T.
        temperature: Temperature,
        /// Weights of the sources in the mixture (default: equal); normalised to sum to 1.
        #[serde(default)]
        source_weights: Vec<Weight>,
    },
    /// Mutual learning: `(1/|S|) Σ_{l∈S} T²·KL(p_l^T ‖ q^T)` (Zhang et al. 2018).
    MutualKl {
        /// Temperature T (1 in the paper).
        #[serde(default = "unit_temperature")]
        temperature: Temperature,
    },
    /// Distil from an ensemble of the sources: `T²·KL(e^T ‖ q^T)` where the ensemble e is built
    /// by `combine` (DML_e: mean of the other peers' probabilities; KDCL: mean of all peers' logits).
    Ensemble {
        /// Temperature T.
        #[serde(default = "unit_temperature")]
        temperature: Temperature,
        /// How the sources are merged.
        #[serde(default)]
        combine: Combine,
        /// Also put the target node's own (detached) output into the ensemble (KDCL).
        #[serde(default)]
        include_self: bool,
    },
    /// FitNets hint: `½‖u − r(v)‖²` (mean over the batch) between the source's tap `from_tap` (u,
    /// detached) and the target's tap `to_tap` (v) through a learned adapter r (Romero et al. 2015).
    Hint {
        /// Tap of the source (the hint).
        from_tap: String,
        /// Tap of the target (the guided layer).
        to_tap: String,
    },
    /// Attention transfer: mean of `(at(v) − at(u))²` with `at(x) = normalize(mean_c x²)`
    /// (Zagoruyko & Komodakis 2017).
    Attention {
        /// Tap of the source.
        from_tap: String,
        /// Tap of the target.
        to_tap: String,
    },
    /// Distil a node's own (detached) output into one of its heads: `T²·KL(softmax(z/T) ‖
    /// softmax(h_m/T))`, batchmean — ONE's gated ensemble teaching each branch. Needs `head` and
    /// no sources.
    OwnOutput {
        /// Temperature T (3 in ONE).
        temperature: Temperature,
    },
    /// LFME logit regularisation (Chen et al. 2024): `mean_{b,c} (z_bc − softmax(v_{d(b)})_bc)²`
    /// where `v_{d(b)}` are the logits of the expert of sample b's domain. The sources are the
    /// experts, each with `train_on: Subset(domains: [d])`.
    Lfme,
}

/// How an ensemble target is formed from its members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Combine {
    /// Mean of the members' softened probabilities.
    #[default]
    MeanProbs,
    /// Softmax of the mean of the members' logits (KDCL-MinLogit's sibling "naive" ensemble).
    MeanLogits,
    /// KDCL "min-logit": per sample, each member's logits minus its true-class logit, then the
    /// element-wise minimum across members.
    MinLogit,
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
/// `ndarray`, `tch`, `cuda` on request).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendChoice {
    /// The first compiled-in of flex, ndarray, tch, cuda.
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
            _ => Err(format!("unknown backend `{s}`: auto, flex, ndarray, tch or cuda")),
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

/// DML update orders (DESIGN.md §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateOrder {
    /// All nodes compute their losses from the same pre-step outputs, then all step.
    #[default]
    Simultaneous,
    /// Nodes step one after another in the stage's `train` order; each later node sees the
    /// refreshed outputs of the nodes that stepped before it (the DML paper's algorithm).
    Sequential,
}

/// Optimisers. Defaults are PyTorch's (burn's own defaults differ: see BURN.md).
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

impl std::fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[Width]| v.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-");
        match self {
            ModelSpec::Mlp { hidden, dropout, input_dropout, max_norm } => write!(
                f,
                "Mlp({}, dropout {dropout}{}{})",
                if hidden.is_empty() { "linear".into() } else { list(hidden) },
                if input_dropout.get() > 0.0 { format!(", input dropout {input_dropout}") } else { String::new() },
                max_norm.map_or(String::new(), |c| format!(", max-norm {c}"))
            ),
            ModelSpec::Cnn2d { channels, hidden, dropout } => write!(f, "Cnn2d(channels {}, fc {hidden}, dropout {dropout})", list(channels)),
            ModelSpec::Cnn1d { channels, kernel } => write!(f, "Cnn1d(channels {}, kernel {kernel})", list(channels)),
            ModelSpec::ResNet { blocks, widths } => write!(f, "ResNet(blocks {}, widths {})", list(blocks), list(widths)),
            ModelSpec::Recorded { file } => write!(f, "Recorded({})", file.display()),
            ModelSpec::Hydra { body, heads, head_hidden, gate } => {
                write!(f, "Hydra(body {}, {heads} heads of {head_hidden}{})", list(body), if *gate { ", gated" } else { "" })
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
