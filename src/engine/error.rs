//! What can stop the engine before or while it trains (besides bad data and result files,
//! which have their own errors).

use std::path::PathBuf;

use crate::data::DataError;
use crate::results::ResultsError;

/// A run that cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The binary was built without the backend asked for.
    #[error("this binary was built without the `{backend}` backend: rebuild with `cargo build --release --features {backend}` (README, \"Backends\")")]
    BackendMissing {
        /// The cargo feature (and backend) name.
        backend: &'static str,
    },
    /// A device index the backend does not have.
    #[error(
        "device {index}: {backend} computes on the CPU, which is device 0; GPU indices need `backend: Wgpu` (any GPU with a Vulkan driver), `backend: Tch` with a CUDA LibTorch or `backend: Cuda` (docs/gpu.md)"
    )]
    NoSuchDevice {
        /// The index asked for.
        index: usize,
        /// The backend.
        backend: &'static str,
    },
    /// A GPU index asked of a backend that sees no GPU on this machine.
    #[error(
        "device {index}: {backend} sees no CUDA GPU here (a CPU-only LibTorch, no NVIDIA driver, or CUDA_VISIBLE_DEVICES hides them), so its only device is 0, the CPU. For GPUs: `scripts/install-libtorch.sh --cuda`, rebuild with `--features tch` and run on a machine with an NVIDIA GPU (docs/gpu.md)"
    )]
    NoGpu {
        /// The index asked for.
        index: usize,
        /// The backend.
        backend: &'static str,
    },
    /// A GPU index beyond the GPUs the backend sees.
    #[error("device {index}: {backend} sees {gpus} CUDA GPU(s) here, devices 0 to {}", gpus - 1)]
    GpuIndex {
        /// The index asked for.
        index: usize,
        /// How many GPUs the backend sees.
        gpus: usize,
        /// The backend.
        backend: &'static str,
    },
    /// The wgpu backend finds no adapter on any graphics API.
    #[error(
        "wgpu finds no adapter here: it needs a Vulkan driver — a GPU's (NVIDIA's driver ships one) or, on a machine without a GPU, Mesa's software Vulkan (Debian: `apt-get install mesa-vulkan-drivers libvulkan1`); `vulkaninfo --summary` lists what the loader sees (docs/gpu.md)"
    )]
    NoAdapter,
    /// A wgpu device index beyond the adapters there are.
    #[error("device {index}: wgpu has no adapter {index} here; its adapters, in the order `device` counts them (docs/gpu.md): {adapters}")]
    AdapterIndex {
        /// The index asked for.
        index: usize,
        /// The adapters there are, numbered.
        adapters: String,
    },
    /// A node's own placement cannot be had.
    #[error("node `{node}`: {source}")]
    NodePlacement {
        /// The node.
        node: String,
        /// Why.
        source: Box<EngineError>,
    },
    /// A term's options do not fit the loaded training split (CRD's negatives against the
    /// classes' sizes): an error in the experiment file (exit 2), found once the data is known.
    #[error("{at}: {problem}\n  fix: {hint}")]
    TermData {
        /// The term's place in the file, `edges[k].loss`.
        at: String,
        /// What does not fit.
        problem: String,
        /// How to fix it.
        hint: String,
    },
    /// The run folder already holds a complete run.
    #[error("{} already holds a complete run; pass --overwrite to replace it, or rename the experiment", dir.display())]
    AlreadyComplete {
        /// The run folder.
        dir: PathBuf,
    },
    /// The run folder holds an interrupted run and neither `--resume` nor `--overwrite` was given.
    #[error("{} holds an interrupted run; pass --resume to continue it from its last complete epoch, or --overwrite to start over", dir.display())]
    Interrupted {
        /// The run folder.
        dir: PathBuf,
    },
    /// `--resume` of a run started from another version of the experiment file.
    #[error("{} was started from a different version of the experiment file; pass --overwrite to start over", dir.display())]
    ExperimentChanged {
        /// The run folder.
        dir: PathBuf,
    },
    /// A node's initial checkpoint (`checkpoint:` in the file) cannot be loaded.
    #[error(
        "node `{node}`: cannot load checkpoint {}: {problem}. Checkpoints are written by `cohort run` as results/<experiment>/seed-<seed>/checkpoints/<node>.bpk for the same architecture",
        path.display()
    )]
    InitialCheckpoint {
        /// The node.
        node: String,
        /// The file.
        path: PathBuf,
        /// burn's message.
        problem: String,
    },
    /// A node's PyTorch weights (`checkpoint: "x.pth"` or `.safetensors`) do not fit its model.
    #[error(
        "node `{node}`: the PyTorch weights in {} do not fit `{model}`:\n{}\n  fix: export the state_dict of the reference definition with the same configuration (docs/pytorch.md lists them), or change `model:` to match it",
        path.display(),
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    )]
    TorchWeights {
        /// The node.
        node: String,
        /// The file.
        path: PathBuf,
        /// The node's model, as the plan prints it.
        model: String,
        /// Every missing, unexpected or misshapen tensor.
        problems: Vec<String>,
    },
    /// A checkpoint or state file written by a run cannot be loaded.
    #[error("{}: cannot be loaded ({problem}); a damaged run state is replaced by rerunning with --overwrite", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// burn's or serde's message.
        problem: String,
    },
    /// A network or optimiser state cannot be serialised (burn's record writer failed).
    #[error("{}: cannot serialise: {problem}", path.display())]
    Serialise {
        /// The file it was meant for.
        path: PathBuf,
        /// burn's message.
        problem: String,
    },
    /// A recorded source's file does not fit this experiment.
    #[error("node `{node}`: {}: {problem}", path.display())]
    Recorded {
        /// The recorded node.
        node: String,
        /// Its file.
        path: PathBuf,
        /// What does not fit, and how to fix it.
        problem: String,
    },
    /// The data set of the run is missing or damaged.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A result file of the run cannot be read or written.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// Reading or writing a file of the run failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

impl EngineError {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io { path: path.into(), source }
    }
}
