//! Progress on a terminal (a bar per stage: epoch progress, per-node loss, steps/s) or plain
//! lines when stderr is not a terminal (CI, logs).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Progress reporter of one run.
pub struct Progress {
    bar: Option<ProgressBar>,
    tty: bool,
}

impl Progress {
    /// A reporter; `enabled = false` prints epoch lines only.
    pub fn new(enabled: bool) -> Self {
        Self { bar: None, tty: enabled && std::io::stderr().is_terminal() }
    }
    /// Starts a stage of `steps` steps.
    pub fn start_stage(&mut self, name: &str, steps: usize) {
        if self.tty {
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}").expect("valid template").progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            self.bar = Some(bar);
        }
    }
    /// One step done; `msg` (epoch and per-node losses) is only formatted when shown.
    pub fn step(&self, msg: impl FnOnce() -> String) {
        if let Some(b) = &self.bar {
            b.inc(1);
            if b.position() % 5 == 1 {
                b.set_message(msg());
            }
        }
    }
    /// Prints a line above the bar (or plainly).
    pub fn line(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => println!("{line}"),
        }
    }
    /// Prints a warning above the bar (the bar stays), or on stderr.
    pub fn warn(&self, line: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
    /// Removes the bar.
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
