//! Rotated MNIST, DomainBed protocol (Gulrajani & Lopez-Paz 2021; `docs/data.md`): the 70 000
//! MNIST images (train then test) are shuffled with a seed and dealt round-robin into six
//! domains; domain `d` is rotated by `15·d` degrees (0, 15, …, 75), bilinear, zero fill. One
//! domain is held out as the test split (leave-one-domain-out); the other five form the
//! training split, each sample tagged with its domain.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::source::{Problem, Source};
use super::{DataError, Samples, Splits};
use crate::random::legacy::LegacyRandomState;

/// Rotated MNIST's split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Rotated")]
pub struct RotatedSpec {
    /// Held-out domain, 0..=5 (angle 15·d degrees).
    pub test_domain: usize,
    /// Seed of the shuffle that deals the 70 000 images into domains (fixed across runs, so
    /// every seed of an experiment sees the same domains).
    #[serde(default)]
    pub shuffle_seed: u32,
    /// Folder of the MNIST IDX files; default `<data root>/mnist`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

impl Source for RotatedSpec {
    fn description(&self) -> String {
        format!("Rotated MNIST (test domain {}°)", angle(self.test_domain))
    }
    fn input_shape(&self) -> Result<(Vec<usize>, usize), DataError> {
        Ok((vec![1, 28, 28], 10))
    }
    fn domains(&self) -> Vec<usize> {
        (0..DOMAINS).filter(|&d| d != self.test_domain).collect()
    }
    fn problems(&self) -> Vec<Problem> {
        if self.test_domain < DOMAINS {
            return Vec::new();
        }
        vec![(
            Some("test_domain"),
            format!("Rotated MNIST has domains 0..={}, not {}", DOMAINS - 1, self.test_domain),
            Some("domain d is rotated by 15·d degrees; e.g. `test_domain: 5` holds out 75°".to_string()),
        )]
    }
    fn load(&self, root: &Path) -> Result<Splits, DataError> {
        let mnist = super::idx::load_mnist(&self.dir.clone().unwrap_or_else(|| root.join("mnist")))?;
        Ok(domains(mnist, self.test_domain, self.shuffle_seed))
    }
}

/// Number of domains.
pub const DOMAINS: usize = 6;

/// Rotation of domain `d` in degrees.
pub fn angle(d: usize) -> f64 {
    15.0 * d as f64
}

/// Rotates a `h × w` single-channel image counter-clockwise (as displayed, rows downward) by
/// `degrees` about its centre `((w−1)/2, (h−1)/2)`, bilinear, zero outside — what
/// `torchvision.transforms.functional.rotate(img, degrees, BILINEAR, fill=0)` computes.
///
/// Output pixel p takes the input at `c + R(−θ)(p − c)`:
/// `sx = cx + dx·cosθ − dy·sinθ`, `sy = cy + dx·sinθ + dy·cosθ`.
pub fn rotate(img: &[f32], h: usize, w: usize, degrees: f64) -> Vec<f32> {
    let (s, c) = degrees.to_radians().sin_cos();
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let at = |y: isize, x: isize| -> f64 { if y < 0 || x < 0 || y >= h as isize || x >= w as isize { 0.0 } else { img[y as usize * w + x as usize] as f64 } };
    let mut out = vec![0.0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f64 - cx, y as f64 - cy);
            let sx = cx + dx * c - dy * s;
            let sy = cy + dx * s + dy * c;
            // snap values within rounding of a grid point (exact for multiples of 90°)
            let snap = |v: f64| if (v - v.round()).abs() < 1e-9 { v.round() } else { v };
            let (sx, sy) = (snap(sx), snap(sy));
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as isize, y0 as isize);
            let v = at(y0, x0) * (1.0 - fx) * (1.0 - fy) + at(y0, x0 + 1) * fx * (1.0 - fy) + at(y0 + 1, x0) * (1.0 - fx) * fy + at(y0 + 1, x0 + 1) * fx * fy;
            out[y * w + x] = v as f32;
        }
    }
    out
}

/// Builds the six domains from MNIST's splits and holds out `test_domain`.
pub fn domains(mnist: Splits, test_domain: usize, shuffle_seed: u32) -> Splits {
    let Splits { train, test } = mnist;
    let all = Samples {
        features: [train.features, test.features].concat(),
        labels: [train.labels, test.labels].concat(),
        shape: train.shape,
        classes: train.classes,
        domains: Vec::new(),
        background: Vec::new(),
    };
    let order = LegacyRandomState::new(shuffle_seed).permutation(all.len());
    let (h, w) = (all.shape[1], all.shape[2]);
    let empty =
        || Samples { features: Vec::new(), labels: Vec::new(), shape: all.shape.clone(), classes: all.classes, domains: Vec::new(), background: Vec::new() };
    let (mut train, mut test) = (empty(), empty());
    // samples stay in the dealt order, so the training domains interleave (a `train_limit`
    // keeps every domain)
    for (k, &i) in order.iter().enumerate() {
        let d = k % DOMAINS;
        let p = if d == test_domain { &mut test } else { &mut train };
        p.features.extend(rotate(all.row(i), h, w, angle(d)));
        p.labels.push(all.labels[i]);
        p.domains.push(d as u8);
    }
    Splits { train, test }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(h: usize, w: usize) -> Vec<f32> {
        (0..h * w).map(|i| (i * 7 % 13) as f32).collect()
    }

    #[test]
    fn zero_degrees_is_identity_and_ninety_is_exact() {
        let (h, w) = (6, 6);
        let img = image(h, w);
        assert_eq!(rotate(&img, h, w, 0.0), img);
        // counter-clockwise by 90°: out[y][x] = in[x][w−1−y]
        let r = rotate(&img, h, w, 90.0);
        for y in 0..h {
            for x in 0..w {
                assert_eq!(r[y * w + x], img[x * w + (w - 1 - y)], "({y},{x})");
            }
        }
        // four quarter turns come back
        let mut back = img.clone();
        for _ in 0..4 {
            back = rotate(&back, h, w, 90.0);
        }
        assert_eq!(back, img);
    }

    #[test]
    fn bilinear_interpolates_between_neighbours() {
        // a single bright pixel right of the centre of a 3×3 image, rotated 45°: it moves to a
        // point between grid positions and spreads out, keeping values in [0, 1]
        let mut img = vec![0.0; 9];
        img[5] = 1.0; // (y 1, x 2)
        let r = rotate(&img, 3, 3, 45.0);
        assert!(r.iter().all(|&v| (0.0..=1.0).contains(&v)));
        // the source of the top-right corner (y 0, x 2) is at (cx + √2·cos 45°… ) = on the ray to (1, 2)
        let s = (45f64).to_radians().sin();
        let (sx, sy) = (1.0 + 1.0 * s + 1.0 * s, 1.0 + 1.0 * s - 1.0 * s);
        assert!((sy - 1.0).abs() < 1e-12 && (sx - (1.0 + 2.0 * s)).abs() < 1e-12);
        let fx = sx - 2.0; // beyond the last column: only (1, 2) contributes, weight 1 − fx
        assert!((r[2] as f64 - (1.0 - fx)).abs() < 1e-6, "{} vs {}", r[2], 1.0 - fx);
    }

    #[test]
    fn domains_deal_round_robin_and_hold_one_out() {
        let n = 24;
        let mk = |n: usize| Samples {
            features: (0..n * 4).map(|v| v as f32).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            shape: vec![1, 2, 2],
            classes: 10,
            domains: vec![],
            background: Vec::new(),
        };
        let s = domains(Splits { train: mk(n), test: mk(6) }, 5, 0);
        assert_eq!(s.test.len(), 5);
        assert_eq!(s.train.len(), 25);
        assert!(s.test.domains.iter().all(|&d| d == 5));
        let mut counts = [0; DOMAINS];
        for &d in &s.train.domains {
            counts[d as usize] += 1;
        }
        assert_eq!(counts, [5, 5, 5, 5, 5, 0]);
        // dealt in order: the first training samples cycle through the domains
        assert_eq!(&s.train.domains[..6], &[0, 1, 2, 3, 4, 0]);
        // domain 0 is unrotated: its rows are rows of the original data
        let first = s.train.row(0);
        assert!((first[0] as usize).is_multiple_of(4) && first[1] == first[0] + 1.0);
    }
}
