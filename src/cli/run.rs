//! `cohort run` and `cohort sweep` (in one process, or as worker processes), and the exit code
//! of a set of runs.

use std::path::{Path, PathBuf};

use crate::config;
use crate::engine::{self, RunOptions, Status};
use crate::error::{EXIT_FAILURE, EXIT_INTERRUPTED, Error};
use crate::plot;
use crate::results::{ExperimentDir, RunDir};

/// `cohort run`: check, train every seed, draw the charts of the complete runs.
pub(super) fn run(
    mut opts: RunOptions,
    overrides: &[crate::config::overrides::Override],
    seeds: Option<Vec<u64>>,
    no_plot: bool,
    backend: Option<config::BackendChoice>,
    device: Option<usize>,
    output: Option<PathBuf>,
) -> Result<i32, Error> {
    let (mut plan, text) = if overrides.is_empty() {
        config::load_plan(&opts.experiment_file)?
    } else {
        let file = &opts.experiment_file;
        let source = std::fs::read_to_string(file).map_err(|e| config::ConfigError::unreadable(file, &e))?;
        crate::config::overrides::plan_with_overrides(file, &source, overrides)?
    };
    opts.experiment_text = text;
    if let Some(s) = seeds {
        plan.seeds = s;
    }
    if let Some(b) = backend {
        plan.backend = b;
    }
    if let Some(d) = device {
        plan.device = d;
    }
    if let Some(o) = output {
        plan.output = o;
    }
    print!("{}", plan.describe());
    for w in plan.warnings() {
        eprintln!("{w}");
    }
    let opts = RunOptions { interrupt: stop_on_signals(), ..opts };
    let outcomes = engine::run(&plan, &opts)?;
    finish(&outcomes, no_plot)
}

/// First SIGINT/SIGTERM: finish the step and exit resumably; second: exit at once. The handle
/// the runs watch.
fn stop_on_signals() -> engine::Interrupt {
    let interrupt = engine::Interrupt::default();
    let asked = interrupt.clone();
    let _ = ctrlc::set_handler(move || {
        static SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if SEEN.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(EXIT_INTERRUPTED);
        }
        eprintln!("\ninterrupt: finishing the current step, then stopping (again to abort now)");
        asked.request();
    });
    interrupt
}

/// Charts of the complete runs, then the exit code: 130 when interrupted, 1 when a run diverged.
fn finish(outcomes: &[engine::RunOutcome], no_plot: bool) -> Result<i32, Error> {
    if !no_plot {
        for o in outcomes.iter().filter(|o| o.status == Status::Complete) {
            match plot::plot_run(&o.dir) {
                Ok(_) => println!("charts: {}", RunDir::at(&o.dir).charts().display()),
                Err(e) => eprintln!("warning: charts of {} not drawn: {e}", o.dir.display()),
            }
        }
    }
    let diverged = outcomes.iter().filter(|o| matches!(o.status, Status::Diverged(_))).count();
    if outcomes.iter().any(|o| o.status == Status::Interrupted) {
        return Ok(EXIT_INTERRUPTED);
    }
    if diverged > 0 {
        eprintln!("{diverged} of {} run(s) diverged; see summary.json in their folders", outcomes.len());
        return Ok(EXIT_FAILURE);
    }
    Ok(0)
}

/// `cohort sweep`: expand, keep this shard's runs, run each (resuming / skipping as needed).
/// What `cohort sweep` expands: the grid's axes, an optional random sample of its points, and
/// the seeds (default: the file's), after the `--set` overrides.
pub(super) struct Expansion<'a> {
    pub overrides: &'a [crate::config::overrides::Override],
    pub grid: &'a [crate::sweep::Axis],
    pub sample: Option<crate::sweep::Sample>,
    pub seeds: Option<&'a [u64]>,
}

pub(super) fn sweep(
    file: &Path,
    Expansion { overrides, grid, sample, seeds }: Expansion,
    shard: Option<crate::sweep::Shard>,
    list: bool,
    no_plot: bool,
    tensorboard: bool,
    root: PathBuf,
) -> Result<i32, Error> {
    let source = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let runs = crate::sweep::expand(file, &source, overrides, grid, sample, seeds)?;
    let total = runs.len();
    let mine: Vec<crate::sweep::SweepRun> = runs.into_iter().filter(|r| shard.is_none_or(|s| s.takes(r.index))).collect();
    let which = shard.map(|s| format!(" (shard {}/{})", s.index, s.count)).unwrap_or_default();
    println!("sweep of {}: {total} run(s), {} here{which}", file.display(), mine.len());
    for r in &mine {
        let point: Vec<String> = r.point.iter().map(|(p, v)| format!("{p}={v}")).collect();
        let point = if point.is_empty() { String::new() } else { format!(": {}", point.join(", ")) };
        println!("  #{:<3} {} seed {}{point}", r.index, r.plan.name, r.seed);
    }
    if list {
        return Ok(0);
    }
    let interrupt = stop_on_signals();
    let mut outcomes = Vec::new();
    for r in &mine {
        let opts = RunOptions {
            data_root: root.clone(),
            resume: true,
            overwrite: false,
            progress: false,
            experiment_file: file.to_path_buf(),
            experiment_text: r.text.clone(),
            stop_after_epochs: None,
            tensorboard,
            interrupt: interrupt.clone(),
        };
        println!("== run #{} {} seed {}", r.index, r.plan.name, r.seed);
        outcomes.extend(engine::run(&r.plan, &opts)?);
        if outcomes.iter().any(|o| o.status == Status::Interrupted) {
            break;
        }
    }
    let mut names: Vec<String> = mine.iter().map(|r| ExperimentDir::new(&r.plan.output, &r.plan.name).root.display().to_string()).collect();
    names.dedup();
    println!("compare with: cohort compare {}", names.join(" "));
    finish(&outcomes, no_plot)
}

/// `cohort sweep --jobs N`: this same command line run as N worker processes, worker i taking
/// the shard `s + i·c / (c·N)` of this process's shard `s/c` (default 0/1), so that the workers
/// together run exactly this shard's runs; each worker gets cores/N threads. Output lines are
/// relayed with a `[job i]` prefix; the exit code is the first failing worker's. The workers
/// run in their own process group, so a Ctrl-C (or SIGTERM) reaches them once, forwarded by this
/// process: they finish their step, save and stop (resumable); a second one aborts them.
pub(super) fn sweep_jobs(jobs: usize, shard: Option<crate::sweep::Shard>) -> Result<i32, Error> {
    use std::io::{BufRead, BufReader, Write};
    let s = shard.unwrap_or(crate::sweep::Shard { index: 0, count: 1 });
    // this process's arguments without --jobs / --shard (each as `--x V` or `--x=V`)
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        let text = a.to_string_lossy();
        if text == "--jobs" || text == "--shard" {
            it.next();
        } else if !(text.starts_with("--jobs=") || text.starts_with("--shard=")) {
            args.push(a);
        }
    }
    let exe = std::env::current_exe().map_err(|e| Error::Process { what: "cannot find the cohort executable".into(), source: e })?;
    let threads = (rayon::current_num_threads() / jobs).max(1);
    println!("sweep as {jobs} worker processes with {threads} thread(s) each");
    let pids: std::sync::Arc<std::sync::Mutex<Vec<u32>>> = Default::default();
    let forward = pids.clone();
    let _ = ctrlc::set_handler(move || {
        for &pid in forward.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            #[cfg(unix)]
            // SAFETY: kill(2) on our own child's pid; no memory is touched.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGINT);
            }
        }
    });
    let mut children = Vec::new();
    for i in 0..jobs {
        let mut command = std::process::Command::new(&exe);
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .args(&args)
            .arg("--shard")
            .arg(format!("{}/{}", s.index + i * s.count, s.count * jobs))
            .env("RAYON_NUM_THREADS", threads.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| Error::Process { what: format!("cannot start worker {i}"), source: e })?;
        pids.lock().unwrap_or_else(|p| p.into_inner()).push(child.id());
        let relay = |r: Box<dyn std::io::Read + Send>, to_stderr: bool| {
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    let line = format!("[job {i}] {line}\n");
                    // a closed terminal or pipe only loses the relayed text; the worker goes on
                    let _ = if to_stderr { std::io::stderr().write_all(line.as_bytes()) } else { std::io::stdout().write_all(line.as_bytes()) };
                }
            })
        };
        let out = relay(Box::new(child.stdout.take().expect("piped")), false);
        let err = relay(Box::new(child.stderr.take().expect("piped")), true);
        children.push((child, out, err));
    }
    let mut code = 0;
    for (i, (mut child, out, err)) in children.into_iter().enumerate() {
        let status = child.wait().map_err(|e| Error::Process { what: format!("worker {i}"), source: e })?;
        let _ = (out.join(), err.join());
        if code == 0 && !status.success() {
            code = status.code().unwrap_or(EXIT_FAILURE);
            let what = if code == EXIT_INTERRUPTED { "was interrupted (its runs continue with the same command)" } else { "failed" };
            eprintln!("worker {i} {what} ({status})");
        }
    }
    Ok(code)
}
