//! `cohort compare DIR…`: the experiments side by side (Markdown table, JSON, dot-and-interval chart).

use std::path::{Path, PathBuf};

use crate::error::{EXIT_FAILURE, Error, UsageError};
use crate::plot;
use crate::plot::compare::{Baseline, Group, Select};

/// `cohort compare`: table to stdout and `<out>/compare.md`, data to `<out>/compare.json`, bar
/// chart to `<out>/compare.{png,svg}`; with `json`, the data to stdout and nothing written.
/// Compares the experiments under `dirs`, writing to `out` (or printing JSON only).
pub(super) fn compare(dirs: &[PathBuf], out: &Path, json: bool, select: Select, baseline: Option<&Baseline>, groups: &[Group]) -> Result<i32, Error> {
    let mut exps = dirs.iter().map(|d| plot::compare::collect(d)).collect::<Result<Vec<_>, _>>()?;
    // the same experiment from two result roots (e.g. two backends): label them by their parent
    let names: Vec<String> = exps.iter().map(|x| x.name.clone()).collect();
    for x in exps.iter_mut().filter(|x| names.iter().filter(|n| **n == x.name).count() > 1) {
        if let Some(parent) = x.dir.parent().and_then(|p| p.file_name()) {
            x.name = format!("{}/{}", parent.to_string_lossy(), x.name);
        }
    }
    if let Some(b) = baseline.filter(|b| !exps.iter().any(|x| x.name == b.experiment)) {
        let names: Vec<&str> = exps.iter().map(|x| x.name.as_str()).collect();
        let expected = format!("one of the compared experiments: {}", names.join(", "));
        return Err(UsageError::BadValue { argument: "--baseline", value: b.experiment.clone(), expected }.into());
    }
    let rows = plot::compare::rows(&exps, select, baseline, groups)?;
    let data = plot::compare::json(&rows, &exps);
    if json {
        print!("{data}");
        return Ok(if rows.is_empty() { EXIT_FAILURE } else { 0 });
    }
    let table = plot::compare::markdown(&rows, &exps, select, baseline);
    print!("{table}");
    let md = out.join("compare.md");
    crate::fsutil::atomic_write_bytes(&md, table.as_bytes()).map_err(|e| Error::io(&md, e))?;
    let js = out.join("compare.json");
    crate::fsutil::atomic_write_bytes(&js, data.as_bytes()).map_err(|e| Error::io(&js, e))?;
    let names: Vec<&str> = exps.iter().map(|x| x.name.as_str()).collect();
    let joined = names.join(" vs ");
    let title = if joined.chars().count() > 48 { format!("{} experiments", names.len()) } else { joined };
    let dots = plot::compare::Dots::new(&title, &rows, select);
    let files = plot::png_and_svg(&out.join("compare"), dots.size(), &dots)?;
    println!("\nwrote {}, {}, {}", md.display(), js.display(), files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(if rows.is_empty() { EXIT_FAILURE } else { 0 })
}
