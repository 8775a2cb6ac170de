//! Errors in experiment files, rendered like a compiler's: file, line, column, the offending
//! line with a caret, and a hint.

use std::fmt;
use std::path::{Path, PathBuf};

pub mod locate;

use locate::{FieldPath, Pos, locate};

/// One problem in an experiment file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Where the value sits (1-based), when known.
    pub pos: Option<Pos>,
    /// Path of the value in the schema (`edges[2].from[0]`), when known.
    pub path: Option<FieldPath>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A problem with the value at `path`.
    pub fn at(path: FieldPath, message: impl Into<String>) -> Self {
        Self { pos: None, path: Some(path), message: message.into(), hint: None }
    }
    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// All problems found in one experiment file (parsing stops at the first syntax error; the
/// checks after parsing report every problem they find).
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    /// The file as named on the command line.
    pub file: PathBuf,
    /// Source text, for quoting lines.
    pub source: String,
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// Builds the error, filling each diagnostic's position from its path.
    pub fn new(file: &Path, source: &str, mut diagnostics: Vec<Diagnostic>) -> Self {
        for d in &mut diagnostics {
            if d.pos.is_none()
                && let Some(p) = &d.path
            {
                d.pos = locate(source, p);
            }
        }
        diagnostics.sort_by_key(|d| d.pos.map(|p| (p.line, p.col)));
        Self { file: file.to_path_buf(), source: source.to_string(), diagnostics }
    }

    /// The I/O failure of reading the file itself.
    pub fn unreadable(file: &Path, err: &std::io::Error) -> Self {
        Self {
            file: file.to_path_buf(),
            source: String::new(),
            diagnostics: vec![Diagnostic {
                pos: None,
                path: None,
                message: format!("cannot read the experiment file: {err}"),
                hint: Some("check the path; experiment files live in experiments/".into()),
            }],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, d) in self.diagnostics.iter().enumerate() {
            if k > 0 {
                writeln!(f)?;
            }
            let file = self.file.display();
            match d.pos {
                Some(p) => write!(f, "error: {file}:{}:{}: {}", p.line, p.col, d.message)?,
                None => write!(f, "error: {file}: {}", d.message)?,
            }
            if let Some(path) = d.path.as_ref().filter(|p| !p.0.is_empty()) {
                write!(f, " (at `{path}`)")?;
            }
            writeln!(f)?;
            if let Some(p) = d.pos
                && let Some(line) = self.source.lines().nth(p.line - 1)
            {
                let gutter = p.line.to_string().len();
                writeln!(f, "{:gutter$} |", "")?;
                writeln!(f, "{} | {}", p.line, line)?;
                writeln!(f, "{:gutter$} | {:>col$}", "", "^", col = p.col)?;
            }
            if let Some(h) = &d.hint {
                writeln!(f, "  = hint: {h}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Levenshtein distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate to `found`, if it is close enough to be a likely typo.
pub fn closest<'a>(found: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (distance(&found.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Turns a ron error into a diagnostic with a hint.
pub fn from_ron(e: &ron::error::SpannedError) -> Diagnostic {
    use ron::error::Error as E;
    let pos = Some(Pos { line: e.span.start.line.max(1), col: e.span.start.col.max(1) });
    let list = |v: &[&str]| v.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
    let (message, hint) = match &e.code {
        E::NoSuchStructField { expected, found, outer } => (
            format!("unknown field `{found}`{}", outer.as_ref().map(|o| format!(" in `{o}`")).unwrap_or_default()),
            Some(match closest(found, expected.iter().copied()) {
                Some(c) => format!("did you mean `{c}`? Fields allowed here: {}", list(expected)),
                None => format!("fields allowed here: {}", list(expected)),
            }),
        ),
        E::NoSuchEnumVariant { expected, found, outer } => (
            format!("unknown variant `{found}`{}", outer.as_ref().map(|o| format!(" of `{o}`")).unwrap_or_default()),
            Some(match closest(found, expected.iter().copied()) {
                Some(c) => format!("did you mean `{c}`? Allowed: {}", list(expected)),
                None => format!("allowed: {}", list(expected)),
            }),
        ),
        E::MissingStructField { field, outer } => (
            format!("missing field `{field}`{}", outer.as_ref().map(|o| format!(" in `{o}`")).unwrap_or_default()),
            Some(format!("add `{field}: ...`; see experiments/README.md for its meaning")),
        ),
        E::DuplicateStructField { field, .. } => (format!("field `{field}` is given twice"), Some("keep one of them".into())),
        E::Message(m) => match m.split_once(crate::values::HINT_SEPARATOR) {
            Some((msg, hint)) => (msg.to_string(), Some(hint.to_string())),
            None => (m.clone(), None),
        },
        E::ExpectedInteger | E::IntegerOutOfBounds => (e.code.to_string(), Some("write a whole number without quotes, e.g. `batch_size: 128`".into())),
        E::ExpectedFloat => (e.code.to_string(), Some("write a number without quotes, e.g. `temperature: 4.0`".into())),
        E::ExpectedString | E::ExpectedStringEnd => (e.code.to_string(), Some("names and paths are written in double quotes, e.g. `id: \"teacher\"`".into())),
        E::ExpectedArray | E::ExpectedArrayEnd => (e.code.to_string(), Some("lists are written in brackets, e.g. `train: [\"a\", \"b\"]`".into())),
        E::ExpectedBoolean => (e.code.to_string(), Some("write `true` or `false`".into())),
        E::ExpectedComma => {
            ("expected a comma".into(), Some("separate fields and list items with `,`; check the line above for a missing comma or an unclosed bracket".into()))
        }
        E::Eof => ("unexpected end of file".into(), Some("a bracket `(` or `[` is not closed".into())),
        other => (other.to_string(), None),
    };
    Diagnostic { pos, path: None, message, hint }
}
