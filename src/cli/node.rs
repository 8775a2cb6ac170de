//! Commands on one trained node of a finished run: `cohort eval` and `cohort export-logits`.

use std::path::Path;

use crate::config;
use crate::data;
use crate::engine::{self, eval::EVAL_BATCH, recorded::short_hash};
use crate::error::{Error, UsageError};
use crate::results::{Manifest, RunDir};

/// A node of a run: its trained network, on the device the run placed it on.
fn run_node(run: &RunDir, node: &str, plan: &config::Plan) -> Result<(crate::models::Network, burn::tensor::Device), Error> {
    let Some(n) = plan.nodes.iter().position(|n| n.id == node) else {
        let known = plan.nodes.iter().map(|n| n.id.clone()).collect();
        return Err(UsageError::UnknownNode { run: run.root.clone(), node: node.into(), known }.into());
    };
    let ckpt = run.checkpoint(node);
    let (backend, index) = plan.placement(n);
    let (device, _) = engine::device_for(backend, index)?;
    let p = &plan.nodes[n];
    let net = match &p.checkpoint {
        // a frozen node never trained: the run used the weights it started from
        Some(initial) if p.fixed && !ckpt.exists() => engine::load_initial(&p.model, &plan.input_shape, plan.classes, &p.id, initial, &device)?,
        _ => engine::load_checkpoint(&p.model, &plan.input_shape, plan.classes, &ckpt, &device)?,
    };
    Ok((net, device))
}

/// `cohort export-weights`: a node's trained network as a PyTorch `state_dict` (safetensors).
pub(super) fn export_weights(run: &Path, node: &str, out: &Path) -> Result<i32, Error> {
    let run = RunDir::at(run);
    let Manifest { plan, .. } = Manifest::read(&run.manifest())?;
    let (model, _) = run_node(&run, node, &plan)?;
    let Some(reference) = model.reference() else {
        return Err(UsageError::BadValue {
            argument: "--node",
            value: node.into(),
            expected: format!(
                "a node whose architecture has a reference PyTorch definition (the CIFAR zoo: ResNet, Wrn, Vgg, MobileNetV2, ShuffleNetV1, ShuffleNetV2); `{}` has none, so there are no PyTorch names to write",
                model.kind()
            ),
        }
        .into());
    };
    let spec = &plan.nodes.iter().find(|n| n.id == node).expect("run_node found it").model;
    let metadata = std::collections::HashMap::from([
        ("cohort_model".to_string(), spec.to_string()),
        ("cohort_model_ron".to_string(), ron::to_string(spec).unwrap_or_default()),
        ("classes".to_string(), plan.classes.to_string()),
        ("input_shape".to_string(), format!("{:?}", plan.input_shape)),
        ("node".to_string(), node.to_string()),
    ]);
    let tensors = model.save_torch_safetensors_with(out, metadata).map_err(|problem| engine::EngineError::Serialise { path: out.into(), problem })?;
    println!(
        "wrote {}: {} tensors of `{node}` with the names of {reference}; in PyTorch: model.load_state_dict(safetensors.torch.load_file(...))",
        out.display(),
        tensors.len()
    );
    Ok(0)
}

/// `cohort export-logits`: a node's outputs on its run's training split, to a file.
pub(super) fn export_logits(run: &Path, node: &str, out: &Path, temperature: Option<f64>, root: &Path) -> Result<i32, Error> {
    if let Some(t) = temperature.filter(|t| !(t.is_finite() && *t > 0.0)) {
        return Err(UsageError::BadValue { argument: "--temperature", value: t.to_string(), expected: "expected a positive number".into() }.into());
    }
    let run = RunDir::at(run);
    let Manifest { plan, seed, .. } = Manifest::read(&run.manifest())?;
    let (model, device) = run_node(&run, node, &plan)?;
    let data = data::prepare(&plan.data, root, seed)?;
    let logits = engine::eval::predict(&model, &data.train, EVAL_BATCH, &device);
    let file = engine::recorded::RecordedFile::new(&plan.name, node, seed, &plan.data, &data.train, &logits.values, temperature);
    file.write(out)?;
    let what = temperature.map_or("logits".to_string(), |t| format!("probabilities at T = {t}"));
    println!(
        "wrote {}: {what} of `{node}` on {} training samples × {} classes (training split {}…)",
        out.display(),
        file.samples,
        file.classes,
        short_hash(&file.data_sha256)
    );
    Ok(0)
}

/// `cohort eval`: test errors of one node of a run, per class, with optional logit offsets.
pub(super) fn eval(run: &Path, node: &str, biases: &[String], json: bool, root: &Path) -> Result<i32, Error> {
    let bad_bias = |b: &str, classes: Option<usize>| UsageError::BadValue {
        argument: "--logit-bias",
        value: b.into(),
        expected: match classes {
            Some(c) => format!("expected CLASS=VALUE with CLASS in 0..{c} and a finite VALUE, e.g. `3=3.5`"),
            None => "expected CLASS=VALUE with a finite VALUE, e.g. `3=3.5`".into(),
        },
    };
    // the syntax first, before anything is read; the class range once the run's classes are known
    let parsed = biases
        .iter()
        .map(|b| {
            let parsed = b.split_once('=').and_then(|(c, v)| Some((c.trim().parse::<usize>().ok()?, v.trim().parse::<f32>().ok()?)));
            parsed.filter(|(_, v)| v.is_finite()).ok_or_else(|| bad_bias(b, None))
        })
        .collect::<Result<Vec<(usize, f32)>, UsageError>>()?;
    let run = RunDir::at(run);
    let Manifest { plan, seed, .. } = Manifest::read(&run.manifest())?;
    let mut offset = vec![0.0f32; plan.classes];
    for (b, (c, v)) in biases.iter().zip(parsed) {
        *offset.get_mut(c).ok_or_else(|| bad_bias(b, Some(plan.classes)))? += v;
    }
    let (model, device) = run_node(&run, node, &plan)?;
    let data = data::prepare(&plan.data, root, seed)?;
    let logits = engine::eval::predict(&model, &data.test, EVAL_BATCH, &device);
    let mut errors = vec![0usize; plan.classes];
    let counts = data.test.class_counts();
    for (row, &y) in logits.values.chunks(plan.classes).zip(&data.test.labels) {
        let pred = (0..plan.classes).max_by(|&a, &b| (row[a] + offset[a]).total_cmp(&(row[b] + offset[b]))).expect("classes");
        if pred != y as usize {
            errors[y as usize] += 1;
        }
    }
    let total: usize = errors.iter().sum();
    let n = data.test.len();
    if json {
        println!(
            "{}",
            serde_json::json!({ "run": run.root.display().to_string(), "node": node, "samples": n, "errors": total,
            "accuracy": 1.0 - total as f64 / n as f64, "errors_per_class": errors, "samples_per_class": counts, "logit_bias": offset })
        );
    } else {
        println!("{}: node `{node}` on the test split: {total} errors of {n} ({:.2} % accuracy)", run.root.display(), 100.0 * (1.0 - total as f64 / n as f64));
        for (c, (e, k)) in errors.iter().zip(&counts).enumerate() {
            let bias = if offset[c] != 0.0 { format!("  (logit {:+})", offset[c]) } else { String::new() };
            println!("  class {c}: {e:>5} errors of {k:>5}{bias}");
        }
    }
    Ok(0)
}
