//! `cohort check FILE…`: each experiment file checked (and with `--plan`, its plan and the
//! networks' parameter counts printed).

use std::path::PathBuf;

use crate::error::EXIT_INVALID;
use crate::{config, engine};

/// Checks every file; the exit code (2 when one is invalid).
pub(super) fn check(files: &[PathBuf], plan: bool) -> i32 {
    let mut bad = 0;
    for f in files {
        match config::load_plan(f) {
            Ok((p, _)) => {
                println!("ok: {}", f.display());
                for w in p.warnings() {
                    println!("  {w}");
                }
                if plan {
                    print!("{}", p.describe());
                    print_parameters(&p);
                }
            }
            Err(e) => {
                bad += 1;
                eprintln!("{}", e.to_string().trim_end());
            }
        }
    }
    if bad > 0 {
        eprintln!("{bad} of {} experiment file(s) invalid", files.len());
        EXIT_INVALID
    } else {
        0
    }
}

/// The learned parameters of each network of `plan` (batch-norm statistics excluded, as
/// PyTorch counts them).
fn print_parameters(plan: &config::Plan) {
    let (device, _) = engine::backend_device();
    println!("  parameters:");
    for n in &plan.nodes {
        if let Some(count) = n.model.parameters(&plan.input_shape, plan.classes, &device) {
            println!("    {:<12} {count} ({:.2} M)", n.id, count as f64 / 1e6);
        }
    }
}
