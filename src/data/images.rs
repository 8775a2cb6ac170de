//! Image folders (`ImageFolder`), torchvision's layout: `train/<class>/<image>` and
//! `test/<class>/<image>`, one folder per class, classes numbered in the sorted order of their
//! folder names (as `torchvision.datasets.ImageFolder` does), images in the sorted order of their
//! file names. PNG and JPEG files are decoded with the `image` crate, then brought to
//! `size`×`size` as torchvision's `Resize(size)` followed by `CenterCrop(size)` does (the shorter
//! side scaled to `size` with bilinear filtering, the centre cropped), and scaled to [0, 1].
//! Other files (`.DS_Store`, notes) are ignored; a file with an image extension that does not
//! decode, an empty class folder or a test class unknown to the training folder is an error.

use std::path::{Path, PathBuf};

use image::ImageEncoder;
use image::imageops::FilterType;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::source::Source;
use super::{DataError, Samples, Splits};

/// Colour handling of an image folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Color {
    /// Three channels (R, G, B); grey images are replicated.
    #[default]
    Rgb,
    /// One channel (luma); colour images are converted.
    Gray,
}

/// Training and test image folders.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "ImageFolder")]
pub struct ImageFolderSpec {
    /// Folder with one sub-folder per class (relative paths from the working directory).
    pub train: PathBuf,
    /// Folder with the test images, sub-folders named as the training classes.
    pub test: PathBuf,
    /// Height and width of every sample after resizing and centre cropping.
    pub size: usize,
    /// `Rgb` (default) or `Gray`.
    #[serde(default)]
    pub color: Color,
}

/// File extensions decoded (lower case).
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];
/// Extensions torchvision reads that cohort does not decode: an error rather than a silent skip.
const OTHER_IMAGE_EXTENSIONS: [&str; 6] = ["ppm", "bmp", "pgm", "tif", "tiff", "webp"];

fn missing(path: &Path) -> DataError {
    DataError::Missing {
        dataset: "image folder",
        path: path.to_path_buf(),
        fix: "check the path in the experiment file: a folder with one sub-folder of images per class".into(),
    }
}

fn corrupt(path: &Path, problem: impl Into<String>, fix: impl Into<String>) -> DataError {
    DataError::Corrupt { path: path.to_path_buf(), problem: problem.into(), fix: fix.into() }
}

/// Entries of `dir` that are not hidden, sorted by name.
fn listing(dir: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    let read = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => missing(dir),
        _ => DataError::io(dir, e),
    })?;
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The class folders of `dir`, sorted by name.
fn class_folders(dir: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    let classes: Vec<_> = listing(dir)?.into_iter().filter(|(_, p)| p.is_dir()).collect();
    if classes.is_empty() {
        return Err(corrupt(dir, "no class folders", "put each class's images in a sub-folder named after the class"));
    }
    Ok(classes)
}

/// The image files of one class folder, sorted by name.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut files = Vec::new();
    for (name, path) in listing(dir)? {
        let ext = Path::new(&name).extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
        if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            files.push(path);
        } else if OTHER_IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            return Err(corrupt(&path, format!("`.{ext}` images are not read (PNG and JPEG are)"), "convert the images to PNG"));
        }
    }
    if files.is_empty() {
        return Err(corrupt(dir, "empty class folder: no PNG or JPEG image", "add the class's images or remove the folder"));
    }
    Ok(files)
}

impl ImageFolderSpec {
    fn channels(&self) -> usize {
        if self.color == Color::Gray { 1 } else { 3 }
    }

    fn check_size(&self) -> Result<(), DataError> {
        if self.size == 0 {
            return Err(corrupt(&self.train, "`size: 0` leaves no pixels", "set `size:` to the height and width the images are brought to, e.g. 32"));
        }
        Ok(())
    }

    /// One decoded sample: `channels × size × size` values in [0, 1], planes in order.
    fn decode(&self, path: &Path) -> Result<Vec<f32>, DataError> {
        let img = image::io::Reader::open(path)
            .map_err(|e| DataError::io(path, e))?
            .with_guessed_format()
            .map_err(|e| DataError::io(path, e))?
            .decode()
            .map_err(|e| corrupt(path, format!("not a readable image ({e})"), "replace or delete the file"))?;
        let (w, h) = (img.width() as usize, img.height() as usize);
        let s = self.size;
        let img = if (w, h) == (s, s) {
            img
        } else {
            // torchvision Resize(s): the shorter side becomes s, the longer int(s · long / short)
            let (rw, rh) = if w <= h { (s, s * h / w) } else { (s * w / h, s) };
            let resized = img.resize_exact(rw as u32, rh as u32, FilterType::Triangle);
            // CenterCrop(s): offsets rounded as torchvision does
            let top = ((rh - s) as f64 / 2.0).round() as u32;
            let left = ((rw - s) as f64 / 2.0).round() as u32;
            resized.crop_imm(left, top, s as u32, s as u32)
        };
        let plane = s * s;
        Ok(match self.color {
            Color::Gray => img.to_luma8().into_raw().into_iter().map(|p| p as f32 / 255.0).collect(),
            Color::Rgb => {
                let rgb = img.to_rgb8().into_raw();
                let mut out = vec![0.0; 3 * plane];
                for (p, px) in rgb.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        out[c * plane + p] = px[c] as f32 / 255.0;
                    }
                }
                out
            }
        })
    }

    /// Reads one split's folder; `names` are the training classes (their order is the labels').
    fn read(&self, dir: &Path, names: &[String]) -> Result<Samples, DataError> {
        let mut items: Vec<(PathBuf, u8)> = Vec::new();
        for (name, path) in class_folders(dir)? {
            let Some(label) = names.iter().position(|n| *n == name) else {
                return Err(corrupt(
                    &path,
                    format!("class folder `{name}` is not one of the training classes ({})", names.join(", ")),
                    "name the test folders as the training folders",
                ));
            };
            items.extend(image_files(&path)?.into_iter().map(|f| (f, label as u8)));
        }
        let decoded: Vec<Vec<f32>> = items.par_iter().map(|(p, _)| self.decode(p)).collect::<Result<_, _>>()?;
        Ok(Samples {
            features: decoded.concat(),
            labels: items.iter().map(|(_, l)| *l).collect(),
            shape: vec![self.channels(), self.size, self.size],
            classes: names.len(),
            domains: Vec::new(),
            background: Vec::new(),
        })
    }
}

/// Writes image samples (pixels in [0, 1]) as `dir/<class>/<index>.png`, the layout
/// [`ImageFolderSpec`] reads; class folders are named by zero-padded index so that their sorted
/// order is the label order.
pub fn write_image_folder(samples: &Samples, dir: &Path) -> Result<(), DataError> {
    let [c, h, w] = samples.shape[..] else {
        return Err(corrupt(dir, format!("samples of shape {:?} are not images", samples.shape), "export this data set as csv, npz or npy"));
    };
    if c != 1 && c != 3 {
        return Err(corrupt(dir, format!("{c}-channel images cannot be written as PNG"), "export this data set as npz"));
    }
    let digits = (samples.classes.max(2) - 1).to_string().len();
    (0..samples.len()).into_par_iter().try_for_each(|i| {
        let row = samples.row(i);
        let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        let folder = dir.join(format!("{:0digits$}", samples.labels[i]));
        let path = folder.join(format!("{i:06}.png"));
        let plane = h * w;
        let bytes: Vec<u8> =
            if c == 1 { row.iter().map(|&v| byte(v)).collect() } else { (0..plane).flat_map(|p| (0..3).map(move |ch| byte(row[ch * plane + p]))).collect() };
        let color = if c == 1 { image::ColorType::L8 } else { image::ColorType::Rgb8 };
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&bytes, w as u32, h as u32, color)
            .map_err(|e| corrupt(&path, format!("PNG encoding failed: {e}"), "report this as a bug"))?;
        crate::fsutil::atomic_write_bytes(&path, &png).map_err(|e| DataError::io(&path, e))
    })
}

impl Source for ImageFolderSpec {
    fn description(&self) -> String {
        format!("image folders {} and {} ({}×{})", self.train.display(), self.test.display(), self.size, self.size)
    }

    /// Sample shape and classes, from the training folder's listing alone.
    fn input_shape(&self) -> Result<(Vec<usize>, usize), DataError> {
        self.check_size()?;
        let classes = class_folders(&self.train)?.len();
        Ok((vec![self.channels(), self.size, self.size], classes))
    }

    /// Loads and checks both folders.
    fn load(&self, _root: &Path) -> Result<Splits, DataError> {
        self.check_size()?;
        let names: Vec<String> = class_folders(&self.train)?.into_iter().map(|(n, _)| n).collect();
        if names.len() > 256 {
            return Err(corrupt(&self.train, format!("{} class folders; at most 256 classes are supported", names.len()), "merge or drop classes"));
        }
        Ok(Splits { train: self.read(&self.train, &names)?, test: self.read(&self.test, &names)? })
    }
}
