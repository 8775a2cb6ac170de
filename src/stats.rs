//! The small statistics shared across cohort, each written once: the softmax of a row of logits
//! in f64 (evaluation, SwitOKD's rule, recorded soft targets), the mean ± sample standard
//! deviation over seeds (comparisons, seed bands), and Welch's two-sample test with its 95 %
//! confidence interval (`cohort compare --baseline`), checked against SciPy
//! (`scripts/welch-reference.py`, `tests/fixtures/welch.json`).

/// `softmax(row / t)` in f64 for logits in f32, shifted by the row's maximum.
pub fn softmax_f64(row: &[f32], t: f64) -> Vec<f64> {
    let m = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
    let e: Vec<f64> = row.iter().map(|&v| ((v as f64 - m) / t).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// The softmax ([`softmax_f64`] at T = 1) of every row of `logits` (`[N, classes]` row-major).
pub fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f64> {
    logits.chunks(classes).flat_map(|r| softmax_f64(r, 1.0)).collect()
}

/// The mean and the sample standard deviation (n − 1; 0 for one value) of `v` (non-empty).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let sd = if n > 1 { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
    (mean, sd)
}

/// Welch's unequal-variances comparison of two samples `a` and `b` (e.g. one method's per-seed
/// accuracies against its baseline's).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Welch {
    /// `mean(a) − mean(b)`.
    pub diff: f64,
    /// Its standard error, `√(s_a²/n_a + s_b²/n_b)` (sample variances).
    pub se: f64,
    /// Welch–Satterthwaite degrees of freedom, `(s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a − 1) +
    /// (s_b²/n_b)²/(n_b − 1))`.
    pub df: f64,
    /// The 95 % confidence interval of the difference, `diff ± t_{0.975, df}·se`.
    pub ci95: (f64, f64),
    /// Two-sided p-value of `t = diff/se` under Student's t with `df` degrees of freedom
    /// (`scipy.stats.ttest_ind(a, b, equal_var=False)`).
    pub p: f64,
}

/// Welch's test of `a` against `b`; `None` when either has fewer than two values (no variance
/// to estimate). Identical samples without spread give `p = 1` and an empty interval, a
/// difference without spread `p = 0`.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Welch> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (ma, sa) = mean_sd(a);
    let (mb, sb) = mean_sd(b);
    let (va, vb) = (sa * sa / a.len() as f64, sb * sb / b.len() as f64);
    let (diff, se) = (ma - mb, (va + vb).sqrt());
    if se == 0.0 {
        return Some(Welch { diff, se, df: f64::INFINITY, ci95: (diff, diff), p: if diff == 0.0 { 1.0 } else { 0.0 } });
    }
    let df = (va + vb).powi(2) / (va * va / (a.len() - 1) as f64 + vb * vb / (b.len() - 1) as f64);
    let q = t_quantile_two_sided(0.05, df);
    Some(Welch { diff, se, df, ci95: (diff - q * se, diff + q * se), p: t_two_sided_p(diff / se, df) })
}

/// Two-sided tail probability `P(|T| ≥ |t|)` of Student's t with `df` degrees of freedom:
/// `I_{df/(df + t²)}(df/2, 1/2)`.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// The `q > 0` with `P(|T| ≥ q) = alpha` for Student's t with `df` degrees of freedom
/// (`scipy.stats.t.ppf(1 − alpha/2, df)`), by bisection to the last bit.
pub fn t_quantile_two_sided(alpha: f64, df: f64) -> f64 {
    let mut hi = 1.0;
    while t_two_sided_p(hi, df) > alpha {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if t_two_sided_p(mid, df) > alpha { lo = mid } else { hi = mid }
    }
    0.5 * (lo + hi)
}

/// `ln Γ(x)` for `x > 0`: the Lanczos approximation (g = 7, nine terms; relative error below
/// 1e-15 over the range used here).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // reflection: Γ(x)Γ(1 − x) = π / sin(πx)
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + G + 0.5;
    let sum = C[1..].iter().enumerate().fold(C[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularised incomplete beta function `I_x(a, b)`, by its continued fraction (modified
/// Lentz), on the side where it converges fast.
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) { front * beta_fraction(a, b, x) / a } else { 1.0 - front * beta_fraction(b, a, 1.0 - x) / b }
}

/// The continued fraction of `I_x(a, b)` (Numerical Recipes' `betacf`).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    d = 1.0 / if d.abs() < TINY { TINY } else { d };
    let mut h = d;
    for m in 1..=1000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))] {
            d = 1.0 + aa * d;
            d = 1.0 / if d.abs() < TINY { TINY } else { d };
            c = 1.0 + aa / c;
            if c.abs() < TINY {
                c = TINY;
            }
            h *= d * c;
        }
        // the last factor of the pair decides convergence
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_follows_the_temperature() {
        let p = softmax_f64(&[1.0, 2.0, 3.0], 1.0);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        let e = [(-2f64).exp(), (-1f64).exp(), 1.0];
        let s: f64 = e.iter().sum();
        assert_eq!(p, e.iter().map(|v| v / s).collect::<Vec<_>>());
        let hot = softmax_f64(&[1.0, 2.0, 3.0], 0.1);
        assert!(hot[2] > 0.9999);
        assert_eq!(softmax_rows(&[0.0, 0.0, 5.0, 5.0], 2), vec![0.5, 0.5, 0.5, 0.5]);
    }

    #[test]
    fn mean_and_sample_sd() {
        assert_eq!(mean_sd(&[2.0]), (2.0, 0.0));
        let (m, s) = mean_sd(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
    }
}
