//! The procedural MNIST-1D data set (Greydanus, "Scaling down deep learning", 2020), generated
//! in-process so the quick start needs no download.
//!
//! A faithful port of `mnist1d.data.make_dataset` (package `mnist1d` 0.0.2): numpy's legacy RNG
//! ([`LegacyRandomState`]), `scipy.interpolate.interp1d(kind="linear")` and
//! `scipy.ndimage.gaussian_filter(σ, mode="reflect", truncate=4)`. Computed in f64 and stored as
//! f32, the result agrees with numpy's output to f32 rounding (`tests/it/data.rs` checks labels
//! exactly and values to 1e-5 against files written by the original package).

use serde::{Deserialize, Serialize};

use super::source::{Problem, Source};
use super::{DataError, Samples, Splits};
use crate::random::legacy::LegacyRandomState;

/// The ten 12-point digit templates d0…d9 of the original code.
const TEMPLATES: [[f64; 12]; 10] = [
    [5.0, 6.0, 6.5, 6.75, 7.0, 7.0, 7.0, 7.0, 6.75, 6.5, 6.0, 5.0],
    [5.0, 3.0, 3.0, 3.4, 3.8, 4.2, 4.6, 5.0, 5.4, 5.8, 5.0, 5.0],
    [5.0, 6.0, 6.5, 6.5, 6.0, 5.25, 4.75, 4.0, 3.5, 3.5, 4.0, 5.0],
    [5.0, 6.0, 6.5, 6.5, 6.0, 5.0, 5.0, 6.0, 6.5, 6.5, 6.0, 5.0],
    [5.0, 4.4, 3.8, 3.2, 2.6, 2.6, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0],
    [5.0, 3.0, 3.0, 3.0, 3.0, 5.0, 6.0, 6.5, 6.5, 6.0, 4.5, 5.0],
    [5.0, 4.0, 3.5, 3.25, 3.0, 3.0, 3.0, 3.0, 3.25, 3.5, 4.0, 5.0],
    [5.0, 7.0, 7.0, 6.6, 6.2, 5.8, 5.4, 5.0, 4.6, 4.2, 5.0, 5.0],
    [5.0, 4.0, 3.5, 3.5, 4.0, 5.0, 5.0, 4.0, 3.5, 3.5, 4.0, 5.0],
    [5.0, 4.0, 3.5, 3.5, 4.0, 5.0, 5.0, 5.0, 5.0, 4.7, 4.3, 5.0],
];
const TEMPLATE_LEN: usize = 12;
/// Classes of MNIST-1D.
pub const CLASSES: usize = 10;

/// Generator parameters; defaults are the published data set's (`get_dataset_args()`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mnist1dParams {
    /// Total samples (train + test); must be a multiple of 10 (equal count per class).
    pub num_samples: usize,
    /// Fraction of the shuffled samples used for training (the rest is the test split).
    pub train_split: f64,
    /// Zeros appended to a template: uniform integer in `[padding.0, padding.1]`.
    pub padding: (usize, usize),
    /// Amplitude scaling: factor `1 + scale_coeff·(U − 0.5)`.
    pub scale_coeff: f64,
    /// Circular shift to the right by `choice(max_translation)` positions.
    pub max_translation: usize,
    /// Std of the Gaussian-smoothed (σ = 2) noise that fills the padding.
    pub corr_noise_scale: f64,
    /// Std of the i.i.d. noise added everywhere.
    pub iid_noise_scale: f64,
    /// Shear amplitude: subtracts `shear_scale·(U − 0.5)·linspace(−0.5, 0.5)`.
    pub shear_scale: f64,
    /// Length of the final sequences (features per sample).
    pub final_seq_length: usize,
    /// numpy seed of the whole generation.
    pub seed: u32,
}

impl Default for Mnist1dParams {
    fn default() -> Self {
        Self {
            num_samples: 5000,
            train_split: 0.8,
            padding: (36, 60),
            scale_coeff: 0.4,
            max_translation: 48,
            corr_noise_scale: 0.25,
            iid_noise_scale: 0.02,
            shear_scale: 0.75,
            final_seq_length: 40,
            seed: 42,
        }
    }
}

impl Mnist1dParams {
    /// Checks ranges; the message names the offending field.
    pub fn check(&self) -> Result<(), String> {
        if self.num_samples == 0 || !self.num_samples.is_multiple_of(CLASSES) {
            return Err(format!("num_samples must be a positive multiple of 10, got {}", self.num_samples));
        }
        if !(self.train_split > 0.0 && self.train_split < 1.0) {
            return Err(format!("train_split must lie in (0, 1), got {}", self.train_split));
        }
        if self.padding.0 > self.padding.1 {
            return Err(format!("padding must be (low, high) with low <= high, got {:?}", self.padding));
        }
        if self.max_translation == 0 || self.max_translation > TEMPLATE_LEN + self.padding.1 {
            return Err(format!("max_translation must lie in 1..={} (the dilated length), got {}", TEMPLATE_LEN + self.padding.1, self.max_translation));
        }
        if self.final_seq_length < 2 {
            return Err("final_seq_length must be at least 2".into());
        }
        for (name, v) in [
            ("scale_coeff", self.scale_coeff),
            ("corr_noise_scale", self.corr_noise_scale),
            ("iid_noise_scale", self.iid_noise_scale),
            ("shear_scale", self.shear_scale),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be finite and >= 0, got {v}"));
            }
        }
        Ok(())
    }
}

/// `np.linspace(start, stop, n)` with numpy's arithmetic (`i·step + start`, last = stop).
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![start];
    }
    let step = (stop - start) / (n - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * step + start).collect();
    v[n - 1] = stop;
    v
}

/// `interp1d(linspace(0,1,len(x)), x, kind="linear")(linspace(0,1,n))`, scipy's arithmetic.
fn interpolate(x: &[f64], n: usize) -> Vec<f64> {
    let xs = linspace(0.0, 1.0, x.len());
    linspace(0.0, 1.0, n)
        .into_iter()
        .map(|t| {
            // searchsorted(side="left"), clipped to [1, len-1]
            let hi = xs.partition_point(|&v| v < t).clamp(1, xs.len() - 1);
            let lo = hi - 1;
            let slope = (x[hi] - x[lo]) / (xs[hi] - xs[lo]);
            slope * (t - xs[lo]) + x[lo]
        })
        .collect()
}

/// `scipy.ndimage.gaussian_filter1d(x, sigma, mode="reflect", truncate=4.0)`.
fn gaussian_filter(x: &[f64], sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as isize;
    let mut w: Vec<f64> = (-radius..=radius).map(|i| (-0.5 / (sigma * sigma) * (i * i) as f64).exp()).collect();
    let total: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= total);
    let n = x.len() as isize;
    // scipy's "reflect" (half-sample symmetric): d c b a | a b c d | d c b a
    let at = |mut i: isize| -> f64 {
        let period = 2 * n;
        i = i.rem_euclid(period);
        if i >= n {
            i = period - 1 - i;
        }
        x[i as usize]
    };
    (0..n).map(|i| (-radius..=radius).map(|k| w[(k + radius) as usize] * at(i + k)).sum()).collect()
}

/// Whitened templates: minus mean, over population std, minus first element, over 6.
fn templates() -> [[f64; TEMPLATE_LEN]; CLASSES] {
    TEMPLATES.map(|d| {
        let mean = d.iter().sum::<f64>() / TEMPLATE_LEN as f64;
        let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / TEMPLATE_LEN as f64;
        let std = var.sqrt();
        let white = d.map(|v| (v - mean) / std);
        let first = white[0];
        white.map(|v| (v - first) / 6.0)
    })
}

/// One sample: the original `transform(x, t, args)` in its RNG draw order.
fn transform(template: &[f64], p: &Mnist1dParams, rng: &mut LegacyRandomState) -> Vec<f64> {
    let (low, high) = p.padding;
    let pad = low + (rng.rand() * (high - low + 1) as f64) as usize;
    let mut x: Vec<f64> = template.iter().map(|v| v + 1e-8).collect();
    x.resize(template.len() + pad, 0.0);
    let dilated_len = TEMPLATE_LEN + high;
    let mut x = interpolate(&x, dilated_len);
    let scale = 1.0 + p.scale_coeff * (rng.rand() - 0.5);
    x.iter_mut().for_each(|v| *v *= scale);
    let k = rng.choice(p.max_translation);
    x.rotate_right(k);
    let noise: Vec<f64> = rng.randn_vec(dilated_len).into_iter().map(|v| p.corr_noise_scale * v).collect();
    let corr = gaussian_filter(&noise, 2.0);
    for (v, c) in x.iter_mut().zip(corr) {
        if *v == 0.0 {
            *v = c;
        }
    }
    for v in x.iter_mut() {
        *v += p.iid_noise_scale * rng.randn();
    }
    let coeff = p.shear_scale * (rng.rand() - 0.5);
    for (v, s) in x.iter_mut().zip(linspace(-0.5, 0.5, dilated_len)) {
        *v -= coeff * s;
    }
    interpolate(&x, p.final_seq_length)
}

/// Generates the data set (`make_dataset`): 10 classes in order, `num_samples/10` each, one
/// permutation, global standardisation, then the first `⌊num_samples·train_split⌋` are train.
///
/// Panics if `params.check()` fails.
pub fn generate(params: &Mnist1dParams) -> Splits {
    params.check().expect("invalid MNIST-1D parameters");
    let mut rng = LegacyRandomState::new(params.seed);
    let per_class = params.num_samples / CLASSES;
    let mut xs = Vec::with_capacity(params.num_samples);
    let mut ys = Vec::with_capacity(params.num_samples);
    for (label, t) in templates().iter().enumerate() {
        for _ in 0..per_class {
            xs.push(transform(t, params, &mut rng));
            ys.push(label as u8);
        }
    }
    let order = rng.permutation(params.num_samples);
    let n_values = (params.num_samples * params.final_seq_length) as f64;
    let mean = xs.iter().flatten().sum::<f64>() / n_values;
    let std = (xs.iter().flatten().map(|v| (v - mean).powi(2)).sum::<f64>() / n_values).sqrt();
    let split = (params.num_samples as f64 * params.train_split) as usize;
    let build = |idx: &[usize]| Samples {
        features: idx.iter().flat_map(|&i| xs[i].iter().map(|v| ((v - mean) / std) as f32)).collect(),
        labels: idx.iter().map(|&i| ys[i]).collect(),
        shape: vec![params.final_seq_length],
        classes: CLASSES,
        domains: Vec::new(),
        background: Vec::new(),
    };
    Splits { train: build(&order[..split]), test: build(&order[split..]) }
}

impl Source for Mnist1dParams {
    fn description(&self) -> String {
        format!("MNIST-1D (generated, {} samples, seed {})", self.num_samples, self.seed)
    }
    fn input_shape(&self) -> Result<(Vec<usize>, usize), DataError> {
        Ok((vec![self.final_seq_length], 10))
    }
    fn problems(&self) -> Vec<Problem> {
        self.check().err().map(|m| (None, m, None)).into_iter().collect()
    }
    fn load(&self, _root: &std::path::Path) -> Result<Splits, DataError> {
        Ok(generate(self))
    }
    fn standardized_already(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_filter_preserves_constants_and_mass() {
        let x = vec![1.5; 20];
        for v in gaussian_filter(&x, 2.0) {
            assert!((v - 1.5).abs() < 1e-12);
        }
    }

    #[test]
    fn interpolate_is_identity_on_same_grid() {
        let x = [0.0, 1.0, 4.0, 9.0];
        assert_eq!(interpolate(&x, 4), x.to_vec());
    }
}
