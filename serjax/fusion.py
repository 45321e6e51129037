"""Late fusion: several finished runs of one protocol scored as one system.

Each fused test prediction is the weighted mean of the runs' class probabilities for the same
file, fold by fold (score-level fusion, the usual late fusion of speech emotion recognition
systems, e.g. Schuller et al., "The INTERSPEECH 2009 emotion challenge"). Equal weights are
the default because they need no choice: weights picked by their test scores would be tuned
on the test speakers. A run's ``probabilities_unadapted`` (a speaker-standardised run's
figures for audio of an unknown speaker) take part in the fused unadapted
figure; a run without them contributes its only probabilities to both.

``python -m serjax.fusion --runs=runs/emodb_serjax,runs/emodb_frames --workdir=runs/emodb_fused``
writes ``results.json`` (per fold and pooled, in the layout of a protocol run, so that the
suite and comparison tools read it like any other), ``classification_report.txt`` and
``confusion_matrix.png``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from absl import logging

from serjax import experiments, metrics
from serjax.fold import write_report


def fold_results(workdir: Path) -> dict[str, dict]:
    """A finished run's fold reports by fold name (``{"main": ...}`` for a single split).

    Raises:
      FileNotFoundError: ``workdir`` holds no finished run (no ``results.json``), or one of
        its folds has not finished.
    """
    workdir = Path(workdir)
    top = workdir / "results.json"
    if not top.exists():
        raise FileNotFoundError(f"{workdir}: no results.json; is the run finished?")
    fold_dirs = sorted(p for p in (workdir / "folds").glob("*") if p.is_dir())
    if not fold_dirs:
        return {"main": json.loads(top.read_text())}
    results = {}
    for fold_dir in fold_dirs:
        path = fold_dir / "results.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: fold {fold_dir.name} has not finished")
        results[fold_dir.name] = json.loads(path.read_text())
    return results


def _aligned(result: dict, paths: Sequence[str], run: Path, fold: str) -> dict[str, np.ndarray]:
    """The run's probabilities (and unadapted ones) of one fold, in the order of ``paths``."""
    predictions = result["predictions"]
    index = {path: i for i, path in enumerate(predictions["paths"])}
    missing = [p for p in paths if p not in index]
    if missing or len(index) != len(paths):
        raise ValueError(
            f"{run}, fold {fold}: its test files differ from the first run's "
            f"({len(index)} against {len(paths)} files; e.g. missing {missing[:3]}); "
            "fuse runs of the same protocol and data only"
        )
    order = [index[p] for p in paths]
    probs = np.asarray(predictions["probabilities"], np.float64)[order]
    unadapted = predictions.get("probabilities_unadapted")
    return {
        "probabilities": probs,
        "unadapted": probs if unadapted is None else np.asarray(unadapted, np.float64)[order],
    }


def fuse(workdirs: Sequence[str | Path], weights: Sequence[float] | None = None) -> dict:
    """The fused report of finished runs (not written).

    Args:
      workdirs: two or more run directories of the same protocol, classes and test files.
      weights: one non-negative weight per run (normalised to sum 1); None: equal weights.

    Returns:
      The report: ``folds`` (per fold WA/UA/n), ``fold_summary``, ``test`` (pooled metrics),
      ``test_unadapted``, ``class_names``, ``fusion`` (runs and weights), and each fold's
      fused predictions under ``fold_predictions``.

    Raises:
      ValueError: fewer than two runs, bad weights, or runs whose folds, classes or test files
        differ (the message names the run and fold).
      FileNotFoundError: a run or one of its folds has not finished.
    """
    runs = [Path(w) for w in workdirs]
    if len(runs) < 2:
        raise ValueError(f"fusion needs two or more runs, got {len(runs)}")
    w = np.ones(len(runs)) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (len(runs),) or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.sum(w) > 0:
        raise ValueError(
            f"weights must be {len(runs)} non-negative numbers, not all 0; got {weights}"
        )
    w = w / np.sum(w)
    per_run = [fold_results(run) for run in runs]
    first_folds, first = list(per_run[0]), per_run[0]
    class_names = list(next(iter(first.values()))["class_names"])
    fused = {}
    for run, results in zip(runs[1:], per_run[1:], strict=True):
        if list(results) != first_folds:
            raise ValueError(f"{run}: folds {list(results)} differ from {runs[0]}'s {first_folds}")
    for fold in first_folds:
        paths = first[fold]["predictions"]["paths"]
        labels = np.asarray(first[fold]["predictions"]["labels"])
        parts = []
        for run, results in zip(runs, per_run, strict=True):
            if list(results[fold]["class_names"]) != class_names:
                raise ValueError(f"{run}: classes differ from {runs[0]}'s {class_names}")
            parts.append(_aligned(results[fold], paths, run, fold))
        probs = sum(wi * p["probabilities"] for wi, p in zip(w, parts, strict=True))
        unadapted = sum(wi * p["unadapted"] for wi, p in zip(w, parts, strict=True))
        fused[fold] = {
            "test": metrics.classification_metrics(labels, probs, class_names),
            "test_unadapted": metrics.classification_metrics(labels, unadapted, class_names),
            "predictions": {
                "paths": list(paths),
                "labels": labels.tolist(),
                "probabilities": probs.tolist(),
                "probabilities_unadapted": unadapted.tolist(),
            },
        }
    report = experiments.aggregate(fused, class_names)
    report["fusion"] = {"runs": [str(r) for r in runs], "weights": w.tolist(), "rule": "mean"}
    report["fold_predictions"] = {name: r["predictions"] for name, r in fused.items()}
    report["class_names"] = class_names
    return report


def fuse_and_write(
    workdirs: Sequence[str | Path], output: str | Path, weights: Sequence[float] | None = None
) -> dict:
    """:func:`fuse`, with the report written into ``output`` (created; files written
    atomically).

    Raises:
      ValueError: ``output`` is one of the runs, or holds a report that is not a fusion's
        (it would be overwritten), besides :func:`fuse`'s errors.
    """
    output = Path(output)
    if any(output.resolve() == Path(run).resolve() for run in workdirs):
        raise ValueError(f"--workdir {output} is one of the runs; its report would be replaced")
    existing = output / "results.json"
    if existing.exists() and "fusion" not in json.loads(existing.read_text()):
        raise ValueError(f"{existing} is a run's report, not a fusion's; choose another --workdir")
    report = fuse(workdirs, weights)
    output.mkdir(parents=True, exist_ok=True)
    write_report(output, report, report["class_names"])
    logging.info(
        "Fused %d runs: UA %.1f %%, WA %.1f %% (unadapted UA %.1f %%) -> %s",
        len(workdirs),
        100 * report["test"]["ua"],
        100 * report["test"]["wa"],
        100 * report["test_unadapted"]["ua"],
        output / "results.json",
    )
    return report


def _parse_flags(argv: list[str]):
    from absl.flags import argparse_flags

    parser = argparse_flags.ArgumentParser(
        prog="python -m serjax.fusion",
        description="Late fusion of finished runs of one protocol: the mean of their test "
        "probabilities, scored per fold and pooled, written into --workdir.",
    )
    parser.add_argument("--runs", required=True, help="Comma-separated run directories.")
    parser.add_argument("--workdir", required=True, help="Where the fused report goes.")
    parser.add_argument(
        "--weights", default="", help="Comma-separated weights, one per run (default: equal)."
    )
    return parser.parse_args(argv[1:])


def main(args) -> int:
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    try:
        weights = [float(x) for x in args.weights.split(",")] if args.weights else None
    except ValueError:
        print(
            f"error: --weights must be comma-separated numbers, got {args.weights!r}",
            file=sys.stderr,
        )
        return 1
    try:
        report = fuse_and_write(runs, args.workdir, weights)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    names = report["class_names"]
    print(metrics.classification_report(report["test"], names))
    print("Test speakers not adapted to (test_unadapted):")
    print(metrics.classification_report(report["test_unadapted"], names))
    return 0


if __name__ == "__main__":
    from absl import app

    app.run(main, flags_parser=_parse_flags)
