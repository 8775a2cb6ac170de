//! Tabular data from CSV files (`Csv`): one row per sample, a header row naming the columns, the
//! label in one column (whole numbers in `0..classes`), the features in the others (or in the
//! columns listed by `features:`), read with the `csv` crate. `cohort data export` writes this
//! format (`label,x0,x1,…`), so an exported data set reads back unchanged.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::source::Source;
use super::{DataError, Samples, Splits};

/// Training and test CSV files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Csv")]
pub struct CsvSpec {
    /// Training rows (relative paths from the working directory).
    pub train: PathBuf,
    /// Test rows, with the same columns.
    pub test: PathBuf,
    /// Number of classes; every label must be in `0..classes`.
    pub classes: usize,
    /// The label's column (by its header name).
    #[serde(default = "label")]
    pub label_column: String,
    /// The feature columns, in order; by default every column except the label.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Shape of one sample, e.g. `[1, 28, 28]` for images written row by row; by default `[D]`
    /// for D feature columns.
    #[serde(default)]
    pub shape: Option<Vec<usize>>,
}

fn label() -> String {
    "label".into()
}

/// The columns a file's header selects: the label's index and the features' indices.
struct Columns {
    label: usize,
    features: Vec<usize>,
}

impl CsvSpec {
    fn corrupt(path: &Path, problem: impl Into<String>, fix: impl Into<String>) -> DataError {
        DataError::Corrupt { path: path.to_path_buf(), problem: problem.into(), fix: fix.into() }
    }

    fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>, DataError> {
        let file = std::fs::File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DataError::Missing {
                dataset: "CSV data",
                path: path.to_path_buf(),
                fix: "check the path in the experiment file (relative paths start at the working directory)".into(),
            },
            _ => DataError::io(path, e),
        })?;
        Ok(csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(file))
    }

    fn columns(&self, path: &Path, header: &csv::StringRecord) -> Result<Columns, DataError> {
        let names: Vec<&str> = header.iter().collect();
        let find = |name: &str| {
            names.iter().position(|&h| h == name).ok_or_else(|| {
                Self::corrupt(
                    path,
                    format!("no column `{name}` in the header ({})", names.join(", ")),
                    "name the label's column with `label_column:` and the features with `features:`",
                )
            })
        };
        let label = find(&self.label_column)?;
        let features = match &self.features {
            Some(list) => list.iter().map(|n| find(n)).collect::<Result<Vec<_>, _>>()?,
            None => (0..names.len()).filter(|&k| k != label).collect(),
        };
        if features.is_empty() {
            return Err(Self::corrupt(path, "no feature columns", "a CSV data file needs a label column and at least one feature column"));
        }
        Ok(Columns { label, features })
    }

    /// The sample shape for `d` feature columns.
    fn sample_shape(&self, d: usize, path: &Path) -> Result<Vec<usize>, DataError> {
        match &self.shape {
            None => Ok(vec![d]),
            Some(s) if s.iter().product::<usize>() == d && !s.is_empty() => Ok(s.clone()),
            Some(s) => Err(Self::corrupt(
                path,
                format!("`shape: {s:?}` holds {} values, the file has {d} feature columns", s.iter().product::<usize>()),
                "make the shape's product the number of feature columns",
            )),
        }
    }

    fn read(&self, path: &Path) -> Result<Samples, DataError> {
        if self.classes == 0 || self.classes > 256 {
            return Err(Self::corrupt(path, format!("`classes: {}` is not in 1..=256", self.classes), "set `classes:` to the number of classes"));
        }
        let mut r = Self::reader(path)?;
        let header = r.headers().map_err(|e| Self::corrupt(path, format!("unreadable header: {e}"), "the first row must name the columns"))?.clone();
        let cols = self.columns(path, &header)?;
        let shape = self.sample_shape(cols.features.len(), path)?;
        let mut s = Samples { features: Vec::new(), labels: Vec::new(), shape, classes: self.classes, domains: Vec::new(), background: Vec::new() };
        let mut row = csv::StringRecord::new();
        loop {
            let line = r.position().line();
            match r.read_record(&mut row) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(Self::corrupt(path, format!("line {line}: {e}"), "every row needs as many fields as the header")),
            }
            let field = |k: usize| row.get(k).unwrap_or("");
            let bad_label = || {
                Self::corrupt(
                    path,
                    format!("line {line}: label `{}` is not a class in 0..{}", field(cols.label), self.classes),
                    format!("labels are class indices 0..={}; or raise `classes:`", self.classes - 1),
                )
            };
            let label: f64 = field(cols.label).parse().map_err(|_| bad_label())?;
            if label.fract() != 0.0 || label < 0.0 || label >= self.classes as f64 {
                return Err(bad_label());
            }
            s.labels.push(label as u8);
            for &k in &cols.features {
                let v: f32 = field(k).parse().map_err(|_| {
                    Self::corrupt(
                        path,
                        format!("line {line}, column `{}`: `{}` is not a number", &header[k], field(k)),
                        "list the numeric columns with `features: [...]`, or clean the file",
                    )
                })?;
                if !v.is_finite() {
                    return Err(Self::corrupt(
                        path,
                        format!("line {line}, column `{}` is {v} (NaN and infinite features cannot be trained on)", &header[k]),
                        "impute or drop those rows",
                    ));
                }
                s.features.push(v);
            }
        }
        if s.is_empty() {
            return Err(Self::corrupt(path, "no rows after the header", "the file needs one row per sample"));
        }
        Ok(s)
    }
}

impl Source for CsvSpec {
    fn description(&self) -> String {
        format!("CSV files {} and {}", self.train.display(), self.test.display())
    }

    /// Sample shape and classes, from the training file's header alone.
    fn input_shape(&self) -> Result<(Vec<usize>, usize), DataError> {
        let mut r = Self::reader(&self.train)?;
        let header = r.headers().map_err(|e| Self::corrupt(&self.train, format!("unreadable header: {e}"), "the first row must name the columns"))?.clone();
        let cols = self.columns(&self.train, &header)?;
        Ok((self.sample_shape(cols.features.len(), &self.train)?, self.classes))
    }

    /// Loads and checks both files.
    fn load(&self, _root: &Path) -> Result<Splits, DataError> {
        let train = self.read(&self.train)?;
        let test = self.read(&self.test)?;
        if test.shape != train.shape {
            return Err(Self::corrupt(
                &self.test,
                format!("samples of shape {:?}, the training file's are {:?}", test.shape, train.shape),
                "both files need the same feature columns",
            ));
        }
        Ok(Splits { train, test })
    }
}
