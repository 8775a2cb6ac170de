//! The command line: `check`, `run`, `sweep`, `verify`, `eval`, `export-logits`, `plot`, `compare`, `bench`,
//! `data export`, `data fetch`. Maps outcomes to exit codes (0 success, 1 failure, 2 invalid experiment
//! file or arguments, 130 interrupted). The clap types are in `args.rs`; each command's body in
//! its own file.

mod args;
mod check;
mod compare;
mod data;
mod node;
mod run;
mod verify;

use clap::Parser;

pub use args::*;

use crate::engine::{self, RunOptions};
use crate::error::{EXIT_INVALID, Error};
use crate::plot;

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

/// Runs a parsed command line; `Ok` carries the exit code.
pub fn execute(cli: Cli) -> Result<i32, Error> {
    let root = crate::data::data_root(cli.data_dir.as_deref());
    match cli.command {
        Command::Check { files, plan } => Ok(check::check(&files, plan)),
        Command::Bench { peers, steps, repeat, backend, device, models } => {
            let (plain, name) = engine::device_for(backend, device)?;
            print!("{}", engine::bench::report(&peers, steps.max(1), repeat.max(1), &engine::Placement::of(plain, name), &models));
            Ok(0)
        }
        Command::Devices => {
            for (backend, devices) in engine::device::devices() {
                println!("{backend}:");
                for (i, d) in devices.iter().enumerate() {
                    println!("  device {i}: {d}");
                }
                if devices.is_empty() {
                    println!("  no device here");
                }
            }
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
        Command::Compare { dirs, out, json, select, baseline, group } => compare::compare(&dirs, &out, json, select, baseline.as_ref(), &group),
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
            Some(run) => data::export_run(&run, format, &out, &root),
            None => data::export(dataset, experiment.as_deref(), format, &out, &root),
        },
        Command::Data { action: DataCommand::Fetch { dataset: FetchName::Mnist } } => data::fetch_mnist(&root),
    }
}
