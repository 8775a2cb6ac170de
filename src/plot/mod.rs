//! Charts and comparison tables, drawn with plotters from the files of finished runs only
//! (`metrics.csv`, `summary.json`, `manifest.ron`), never from a run's memory.
//!
//! Every chart is written as PNG and SVG. Text uses DejaVu Sans embedded in the binary (no system
//! font libraries). Colours are the Okabe–Ito colour-blind-safe palette; the ensemble is black
//! and dashed. plotters' `ab_glyph` text cannot be rotated, so axis units go into the captions.

pub mod compare;
pub mod curves;
pub mod topology;

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::Error;
use crate::results::{ExperimentDir, Manifest, ResultsError, RunDir, read_metrics};

/// Okabe & Ito (2008) colours, without black (kept for the ensemble).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(240, 228, 66),  // yellow
];

/// Font family name registered for all charts.
pub const FONT: &str = "sans-serif";

/// Registers the embedded font (once per process).
pub fn init_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold, FontStyle::Italic, FontStyle::Oblique] {
            let bytes = if matches!(style, FontStyle::Bold) { dejavu::sans::bold() } else { dejavu::sans::regular() };
            plotters::style::register_font(FONT, style, bytes).unwrap_or_else(|_| panic!("embedded DejaVu font is valid"));
        }
    });
}

/// Colour of the `i`-th node.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A chart that can be drawn on any plotters backend.
pub trait Chart {
    /// Draws onto `root` (already filled white); errors are plotters' messages.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, plotters::coord::Shift>) -> Result<(), String>;
}

/// plotters' errors as text, for `?` inside [`Chart::draw`] (`.map_err(drawing_error)?`).
pub(crate) fn drawing_error<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

/// Draws `chart` into `<stem>.png` and `<stem>.svg`, each written atomically (drawn under a
/// temporary name, then renamed). Returns the two paths.
pub fn png_and_svg<C: Chart>(stem: &Path, size: (u32, u32), chart: &C) -> Result<Vec<PathBuf>, Error> {
    init_fonts();
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let tmp = |p: &Path| p.with_file_name(format!(".tmp-{}", p.file_name().unwrap_or_default().to_string_lossy()));
    let fail = |p: &Path, message: String| ResultsError::Drawing { path: p.to_path_buf(), message };
    {
        let t = tmp(&png);
        let root = BitMapBackend::new(&t, size).into_drawing_area();
        root.fill(&WHITE)
            .map_err(drawing_error)
            .and_then(|_| chart.draw(&root))
            .and_then(|_| root.present().map_err(drawing_error))
            .map_err(|m| fail(&png, m))?;
    }
    {
        let t = tmp(&svg);
        let root = SVGBackend::new(&t, size).into_drawing_area();
        root.fill(&WHITE)
            .map_err(drawing_error)
            .and_then(|_| chart.draw(&root))
            .and_then(|_| root.present().map_err(drawing_error))
            .map_err(|m| fail(&svg, m))?;
    }
    for p in [&png, &svg] {
        std::fs::rename(tmp(p), p).map_err(|e| Error::io(p, e))?;
    }
    Ok(vec![png, svg])
}

/// Draws the charts of one run folder into `<run>/charts/`: learning curves, the cohort's
/// agreement and pairwise KL (when several nodes train together) and the topology.
pub fn plot_run(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let run = RunDir::at(dir);
    if !run.metrics().exists() {
        return Err(ResultsError::NotARun { path: run.root }.into());
    }
    let rows = read_metrics(&run.metrics())?;
    let out = run.charts();
    let title = run.title();
    let mut files = png_and_svg(&out.join("curves"), (1000, 820), &curves::learning_curves(&title, &rows))?;
    if let Some(c) = curves::cohort_curves(&title, &rows) {
        files.extend(png_and_svg(&out.join("cohort"), (1000, 720), &c)?);
    }
    if let Some(c) = curves::term_curves(&title, &rows) {
        let height = 60 + 380 * c.panels.len() as u32;
        files.extend(png_and_svg(&out.join("terms"), (1000, height), &c)?);
    }
    let plan = Manifest::read(&run.manifest())?.plan;
    files.extend(png_and_svg(&out.join("topology"), (1100, 620), &topology::Topology::from_plan(&plan))?);
    Ok(files)
}

/// Draws the charts of a run folder, or of every run of an experiment folder plus the mean ±
/// std curves over its seeds (`<experiment>/charts/seeds.png`).
pub fn plot_path(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    if RunDir::at(dir).metrics().exists() {
        return plot_run(dir);
    }
    let exp = compare::collect(dir)?;
    let experiment = ExperimentDir::at(dir);
    let runs: Vec<RunDir> = experiment.runs()?.into_iter().filter(|r| r.metrics().exists()).collect();
    if runs.is_empty() {
        return Err(ResultsError::NoRuns { path: dir.to_path_buf() }.into());
    }
    let mut files = Vec::new();
    let mut all_rows = Vec::new();
    for r in &runs {
        files.extend(plot_run(&r.root)?);
        all_rows.push(read_metrics(&r.metrics())?);
    }
    let title = format!("{} ({} runs)", exp.name, runs.len());
    files.extend(png_and_svg(&experiment.charts().join("seeds"), (1000, 560), &curves::seed_curves(&title, &all_rows))?);
    for p in &exp.problems {
        eprintln!("note: {p}");
    }
    Ok(files)
}
