//! TensorBoard event files, so that `tensorboard --logdir results/` shows a cohort while it
//! trains: `<run>/tensorboard/<node>/events.out.tfevents.<time>.cohort`, one folder per node
//! (a Hydra head's rows under `<node>.head<m>`) plus `cohort` for the ensemble's and the
//! pairwise rows, with every scalar of `metrics.csv`: tag `<split>/<metric>` (`<stage>/<split>/
//! <metric>` in a run of several stages), step = the epoch within its stage, value as a 32-bit
//! float (TensorBoard's `simple_value`).
//!
//! The format, written here directly (the Rust crates for it were unmaintained or needed a
//! protobuf toolchain when this was written; the format is small and stable): a file of records, each `u64 length (LE) · u32 masked CRC-32C of the length ·
//! data · u32 masked CRC-32C of the data`, the mask being `((crc >> 15) | (crc << 17)) +
//! 0xa282ead8`; each record's data one `tensorflow.Event` protobuf message (`wall_time` = 1,
//! double; `step` = 2, int64; `file_version` = 3, string, in the first record only; `summary` =
//! 5, holding `Summary.Value { tag = 1, simple_value = 2 }`). tests/it/tensorboard.rs reads the
//! files back with TensorBoard's own reader.
//!
//! Records are appended after every epoch and flushed, so a live TensorBoard sees them. A resumed
//! run keeps the records of the epochs it resumes after (those of `metrics.csv`) and drops
//! later ones, so no step is written twice.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::metrics::MetricRow;

/// The folder of the event files inside a run folder.
pub const DIR: &str = "tensorboard";
/// The folder of the ensemble's and the pairwise rows.
pub const COHORT: &str = "cohort";

fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// An `Event` with `wall_time`, `step` and either a file version or one scalar.
fn event(wall_time: f64, step: i64, body: Body<'_>) -> Vec<u8> {
    let mut e = Vec::with_capacity(64);
    e.push(1 << 3 | 1);
    e.extend_from_slice(&wall_time.to_le_bytes());
    e.push(2 << 3);
    varint(&mut e, step as u64);
    match body {
        Body::Version(v) => bytes_field(&mut e, 3, v.as_bytes()),
        Body::Scalar(tag, value) => {
            let mut val = Vec::with_capacity(tag.len() + 8);
            bytes_field(&mut val, 1, tag.as_bytes());
            val.push(2 << 3 | 5);
            val.extend_from_slice(&value.to_le_bytes());
            let mut summary = Vec::with_capacity(val.len() + 2);
            bytes_field(&mut summary, 1, &val);
            bytes_field(&mut e, 5, &summary);
        }
    }
    e
}

enum Body<'a> {
    Version(&'a str),
    Scalar(&'a str, f32),
}

/// One framed record.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut r = Vec::with_capacity(data.len() + 16);
    r.extend_from_slice(&len);
    r.extend_from_slice(&masked_crc(&len).to_le_bytes());
    r.extend_from_slice(data);
    r.extend_from_slice(&masked_crc(data).to_le_bytes());
    r
}

/// A scalar's tag and step.
type ScalarKey = (String, i64);

/// The records of a file written by [`EventFile`], each with its scalar's (tag, step) (`None`
/// for the version record); stops at the first incomplete or damaged record (a write cut short).
fn read_records(bytes: &[u8]) -> Vec<(&[u8], Option<ScalarKey>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len_bytes = &bytes[at..at + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
        let end = at + 12 + len + 4;
        if crc != masked_crc(len_bytes) || end > bytes.len() {
            break;
        }
        let data = &bytes[at + 12..at + 12 + len];
        if u32::from_le_bytes(bytes[end - 4..end].try_into().expect("4 bytes")) != masked_crc(data) {
            break;
        }
        out.push((&bytes[at..end], scalar_key(data)));
        at = end;
    }
    out
}

/// Reads a varint at `*at`.
fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

/// One field of a protobuf message: its number, its payload's bytes (length-delimited and fixed
/// fields) or its value (varints).
struct Field {
    number: u64,
    bytes: std::ops::Range<usize>,
    varint: u64,
}

/// The fields of a protobuf message.
fn fields(b: &[u8]) -> Option<Vec<Field>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let key = read_varint(b, &mut at)?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        match wire {
            0 => {
                let v = read_varint(b, &mut at)?;
                out.push(Field { number: field, bytes: at..at, varint: v });
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                out.push(Field { number: field, bytes: at..at + n, varint: 0 });
                at += n;
            }
            2 => {
                let n = read_varint(b, &mut at)? as usize;
                out.push(Field { number: field, bytes: at..at + n, varint: 0 });
                at += n;
            }
            _ => return None,
        }
    }
    (at == b.len()).then_some(out)
}

/// (tag, step) of an `Event` holding one scalar.
fn scalar_key(event: &[u8]) -> Option<ScalarKey> {
    let f = fields(event)?;
    let step = f.iter().find(|x| x.number == 2).map_or(0, |x| x.varint as i64);
    let summary = &event[f.into_iter().find(|x| x.number == 5)?.bytes];
    let value = &summary[fields(summary)?.into_iter().find(|x| x.number == 1)?.bytes];
    let tag = fields(value)?.into_iter().find(|x| x.number == 1)?.bytes;
    Some((String::from_utf8_lossy(&value[tag]).into_owned(), step))
}

/// One event file, appended to.
struct EventFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventFile {
    /// Opens the event file in `dir`: a new one, or (resuming) the existing one with only the
    /// scalars in `keep` left.
    fn open(dir: &Path, keep: Option<&HashSet<ScalarKey>>) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let existing = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("events.out.tfevents.")));
        let now = wall_time();
        if let (Some(path), Some(keep)) = (existing.as_ref(), keep) {
            let bytes = std::fs::read(path)?;
            // the version record, then each kept scalar once (a record written again after a
            // crash, or one past the saved state, is dropped)
            let mut seen = HashSet::new();
            let mut kept = Vec::new();
            for (k, (rec, key)) in read_records(&bytes).into_iter().enumerate() {
                let wanted = match key {
                    None => k == 0,
                    Some(key) => keep.contains(&key) && seen.insert(key),
                };
                if wanted {
                    kept.extend_from_slice(rec);
                }
            }
            crate::fsutil::atomic_write_bytes(path, &kept)?;
            let out = BufWriter::new(File::options().append(true).open(path)?);
            return Ok(EventFile { path: path.clone(), out });
        }
        if let Some(old) = existing {
            std::fs::remove_file(old)?;
        }
        let path = dir.join(format!("events.out.tfevents.{}.cohort", now as u64));
        let mut out = BufWriter::new(File::create(&path)?);
        out.write_all(&record(&event(now, 0, Body::Version("brain.Event:2"))))?;
        Ok(EventFile { path, out })
    }

    fn scalar(&mut self, tag: &str, step: i64, value: f32, wall_time: f64) -> std::io::Result<()> {
        self.out.write_all(&record(&event(wall_time, step, Body::Scalar(tag, value))))
    }
}

fn wall_time() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The event files of one run.
pub struct Board {
    root: PathBuf,
    /// Whether tags carry the stage (runs of several stages).
    staged: bool,
    files: HashMap<String, EventFile>,
    /// Scalars to keep in existing files when they are first opened (a resumed run).
    keep: Option<HashMap<String, HashSet<ScalarKey>>>,
}

impl Board {
    /// The event files under `run_dir/tensorboard`. `resumed_rows`: the metrics a resumed run
    /// continues from (their records are kept, later ones dropped); `None` for a new run, whose
    /// folder is started afresh.
    pub fn new(run_dir: &Path, staged: bool, resumed_rows: Option<&[MetricRow]>) -> Self {
        let keep = resumed_rows.map(|rows| {
            let mut keep: HashMap<String, HashSet<ScalarKey>> = HashMap::new();
            for r in rows {
                let (dir, tag) = place(r, staged);
                keep.entry(dir).or_default().insert((tag, r.epoch as i64));
            }
            keep
        });
        Board { root: run_dir.join(DIR), staged, files: HashMap::new(), keep }
    }

    /// Appends `rows` and flushes every file written to.
    pub fn write(&mut self, rows: &[MetricRow]) -> std::io::Result<()> {
        let now = wall_time();
        let mut touched = HashSet::new();
        for r in rows {
            let (dir, tag) = place(r, self.staged);
            if !self.files.contains_key(&dir) {
                let empty = HashSet::new();
                let keep = self.keep.as_ref().map(|k| k.get(&dir).unwrap_or(&empty));
                let file = EventFile::open(&self.root.join(&dir), keep)?;
                self.files.insert(dir.clone(), file);
            }
            let f = self.files.get_mut(&dir).expect("opened above");
            f.scalar(&tag, r.epoch as i64, r.value as f32, now)?;
            touched.insert(dir);
        }
        for d in touched {
            let f = self.files.get_mut(&d).expect("written above");
            f.out.flush().map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", f.path.display())))?;
        }
        Ok(())
    }
}

/// The folder and the tag of a metric row.
fn place(r: &MetricRow, staged: bool) -> (String, String) {
    let dir = if r.node == "ensemble" || r.node == "cohort" { COHORT.to_string() } else { r.node.clone() };
    let tag = if staged { format!("{}/{}/{}", r.stage, r.split, r.metric) } else { format!("{}/{}", r.split, r.metric) };
    (dir, tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_its_mask_match_the_format() {
        // CRC-32C check value of "123456789" (RFC 3720), and the masked value TensorBoard's
        // reader computes for it (tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c)
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
    }

    #[test]
    fn records_read_back_and_a_cut_tail_is_dropped() {
        let mut bytes = record(&event(1.5, 0, Body::Version("brain.Event:2")));
        bytes.extend(record(&event(2.0, 3, Body::Scalar("test/accuracy", 0.25))));
        let whole = read_records(&bytes);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].1, None);
        assert_eq!(whole[1].1, Some(("test/accuracy".to_string(), 3)));
        bytes.extend(record(&event(2.0, 4, Body::Scalar("test/accuracy", 0.5))));
        bytes.truncate(bytes.len() - 3);
        assert_eq!(read_records(&bytes).len(), 2);
    }
}
