//! numpy's legacy `RandomState` (MT19937) reproduced bit for bit.
//!
//! Only what the MNIST-1D generator needs: `seed`, `rand`, `randn`, `choice(n)` and
//! `permutation(n)`, with the exact draw order and rejection rules numpy uses, so that a data set
//! generated here equals the published one (`docs/data.md`, MNIST-1D).

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// MT19937 with numpy's legacy Gaussian cache (`RandomState`).
#[derive(Clone, Debug)]
pub struct LegacyRandomState {
    key: [u32; N],
    pos: usize,
    gauss: Option<f64>,
}

impl LegacyRandomState {
    /// `np.random.seed(seed)`: MT19937 `init_genrand`, clears the Gaussian cache.
    pub fn new(seed: u32) -> Self {
        let mut key = [0u32; N];
        let mut s = seed;
        for (pos, k) in key.iter_mut().enumerate() {
            *k = s;
            s = 1_812_433_253u32.wrapping_mul(s ^ (s >> 30)).wrapping_add(pos as u32 + 1);
        }
        Self { key, pos: N, gauss: None }
    }

    fn generate(&mut self) {
        let mag = |y: u32| if y & 1 == 1 { MATRIX_A } else { 0 };
        for i in 0..N - M {
            let y = (self.key[i] & UPPER_MASK) | (self.key[i + 1] & LOWER_MASK);
            self.key[i] = self.key[i + M] ^ (y >> 1) ^ mag(y);
        }
        for i in N - M..N - 1 {
            let y = (self.key[i] & UPPER_MASK) | (self.key[i + 1] & LOWER_MASK);
            self.key[i] = self.key[i + M - N] ^ (y >> 1) ^ mag(y);
        }
        let y = (self.key[N - 1] & UPPER_MASK) | (self.key[0] & LOWER_MASK);
        self.key[N - 1] = self.key[M - 1] ^ (y >> 1) ^ mag(y);
        self.pos = 0;
    }

    /// The next tempered 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.pos == N {
            self.generate();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `np.random.rand()`: 53-bit double in [0, 1) from two 32-bit draws.
    pub fn rand(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `np.random.randn()`: polar Box–Muller; returns f·x2 and caches f·x1 for the next call.
    pub fn randn(&mut self) -> f64 {
        if let Some(g) = self.gauss.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.rand() - 1.0;
            let x2 = 2.0 * self.rand() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.gauss = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// `n` draws of `randn()`, as `np.random.randn(n)`.
    pub fn randn_vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.randn()).collect()
    }

    /// Uniform integer in `0..=max` by masked rejection (numpy's `random_interval`).
    fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16] {
            mask |= mask >> shift;
        }
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `np.random.choice(n)` (= `randint(0, n)`, masked rejection), for `1 <= n <= 2^32`.
    pub fn choice(&mut self, n: usize) -> usize {
        assert!(n >= 1, "choice from an empty range");
        self.interval((n - 1) as u32) as usize
    }

    /// `np.random.permutation(n)`: Fisher–Yates from the end, as numpy's legacy `shuffle`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        self.shuffle(&mut v);
        v
    }

    /// In-place legacy `shuffle`.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.interval(i as u32) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `np.random.seed(0); [np.random.randint(0, 2**32, dtype=np.uint64)...]` is not what this
    /// checks; instead the canonical MT19937 reference: init_genrand(5489) first output 3499211612.
    #[test]
    fn mt19937_reference_outputs() {
        let mut r = LegacyRandomState::new(5489);
        assert_eq!(r.next_u32(), 3_499_211_612);
        assert_eq!(r.next_u32(), 581_869_302);
    }

    /// Values printed by numpy 2.4.6 (legacy `RandomState`):
    /// ```python
    /// np.random.seed(42); np.random.rand()              # 0.3745401188473625
    /// np.random.seed(42); np.random.rand(3); np.random.randn()   # -1.1118801180469204
    /// np.random.seed(1); np.random.choice(48), np.random.permutation(10).tolist(),
    ///                    np.random.randn(), np.random.randn()
    /// # 37 [2, 3, 4, 9, 1, 6, 0, 7, 5, 8] 0.8654076293246785 -2.3015386968802827
    /// ```
    #[test]
    fn matches_numpy_legacy_random_state() {
        let mut r = LegacyRandomState::new(42);
        assert_eq!(r.rand(), 0.374_540_118_847_362_5);
        let mut r = LegacyRandomState::new(42);
        for _ in 0..3 {
            r.rand();
        }
        assert!((r.randn() - -1.111_880_118_046_920_4).abs() < 1e-15);
        let mut r = LegacyRandomState::new(1);
        assert_eq!(r.choice(48), 37);
        assert_eq!(r.permutation(10), vec![2, 3, 4, 9, 1, 6, 0, 7, 5, 8]);
        assert!((r.randn() - 0.865_407_629_324_678_5).abs() < 1e-15);
        assert!((r.randn() - -2.301_538_696_880_282_7).abs() < 1e-15);
    }
}
