#!/usr/bin/env python3
"""Reads a cohort run's TensorBoard event files with TensorBoard's own reader and prints every
scalar as CSV: node folder, tag, step, value. tests/it/tensorboard.rs compares the output with the
run's metrics.csv.

    python scripts/read-tensorboard.py RUN_DIR

Needs the `tensorboard` package (`pip install tensorboard`; .ci/run installs it into .venv-tb).
TensorBoard's reader checks every record's CRCs and stops with an error on a damaged file.
"""
import csv
import pathlib
import sys

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader


def main(run_dir):
    root = pathlib.Path(run_dir) / "tensorboard"
    files = sorted(root.glob("*/events.out.tfevents.*"))
    if not files:
        sys.exit(f"{root}: no event files")
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["dir", "tag", "step", "value"])
    for f in files:
        for event in EventFileLoader(str(f)).Load():
            for v in event.summary.value:
                # EventFileLoader turns simple_value into a scalar tensor
                value = v.simple_value if v.HasField("simple_value") else float(v.tensor.float_val[0])
                out.writerow([f.parent.name, v.tag, event.step, repr(value)])


if __name__ == "__main__":
    main(sys.argv[1])
