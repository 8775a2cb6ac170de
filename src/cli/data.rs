//! `cohort data export` (a data set, an experiment's or a run's splits, as files) and `cohort data
//! fetch` (the one documented download).

use std::path::Path;

use super::args::{DatasetName, ExportFormat};
use crate::config::{self, DataSource};
use crate::data::{self, mnist1d::Mnist1dParams};
use crate::error::Error;

pub(super) fn export(dataset: Option<DatasetName>, experiment: Option<&Path>, format: ExportFormat, out: &Path, root: &Path) -> Result<i32, Error> {
    let source = match (dataset, experiment) {
        (_, Some(file)) => {
            let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
            config::parse(&text, file)?.data.source
        }
        (Some(DatasetName::Mnist1d), None) => DataSource::Mnist1d(Mnist1dParams::default()),
        (Some(DatasetName::Mnist), None) => DataSource::Mnist(config::MnistSpec::default()),
        (Some(DatasetName::Cifar10), None) => DataSource::Cifar10(config::Cifar10Spec::default()),
        (Some(DatasetName::Cifar100), None) => DataSource::Cifar100(config::Cifar100Spec::default()),
        (None, None) => unreachable!("clap requires a data set or --experiment"),
    };
    write_splits(&source.load(root)?, format, out)
}

/// `data export --run`: the prepared splits of a run (hold-out, limits and normalisation applied).
pub(super) fn export_run(run: &Path, format: ExportFormat, out: &Path, root: &Path) -> Result<i32, Error> {
    let crate::results::Manifest { plan, seed, .. } = crate::results::Manifest::read(&crate::results::RunDir::at(run).manifest())?;
    let p = data::prepare(&plan.data, root, seed)?;
    write_splits(&data::Splits { train: p.train, test: p.test }, format, out)
}

/// Writes a data set's splits in `format` under `out`.
fn write_splits(splits: &data::Splits, format: ExportFormat, out: &Path) -> Result<i32, Error> {
    let wrote = |path: &Path, s: &data::Samples| println!("wrote {} ({} samples of shape {:?})", path.display(), s.len(), s.shape);
    match format {
        ExportFormat::Csv => {
            for (name, s) in [("train.csv", &splits.train), ("test.csv", &splits.test)] {
                let path = out.join(name);
                data::export::write_csv(s, &path).map_err(|e| Error::io(&path, e))?;
                wrote(&path, s);
            }
        }
        ExportFormat::Npz => {
            let path = out.join("data.npz");
            data::arrays::write_npz(splits, &path).map_err(|e| Error::io(&path, e))?;
            wrote(&path.join("x_train"), &splits.train);
            wrote(&path.join("x_test"), &splits.test);
        }
        ExportFormat::Npy => {
            for (name, s) in [("train", &splits.train), ("test", &splits.test)] {
                data::arrays::write_npy(s, out, name).map_err(|e| Error::io(out, e))?;
                wrote(&out.join(format!("x_{name}.npy")), s);
            }
        }
        ExportFormat::ImageFolder => {
            for (name, s) in [("train", &splits.train), ("test", &splits.test)] {
                let dir = out.join(name);
                data::images::write_image_folder(s, &dir)?;
                wrote(&dir, s);
            }
        }
    }
    Ok(0)
}

/// Fetches MNIST into `<root>/mnist` (SHA-256 verified).
pub(super) fn fetch_mnist(root: &Path) -> Result<i32, Error> {
    let dir = root.join("mnist");
    if data::fetch::fetch_mnist(&dir)? {
        println!("fetched MNIST into {} (4 files, SHA-256 verified)", dir.display());
    } else {
        println!("MNIST already present in {} (SHA-256 verified)", dir.display());
    }
    Ok(0)
}
