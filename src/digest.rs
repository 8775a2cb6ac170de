//! SHA-256 in lowercase hex: the one digest of cohort (experiment files in manifests, data files
//! checked against their published digests, fingerprints of a split and of recorded outputs,
//! the names of sweep points).

use sha2::{Digest, Sha256};

/// SHA-256 of `bytes`, as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut h = Sha256Hex::new();
    h.update(bytes);
    h.hex()
}

/// A SHA-256 fed piece by piece (large data is never copied into one buffer).
#[derive(Default)]
pub struct Sha256Hex(Sha256);

impl Sha256Hex {
    /// An empty digest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed, as 64 lowercase hex digits.
    pub fn hex(self) -> String {
        self.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}
