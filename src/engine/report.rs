//! What the engine tells the world, as events to one [`Reporter`]; the terminal (progress bar or
//! plain lines), the run's `log.txt` and TensorBoard are its listeners. The engine itself
//! prints nothing.

use std::io;
use std::path::PathBuf;

use super::progress::Progress;
use crate::results::MetricRow;
use crate::results::tensorboard::Board;

/// One thing that happened in a run.
pub enum Event<'a> {
    /// A message for the user (a run starting, resuming, ending); `warning`: on stderr.
    Note {
        /// The message.
        text: &'a str,
        /// A warning or an error (a diverged run).
        warning: bool,
        /// Also kept in the run's `log.txt`.
        logged: bool,
    },
    /// A stage of `steps` steps starts (a progress bar appears on a terminal).
    StageStarted {
        /// Its name.
        name: &'a str,
        /// Steps left in it.
        steps: usize,
    },
    /// A step is done; its message (epoch and per-node losses) is formatted only when shown.
    Step(&'a dyn Fn() -> String),
    /// A line for the terminal (the epoch's summary, the stage's setup); `logged`: also in
    /// `log.txt`, prefixed by the seed.
    Line {
        /// The line.
        text: &'a str,
        /// Also kept in `log.txt`.
        logged: bool,
    },
    /// `metrics.csv` was rewritten: every row so far.
    Metrics(&'a [MetricRow]),
    /// The stage (or the run) is over: the bar goes.
    StageFinished,
}

/// A listener's failure to write its file.
#[derive(Debug)]
pub struct Failed {
    /// The file or folder.
    pub path: PathBuf,
    /// Why.
    pub source: io::Error,
}

/// A listener of a run's events.
pub trait Listener {
    /// Handles one event; a failure stops the run.
    fn on(&mut self, event: &Event) -> Result<(), Failed>;
}

/// The listeners of one run, told every event in order.
#[derive(Default)]
pub struct Reporter {
    listeners: Vec<Box<dyn Listener>>,
}

impl Reporter {
    /// A reporter with `listeners`.
    pub fn new(listeners: Vec<Box<dyn Listener>>) -> Self {
        Reporter { listeners }
    }

    /// The same reporter with one more listener.
    pub fn with(mut self, listener: Box<dyn Listener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Tells every listener; the first failure stops.
    pub fn emit(&mut self, event: Event) -> Result<(), Failed> {
        for l in &mut self.listeners {
            l.on(&event)?;
        }
        Ok(())
    }

    /// A note that is not an error, kept in `log.txt` or not.
    pub fn note(&mut self, text: &str, logged: bool) {
        // the terminal and log.txt cannot fail the run: only TensorBoard's files do, on metrics
        let _ = self.emit(Event::Note { text, warning: false, logged });
    }
}

/// The terminal: a progress bar per stage where stderr is a terminal, plain lines otherwise.
pub struct Terminal(pub Progress);

impl Listener for Terminal {
    fn on(&mut self, event: &Event) -> Result<(), Failed> {
        match event {
            Event::Note { text, warning: true, .. } => self.0.warn(text),
            Event::Note { text, .. } => self.0.line(text),
            Event::StageStarted { name, steps } => self.0.start_stage(name, *steps),
            Event::Step(msg) => self.0.step(msg),
            Event::Line { text, .. } => self.0.line(text),
            Event::StageFinished => self.0.finish(),
            Event::Metrics(_) => {}
        }
        Ok(())
    }
}

/// The run's `log.txt`: the epoch lines (prefixed by the seed) and the notes worth keeping.
pub struct LogFile {
    /// The run folder.
    pub dir: crate::results::RunDir,
    /// The seed, prefixed to epoch lines.
    pub seed: u64,
}

impl Listener for LogFile {
    fn on(&mut self, event: &Event) -> Result<(), Failed> {
        match event {
            Event::Note { text, logged: true, .. } => self.dir.log_line(text),
            Event::Line { text, logged: true } => self.dir.log_line(&format!("seed {} {text}", self.seed)),
            _ => {}
        }
        Ok(())
    }
}

/// TensorBoard's event files: the new metric rows after every epoch.
pub struct TensorBoard {
    /// The writer.
    pub board: Board,
    /// How many rows it holds.
    pub written: usize,
    /// Its folder, for errors.
    pub root: PathBuf,
}

impl Listener for TensorBoard {
    fn on(&mut self, event: &Event) -> Result<(), Failed> {
        if let Event::Metrics(rows) = event {
            self.board.write(&rows[self.written..]).map_err(|source| Failed { path: self.root.clone(), source })?;
            self.written = rows.len();
        }
        Ok(())
    }
}
