//! Mini-batches and augmentation, drawn from the run's random streams ([`crate::random`]).

use super::Samples;
use super::spec::Augment;
use crate::random::legacy::LegacyRandomState;
use crate::random::{Stream, shuffled};

/// The sample indices of each mini-batch of an epoch: a seeded shuffle cut into `batch_size`
/// pieces; the last batch is smaller when `batch_size` does not divide `n` (kept, as
/// PyTorch's `DataLoader` does by default).
pub fn epoch_batches(n: usize, batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    shuffled(n, seed, Stream::Shuffle, epoch).chunks(batch_size).map(<[usize]>::to_vec).collect()
}

/// The evaluation batches: samples in order.
pub fn eval_batches(n: usize, batch_size: usize) -> Vec<Vec<usize>> {
    (0..n).collect::<Vec<_>>().chunks(batch_size).map(<[usize]>::to_vec).collect()
}

/// A mini-batch ready to become tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `[B, ...sample shape]` values, row-major.
    pub inputs: Vec<f32>,
    /// Labels as i64 (what burn's cross-entropy takes).
    pub labels: Vec<i64>,
    /// `[B, ...sample shape]`.
    pub shape: Vec<usize>,
    /// Domain of each sample (0 for data sets without domains).
    pub domains: Vec<u8>,
    /// Index of each sample in its split (what recorded outputs are looked up by).
    pub indices: Vec<usize>,
    /// Per trained node, its own augmented view of the same samples (`views: PerNode`, KDCL);
    /// nodes not listed (and fixed sources) see `inputs`.
    pub views: std::collections::HashMap<usize, Vec<f32>>,
}

/// Gathers the samples `idx`, each augmented by `augment` in order with draws from `rng`
/// (sample by sample; none without `rng`):
/// - `Jitter(pixels: j)`: a shift by `choice(2j+1) − j` per spatial axis (rows, then columns);
/// - `RandomCrop(padding: p)`: a window at `(choice(2p+1), choice(2p+1))` (top, left) of the
///   image padded by `p`, i.e. a shift by `p − top`, `p − left`;
/// - `HorizontalFlip(p)`: a mirror image when `rand() < p`.
///
/// Uncovered pixels get the background value ([`Samples::background`]).
pub fn gather(s: &Samples, idx: &[usize], augment: &[Augment], rng: Option<&mut LegacyRandomState>) -> Batch {
    let mut inputs = Vec::with_capacity(idx.len() * s.row_len());
    match rng.filter(|_| !augment.is_empty()) {
        None => idx.iter().for_each(|&i| inputs.extend_from_slice(s.row(i))),
        Some(rng) => {
            for &i in idx {
                let mut row = s.row(i).to_vec();
                for a in augment {
                    row = apply(a, row, s, rng);
                }
                inputs.extend(row);
            }
        }
    }
    let mut shape = vec![idx.len()];
    shape.extend_from_slice(&s.shape);
    Batch {
        inputs,
        labels: idx.iter().map(|&i| s.labels[i] as i64).collect(),
        shape,
        domains: idx.iter().map(|&i| s.domain(i)).collect(),
        indices: idx.to_vec(),
        views: Default::default(),
    }
}

/// One augmentation of one sample (see [`gather`]).
fn apply(a: &Augment, row: Vec<f32>, s: &Samples, rng: &mut LegacyRandomState) -> Vec<f32> {
    match a {
        Augment::Jitter { pixels } => {
            let mut shifts = [0isize; 2];
            let axes = if s.shape.len() == 3 { 2 } else { 1 };
            for sh in shifts.iter_mut().take(axes) {
                *sh = rng.choice(2 * pixels + 1) as isize - *pixels as isize;
            }
            shift(&row, &s.shape, shifts, &s.background)
        }
        Augment::RandomCrop { padding, .. } => {
            let p = *padding as isize;
            let top = rng.choice(2 * padding + 1) as isize;
            let left = rng.choice(2 * padding + 1) as isize;
            shift(&row, &s.shape, [p - top, p - left], &s.background)
        }
        Augment::HorizontalFlip { p } => {
            if rng.rand() < p.get() {
                flip(&row, &s.shape)
            } else {
                row
            }
        }
    }
}

/// `row` (an image `[C, H, W]`) mirrored left-right: `out[c][y][x] = row[c][y][W − 1 − x]`.
pub fn flip(row: &[f32], shape: &[usize]) -> Vec<f32> {
    let w = shape.last().copied().unwrap_or(row.len()).max(1);
    row.chunks(w).flat_map(|r| r.iter().rev().copied()).collect()
}

/// `row` moved by `[dy, dx]` (images `[C, H, W]`) or `[dx, _]` (sequences `[L]`):
/// `out[y][x] = row[y − dy][x − dx]`, and where that falls outside the input, channel c's
/// `background[c]` (0 when `background` is empty).
pub fn shift(row: &[f32], shape: &[usize], d: [isize; 2], background: &[f32]) -> Vec<f32> {
    let (c, h, w, dy, dx) = match shape {
        [c, h, w] => (*c, *h as isize, *w as isize, d[0], d[1]),
        _ => (1, 1, row.len() as isize, 0, d[0]),
    };
    let mut out = vec![0.0; row.len()];
    for ch in 0..c {
        let base = ch * (h * w) as usize;
        out[base..base + (h * w) as usize].fill(background.get(ch).copied().unwrap_or(0.0));
        for y in 0..h {
            let sy = y - dy;
            if !(0..h).contains(&sy) {
                continue;
            }
            for x in 0..w {
                let sx = x - dx;
                if (0..w).contains(&sx) {
                    out[base + (y * w + x) as usize] = row[base + (sy * w + sx) as usize];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_are_seeded_and_complete() {
        let a = epoch_batches(10, 4, 7, 0);
        assert_eq!(a, epoch_batches(10, 4, 7, 0));
        assert_ne!(a, epoch_batches(10, 4, 7, 1));
        assert_ne!(a, epoch_batches(10, 4, 8, 0));
        let mut all: Vec<usize> = a.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
    }

    #[test]
    fn shift_moves_pixels_with_zero_fill() {
        // 1×2×3 image: rows [1 2 3] [4 5 6]
        let img = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(shift(&img, &[1, 2, 3], [0, 1], &[]), vec![0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
        assert_eq!(shift(&img, &[1, 2, 3], [1, 0], &[]), vec![0.0, 0.0, 0.0, 1.0, 2.0, 3.0]);
        assert_eq!(shift(&img, &[1, 2, 3], [0, -1], &[]), vec![2.0, 3.0, 0.0, 5.0, 6.0, 0.0]);
        assert_eq!(shift(&[1.0, 2.0, 3.0], &[3], [-1, 0], &[]), vec![2.0, 3.0, 0.0]);
    }

    /// Regression: jitter after standardisation filled the border with 0, the *mean* pixel,
    /// instead of the background; the border now gets each channel's background value.
    #[test]
    fn shift_fills_with_each_channels_background() {
        // 2×1×2 image: channel 0 [1 2], channel 1 [3 4]; backgrounds −0.5 and −2
        let img = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(shift(&img, &[2, 1, 2], [0, 1], &[-0.5, -2.0]), vec![-0.5, 1.0, -2.0, 3.0]);
        assert_eq!(shift(&img, &[2, 1, 2], [1, 0], &[-0.5, -2.0]), vec![-0.5, -0.5, -2.0, -2.0]);
    }
}
