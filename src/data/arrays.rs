//! A researcher's own arrays as data: NumPy `.npy` files (`Npy`, one file per array) and `.npz`
//! archives (`Npz`, `np.savez` / `np.savez_compressed`), read with the `npyz` crate.
//!
//! Features may have any numeric dtype (float16/32/64, signed and unsigned integers of 8 to 64
//! bits, bool); `uint8` features are scaled to [0, 1] (÷ 255), as torchvision's `ToTensor` does for
//! images and as cohort's built-in image data sets are, every other dtype is kept as stored. The
//! sample shape comes from the array: `[N, D]` (vectors, or sequences for `Cnn1d`), `[N, H, W]`
//! (one-channel images) or `[N, C, H, W]` / `[N, H, W, C]` (see [`Layout`]). Labels are `[N]` or
//! `[N, 1]`, of any numeric dtype holding whole numbers in `0..classes`. Everything is checked
//! before training starts: shapes, label range, NaN or infinite features, truncated files.

use std::io::Read;
use std::path::{Path, PathBuf};

use npyz::{DType, NpyFile, Order, TypeChar, WriterBuilder};
use serde::{Deserialize, Serialize};

use super::source::Source;
use super::{DataError, Samples, Splits};

/// How the axes of a 4-D feature array are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// `[N, C, H, W]`, PyTorch's order.
    Nchw,
    /// `[N, H, W, C]`, the order of TensorFlow/Keras and of most image arrays; transposed to
    /// `[C, H, W]` on loading.
    Nhwc,
}

/// The four arrays of a data set, in one `.npz` archive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Npz")]
pub struct NpzSpec {
    /// The archive (relative paths from the working directory).
    pub file: PathBuf,
    /// Number of classes; every label must be in `0..classes`.
    pub classes: usize,
    /// Name of the training features in the archive.
    #[serde(default = "names::x_train")]
    pub x_train: String,
    /// Name of the training labels.
    #[serde(default = "names::y_train")]
    pub y_train: String,
    /// Name of the test features.
    #[serde(default = "names::x_test")]
    pub x_test: String,
    /// Name of the test labels.
    #[serde(default = "names::y_test")]
    pub y_test: String,
    /// Axis order of 4-D features; by default inferred (a last axis of 1, 3 or 4 with a second
    /// axis that is not means `Nhwc`), an error when the shape leaves it open.
    #[serde(default)]
    pub layout: Option<Layout>,
}

/// The four arrays of a data set, one `.npy` file each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Npy")]
pub struct NpySpec {
    /// Training features.
    pub x_train: PathBuf,
    /// Training labels.
    pub y_train: PathBuf,
    /// Test features.
    pub x_test: PathBuf,
    /// Test labels.
    pub y_test: PathBuf,
    /// Number of classes; every label must be in `0..classes`.
    pub classes: usize,
    /// Axis order of 4-D features (see [`NpzSpec::layout`]).
    #[serde(default)]
    pub layout: Option<Layout>,
}

mod names {
    pub fn x_train() -> String {
        "x_train".into()
    }
    pub fn y_train() -> String {
        "y_train".into()
    }
    pub fn x_test() -> String {
        "x_test".into()
    }
    pub fn y_test() -> String {
        "y_test".into()
    }
}

const NPY_FIX: &str =
    "write the arrays with NumPy (`np.save` / `np.savez`): features [N, D], [N, H, W], [N, C, H, W] or [N, H, W, C], labels [N] of whole numbers";

/// Where an array lives, for messages: `d.npz` and the array's name, or the `.npy` file.
#[derive(Clone, Debug)]
struct Origin {
    path: PathBuf,
    array: Option<String>,
}

impl Origin {
    fn corrupt(&self, problem: impl Into<String>, fix: impl Into<String>) -> DataError {
        let problem = problem.into();
        let problem = match &self.array {
            Some(a) => format!("array `{a}`: {problem}"),
            None => problem,
        };
        DataError::Corrupt { path: self.path.clone(), problem, fix: fix.into() }
    }

    fn io(&self, e: std::io::Error) -> DataError {
        match e.kind() {
            std::io::ErrorKind::NotFound => DataError::Missing {
                dataset: "NumPy data",
                path: self.path.clone(),
                fix: "check the path in the experiment file (relative paths start at the working directory)".into(),
            },
            std::io::ErrorKind::UnexpectedEof => self.corrupt("the file ends early (truncated)", "write it again with NumPy"),
            std::io::ErrorKind::InvalidData => self.corrupt(format!("not a readable NumPy array ({e})"), NPY_FIX),
            _ => DataError::io(&self.path, e),
        }
    }
}

/// An array's element type, as far as cohort reads it.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Bool,
    F16,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

fn kind(dtype: &DType, origin: &Origin) -> Result<Kind, DataError> {
    let unsupported = || origin.corrupt(format!("dtype {} is not numeric", dtype.descr()), "store numbers: float16/32/64, int8–64, uint8–64 or bool");
    let DType::Plain(ts) = dtype else { return Err(unsupported()) };
    Ok(match (ts.type_char(), ts.size_field()) {
        (TypeChar::Bool, 1) => Kind::Bool,
        (TypeChar::Float, 2) => Kind::F16,
        (TypeChar::Float, 4) => Kind::F32,
        (TypeChar::Float, 8) => Kind::F64,
        (TypeChar::Int, 1) => Kind::I8,
        (TypeChar::Int, 2) => Kind::I16,
        (TypeChar::Int, 4) => Kind::I32,
        (TypeChar::Int, 8) => Kind::I64,
        (TypeChar::Uint, 1) => Kind::U8,
        (TypeChar::Uint, 2) => Kind::U16,
        (TypeChar::Uint, 4) => Kind::U32,
        (TypeChar::Uint, 8) => Kind::U64,
        _ => return Err(unsupported()),
    })
}

/// Every element of `file` through `f`, in C order.
fn read_with<R: Read, O>(file: NpyFile<R>, k: Kind, f: impl Fn(f64) -> O) -> std::io::Result<Vec<O>> {
    fn go<T: npyz::Deserialize, R: Read, O>(file: NpyFile<R>, f: impl Fn(T) -> O) -> std::io::Result<Vec<O>> {
        let reader = file.data::<T>().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        reader.map(|r| r.map(&f)).collect()
    }
    match k {
        Kind::Bool => go(file, |v: bool| f(v as u8 as f64)),
        Kind::F16 => go(file, |v: npyz::half::f16| f(v.to_f64())),
        Kind::F32 => go(file, |v: f32| f(v as f64)),
        Kind::F64 => go(file, f),
        Kind::I8 => go(file, |v: i8| f(v as f64)),
        Kind::I16 => go(file, |v: i16| f(v as f64)),
        Kind::I32 => go(file, |v: i32| f(v as f64)),
        Kind::I64 => go(file, |v: i64| f(v as f64)),
        Kind::U8 => go(file, |v: u8| f(v as f64)),
        Kind::U16 => go(file, |v: u16| f(v as f64)),
        Kind::U32 => go(file, |v: u32| f(v as f64)),
        Kind::U64 => go(file, |v: u64| f(v as f64)),
    }
}

/// Reorders the elements of a Fortran-order array of `shape` into C order.
fn fortran_to_c<T: Copy>(values: Vec<T>, shape: &[usize]) -> Vec<T> {
    if shape.len() < 2 {
        return values;
    }
    let mut out = Vec::with_capacity(values.len());
    let mut idx = vec![0usize; shape.len()];
    // Fortran strides: axis 0 varies fastest
    let strides: Vec<usize> = (0..shape.len()).map(|a| shape[..a].iter().product()).collect();
    for _ in 0..values.len() {
        out.push(values[idx.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()]);
        for a in (0..shape.len()).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    out
}

/// A features array: its shape as stored and its values as `f32`, in C order.
struct Features {
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// An array's shape as stored.
fn dims<R: Read>(file: &NpyFile<R>) -> Vec<usize> {
    file.shape().iter().map(|&d| d as usize).collect()
}

/// The sample shape of a features array, from its header alone (dtype and shape checked).
fn header_sample_shape<R: Read>(x: &NpyFile<R>, layout: Option<Layout>, origin: &Origin) -> Result<Vec<usize>, DataError> {
    kind(&x.dtype(), origin)?;
    Ok(sample_shape(&dims(x), layout, origin)?.0)
}

fn read_features<R: Read>(file: NpyFile<R>, origin: &Origin) -> Result<Features, DataError> {
    let k = kind(&file.dtype(), origin)?;
    let shape = dims(&file);
    let fortran = file.order() == Order::Fortran;
    let scale = if matches!(k, Kind::U8) { 1.0 / 255.0 } else { 1.0 };
    let mut values = read_with(file, k, |v| (v * scale) as f32).map_err(|e| origin.io(e))?;
    if fortran {
        values = fortran_to_c(values, &shape);
    }
    Ok(Features { shape, values })
}

fn read_labels<R: Read>(file: NpyFile<R>, origin: &Origin) -> Result<(Vec<usize>, Vec<f64>), DataError> {
    let k = kind(&file.dtype(), origin)?;
    let shape = dims(&file);
    let values = read_with(file, k, |v| v).map_err(|e| origin.io(e))?;
    Ok((shape, values))
}

/// The sample shape for features of array shape `shape` (`[N, …]`) and whether a `[N, H, W, C]`
/// array must be transposed.
fn sample_shape(shape: &[usize], layout: Option<Layout>, origin: &Origin) -> Result<(Vec<usize>, bool), DataError> {
    let channelish = |d: usize| matches!(d, 1 | 3 | 4);
    match shape.len() {
        2 => Ok((vec![shape[1]], false)),
        3 => Ok((vec![1, shape[1], shape[2]], false)),
        4 => {
            let layout = match layout {
                Some(l) => l,
                None if channelish(shape[3]) && !channelish(shape[1]) => Layout::Nhwc,
                None if channelish(shape[1]) && !channelish(shape[3]) => Layout::Nchw,
                None => {
                    return Err(origin.corrupt(
                        format!("shape {shape:?} could be [N, C, H, W] or [N, H, W, C]"),
                        "say which with `layout: Nchw` or `layout: Nhwc` in the data source",
                    ));
                }
            };
            Ok(match layout {
                Layout::Nchw => (shape[1..].to_vec(), false),
                Layout::Nhwc => (vec![shape[3], shape[1], shape[2]], true),
            })
        }
        _ => Err(origin.corrupt(format!("features of shape {shape:?}: expected [N, D], [N, H, W], [N, C, H, W] or [N, H, W, C]"), NPY_FIX)),
    }
}

/// `[N, H, W, C]` values → `[N, C, H, W]`.
fn nhwc_to_nchw(values: &[f32], n: usize, h: usize, w: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    let plane = h * w;
    for s in 0..n {
        let (src, dst) = (&values[s * plane * c..(s + 1) * plane * c], &mut out[s * plane * c..(s + 1) * plane * c]);
        for p in 0..plane {
            for ch in 0..c {
                dst[ch * plane + p] = src[p * c + ch];
            }
        }
    }
    out
}

/// Checks a split's arrays against each other and `classes`, and assembles its samples.
fn assemble(x: Features, x_at: &Origin, y: (Vec<usize>, Vec<f64>), y_at: &Origin, classes: usize, layout: Option<Layout>) -> Result<Samples, DataError> {
    let (shape, transpose) = sample_shape(&x.shape, layout, x_at)?;
    let n = x.shape[0];
    let (y_shape, y) = y;
    if !(y_shape.len() == 1 || (y_shape.len() == 2 && y_shape[1] == 1)) {
        return Err(y_at.corrupt(
            format!("labels of shape {y_shape:?}: expected [N] or [N, 1] (class indices, not one-hot)"),
            "store one class index per sample, e.g. `y.argmax(1)` of one-hot labels",
        ));
    }
    if y_shape[0] != n {
        return Err(y_at.corrupt(format!("{} labels for {n} samples (features {:?})", y_shape[0], x.shape), "give one label per sample"));
    }
    if n == 0 {
        return Err(x_at.corrupt("no samples", NPY_FIX));
    }
    let mut labels = Vec::with_capacity(n);
    for (i, &v) in y.iter().enumerate() {
        if v.fract() != 0.0 || v < 0.0 || v >= classes as f64 || !v.is_finite() {
            return Err(y_at.corrupt(
                format!("label {v} of sample {i} is not a class in 0..{classes}"),
                format!("labels are class indices 0..={}; or raise `classes:`", classes.saturating_sub(1)),
            ));
        }
        labels.push(v as u8);
    }
    let d: usize = shape.iter().product();
    if let Some(k) = x.values.iter().position(|v| !v.is_finite()) {
        return Err(x_at.corrupt(
            format!("sample {}, feature {} is {} (NaN and infinite features cannot be trained on)", k / d, k % d, x.values[k]),
            "impute or drop those samples before saving",
        ));
    }
    let features = if transpose { nhwc_to_nchw(&x.values, n, shape[1], shape[2], shape[0]) } else { x.values };
    Ok(Samples { features, labels, shape, classes, domains: Vec::new(), background: Vec::new() })
}

/// Checks `classes` (at most 256: labels are stored as bytes).
fn check_classes(classes: usize, path: &Path) -> Result<(), DataError> {
    if classes == 0 || classes > 256 {
        return Err(DataError::Corrupt {
            path: path.to_path_buf(),
            problem: format!("`classes: {classes}` is not in 1..=256"),
            fix: "set `classes:` to the number of classes".into(),
        });
    }
    Ok(())
}

impl NpzSpec {
    fn origin(&self, array: &str) -> Origin {
        Origin { path: self.file.clone(), array: Some(array.to_string()) }
    }

    fn open(&self) -> Result<npyz::npz::NpzArchive<std::io::BufReader<std::fs::File>>, DataError> {
        npyz::npz::NpzArchive::open(&self.file).map_err(|e| Origin { path: self.file.clone(), array: None }.io(e))
    }

    fn array<'a, R: Read + std::io::Seek>(
        &self,
        npz: &'a mut npyz::npz::NpzArchive<R>,
        name: &str,
    ) -> Result<NpyFile<npyz::zip::read::ZipFile<'a>>, DataError> {
        let names: Vec<String> = npz.array_names().map(str::to_string).collect();
        match npz.by_name(name) {
            Ok(Some(f)) => Ok(f),
            Ok(None) => Err(self.origin(name).corrupt(
                "not in the archive",
                format!("the archive holds {}; name the arrays with `x_train:`, `y_train:`, `x_test:`, `y_test:`", names.join(", ")),
            )),
            Err(e) => Err(self.origin(name).io(e)),
        }
    }
}

fn same_shape(train: &Samples, test: &Samples, test_at: &Origin) -> Result<(), DataError> {
    if train.shape != test.shape {
        return Err(
            test_at.corrupt(format!("test samples have shape {:?}, training samples {:?}", test.shape, train.shape), "both splits need the same sample shape")
        );
    }
    Ok(())
}

fn open_npy(path: &Path) -> Result<NpyFile<std::io::BufReader<std::fs::File>>, DataError> {
    let origin = Origin { path: path.to_path_buf(), array: None };
    let file = std::fs::File::open(path).map_err(|e| origin.io(e))?;
    NpyFile::new(std::io::BufReader::new(file)).map_err(|e| origin.io(e))
}

impl NpySpec {
    fn origin(path: &Path) -> Origin {
        Origin { path: path.to_path_buf(), array: None }
    }
}

/// Writes `splits` as one `.npz` archive (`x_train` [N, …sample shape] float32, `y_train` [N]
/// int64, `x_test`, `y_test`), the layout [`NpzSpec`] reads by default.
pub fn write_npz(splits: &Splits, path: &Path) -> std::io::Result<()> {
    crate::fsutil::atomic_write(path, |w| {
        {
            let mut npz = npyz::npz::NpzWriter::new(&mut *w);
            for (name, s) in [("train", &splits.train), ("test", &splits.test)] {
                let opts = npyz::zip::write::FileOptions::default().compression_method(npyz::zip::CompressionMethod::Stored);
                let mut shape = vec![s.len() as u64];
                shape.extend(s.shape.iter().map(|&d| d as u64));
                let mut x = npz.array::<f32>(&format!("x_{name}"), opts)?.default_dtype().shape(&shape).begin_nd()?;
                x.extend(s.features.iter().copied())?;
                x.finish()?;
                let mut y = npz.array::<i64>(&format!("y_{name}"), opts)?.default_dtype().shape(&[s.len() as u64]).begin_nd()?;
                y.extend(s.labels.iter().map(|&l| l as i64))?;
                y.finish()?;
            }
            npz.zip_writer().finish().map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok(())
    })
}

/// Writes `samples` as `x_<name>.npy` (float32) and `y_<name>.npy` (int64) in `dir`.
pub fn write_npy(samples: &Samples, dir: &Path, name: &str) -> std::io::Result<()> {
    let mut shape = vec![samples.len() as u64];
    shape.extend(samples.shape.iter().map(|&d| d as u64));
    crate::fsutil::atomic_write(&dir.join(format!("x_{name}.npy")), |w| {
        let mut x = npyz::WriteOptions::<f32>::new().default_dtype().shape(&shape).writer(w).begin_nd()?;
        x.extend(samples.features.iter().copied())?;
        x.finish()
    })?;
    crate::fsutil::atomic_write(&dir.join(format!("y_{name}.npy")), |w| {
        let mut y = npyz::WriteOptions::<i64>::new().default_dtype().shape(&[samples.len() as u64]).writer(w).begin_nd()?;
        y.extend(samples.labels.iter().map(|&l| l as i64))?;
        y.finish()
    })
}

impl Source for NpzSpec {
    fn description(&self) -> String {
        format!("NumPy archive {}", self.file.display())
    }

    /// Sample shape and classes, from the training features' header alone.
    fn input_shape(&self) -> Result<(Vec<usize>, usize), DataError> {
        check_classes(self.classes, &self.file)?;
        let mut npz = self.open()?;
        let x = self.array(&mut npz, &self.x_train)?;
        Ok((header_sample_shape(&x, self.layout, &self.origin(&self.x_train))?, self.classes))
    }

    /// Loads and checks both splits.
    fn load(&self, _root: &Path) -> Result<Splits, DataError> {
        check_classes(self.classes, &self.file)?;
        let mut npz = self.open()?;
        let mut split = |x_name: &str, y_name: &str| -> Result<Samples, DataError> {
            let (x_at, y_at) = (self.origin(x_name), self.origin(y_name));
            let x = read_features(self.array(&mut npz, x_name)?, &x_at)?;
            let y = read_labels(self.array(&mut npz, y_name)?, &y_at)?;
            assemble(x, &x_at, y, &y_at, self.classes, self.layout)
        };
        let train = split(&self.x_train, &self.y_train)?;
        let test = split(&self.x_test, &self.y_test)?;
        same_shape(&train, &test, &self.origin(&self.x_test))?;
        Ok(Splits { train, test })
    }
}

impl Source for NpySpec {
    fn description(&self) -> String {
        format!("NumPy arrays {}, …", self.x_train.display())
    }

    /// Sample shape and classes, from the training features' header alone.
    fn input_shape(&self) -> Result<(Vec<usize>, usize), DataError> {
        check_classes(self.classes, &self.x_train)?;
        let x = open_npy(&self.x_train)?;
        Ok((header_sample_shape(&x, self.layout, &Self::origin(&self.x_train))?, self.classes))
    }

    /// Loads and checks both splits.
    fn load(&self, _root: &Path) -> Result<Splits, DataError> {
        check_classes(self.classes, &self.x_train)?;
        let split = |xp: &Path, yp: &Path| -> Result<Samples, DataError> {
            let (x_at, y_at) = (Self::origin(xp), Self::origin(yp));
            let x = read_features(open_npy(xp)?, &x_at)?;
            let y = read_labels(open_npy(yp)?, &y_at)?;
            assemble(x, &x_at, y, &y_at, self.classes, self.layout)
        };
        let train = split(&self.x_train, &self.y_train)?;
        let test = split(&self.x_test, &self.y_test)?;
        same_shape(&train, &test, &Self::origin(&self.x_test))?;
        Ok(Splits { train, test })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_order_is_reordered() {
        // 2×3 array [[0,1,2],[3,4,5]] stored column-major: 0,3,1,4,2,5
        assert_eq!(fortran_to_c(vec![0, 3, 1, 4, 2, 5], &[2, 3]), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn nhwc_transposes_to_nchw() {
        // one 1×2 image with 3 channels: pixels (r,g,b) = (0,1,2), (3,4,5)
        assert_eq!(nhwc_to_nchw(&[0., 1., 2., 3., 4., 5.], 1, 1, 2, 3), vec![0., 3., 1., 4., 2., 5.]);
    }

    #[test]
    fn layout_is_inferred_only_when_unambiguous() {
        let at = Origin { path: "x.npy".into(), array: None };
        assert_eq!(sample_shape(&[5, 32, 32, 3], None, &at).unwrap(), (vec![3, 32, 32], true));
        assert_eq!(sample_shape(&[5, 3, 32, 32], None, &at).unwrap(), (vec![3, 32, 32], false));
        assert!(sample_shape(&[5, 3, 8, 3], None, &at).is_err());
        assert_eq!(sample_shape(&[5, 3, 8, 3], Some(Layout::Nhwc), &at).unwrap(), (vec![3, 3, 8], true));
        assert_eq!(sample_shape(&[5, 28, 28], None, &at).unwrap(), (vec![1, 28, 28], false));
    }
}
