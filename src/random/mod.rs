//! Every random choice of a run comes from the run's seed through a separate stream per purpose
//! and epoch ([`stream_seed`]), so changing e.g. the jitter does not change the shuffling, and a
//! resumed run draws exactly what the uninterrupted run would have drawn. The streams are
//! NumPy's legacy generator ([`legacy`]), so that MNIST-1D and the shuffles match NumPy's.

pub mod legacy;

use legacy::LegacyRandomState;

/// Purposes that draw random numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// Which training samples are held out for validation.
    HoldOut = 1,
    /// Order of the training samples in an epoch.
    Shuffle = 2,
    /// Augmentations of an epoch (jitter, crops, flips); the name is the first one's.
    Jitter = 3,
    /// Initial weights of a node (epoch = node index).
    Init = 4,
    /// Dropout masks of an epoch.
    Dropout = 5,
}

/// SplitMix64 finaliser: decorrelates nearby seeds.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Epoch keys of consecutive stages are this far apart, so that (stage, epoch) pairs never
/// share a random stream (no stage runs a million epochs).
pub const STAGE_KEY_STRIDE: usize = 1_000_000;

/// The key of `epoch` of stage `stage` for [`stream_seed`].
pub fn epoch_key(stage: usize, epoch: usize) -> usize {
    stage * STAGE_KEY_STRIDE + epoch
}

/// Seed of the generator for (`seed`, `stream`, `epoch`).
pub fn stream_seed(seed: u64, stream: Stream, epoch: usize) -> u32 {
    let h = splitmix64(splitmix64(splitmix64(seed) ^ stream as u64) ^ epoch as u64);
    (h >> 32) as u32
}

/// Seed of node `node`'s own generator for (`seed`, `stream`, `epoch`): the per-node views of
/// `views: PerNode`.
pub fn node_stream_seed(seed: u64, stream: Stream, epoch: usize, node: usize) -> u32 {
    stream_seed(splitmix64(seed ^ 0x6e6f_6465) ^ node as u64, stream, epoch)
}

/// A seeded permutation of `0..n`.
pub fn shuffled(n: usize, seed: u64, stream: Stream, epoch: usize) -> Vec<usize> {
    LegacyRandomState::new(stream_seed(seed, stream, epoch)).permutation(n)
}
