"""Wall time of a leave-one-speaker-out run: every fold's model in one program vs fold by fold.

Runs ``serjax.experiments.train_and_evaluate`` twice on the same config, in fresh workdirs,
one after the other in this process: ``train.vectorize="none"`` (the folds one after another)
and ``"folds"`` (all folds' models stacked in one jitted program, ``serjax.vectorized``). Prints
each wall time (compilation included: each run compiles its own steps), the ratio, the load
average before and after each run, and each fold's test UA under both (they agree up to float
rounding; dropout masks on unsegmented inputs are the exception, see ``serjax.vectorized``).

    SERJAX_DATA_DIR=/path/to/data python benchmarks/vectorize_loso.py \\
        [--config configs/emodb_lstm_loso.py] [--epochs 1] [--folds 03,08] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from absl import logging

from serjax import config_lib, experiments
from serjax.progress import quiet_libraries

ROOT = Path(__file__).resolve().parents[1]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "emodb_lstm_loso.py"))
    parser.add_argument("--epochs", type=int, default=1, help="train.epochs of both runs")
    parser.add_argument("--folds", default="", help="comma-separated folds (default: all)")
    parser.add_argument("--workdir", default="", help="where the two runs go (default: temp)")
    args = parser.parse_args()
    logging.get_absl_handler().addFilter(quiet_libraries)
    logging.set_verbosity(logging.INFO)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="vectorize_loso_"))
    seconds, results = {}, {}
    for mode in ("none", "folds"):
        config = config_lib.load_config_file(args.config)
        config.train.epochs = args.epochs
        config.train.vectorize = mode
        if args.folds:
            config.data.run_folds = tuple(args.folds.split(","))
        run_dir = workdir / mode
        print(f"[{mode}] load average before: {_load()}", flush=True)
        start = time.perf_counter()
        results[mode] = experiments.train_and_evaluate(config, run_dir)
        seconds[mode] = time.perf_counter() - start
        print(f"[{mode}] {seconds[mode]:.1f} s; load average after: {_load()}", flush=True)

    machine = experiments.machine()
    folds = results["none"]["folds"]
    print(f"\n{Path(args.config).name}, {args.epochs} epoch(s), {len(folds)} folds")
    print(f"machine: {machine['summary']}")
    print(f"{'fold':>6} {'UA alone':>9} {'UA together':>12}")
    for name, row in folds.items():
        print(f"{name:>6} {row['ua']:9.4f} {results['folds']['folds'][name]['ua']:12.4f}")
    print(f"fold by fold (train.vectorize=none): {seconds['none']:8.1f} s")
    print(f"side by side (train.vectorize=folds): {seconds['folds']:7.1f} s")
    print(f"ratio: {seconds['none'] / seconds['folds']:.2f}x")


if __name__ == "__main__":
    main()
