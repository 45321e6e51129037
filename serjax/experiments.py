"""Experiments: a run's data, its evaluation protocol's folds, training every fold, reports.

:func:`train_and_evaluate` is what ``python -m serjax.main`` runs: it loads the configured
corpora, splits them by the protocol (``config.data.protocol``), trains and tests each fold
with :class:`serjax.train.FoldTrainer` and writes the reports (per fold, and pooled over folds).
It never reads flags.

:func:`run_suite` runs a suite of them (:mod:`serjax.suites`: every reference system's variants
under the report's and an honest protocol) and writes its table; ``python -m
serjax.experiments --suite seeds --workdir runs/seeds [--only S1,S4] [--quick]
[--update-readme]`` is its command line.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import ml_collections
import numpy as np
from absl import logging

from serjax import augment, config_lib, data, files, metrics, suite_report, suites, writers
from serjax.progress import quiet_libraries
from serjax.train import FoldTrainer, Runtime, SplitData


def load_utterances(config: ml_collections.ConfigDict, workdir: Path) -> list[data.Utterance]:
    """Every usable utterance of the configured corpora, label-mapped and filtered."""
    utts: list[data.Utterance] = []
    for corpus in config.data.corpora:
        if corpus == "synthetic":
            from serjax.data import synthetic

            utts += synthetic.make_synthetic_corpus(
                workdir / "synthetic_corpus",
                num_speakers=config.data.synthetic_speakers,
                per_class_per_speaker=config.data.synthetic_per_class,
                sample_rate=config.data.sample_rate,
                seed=config.seed,
            )
            continue
        root = data.resolve_data_root(config.data_dir)
        data.ensure_corpus(corpus, root, download=config.download)
        utts += data.load_corpus(corpus, root)
    if config.data.gender:
        utts = data.filter_speakers(utts, gender=config.data.gender)
    mapping = dict(config.data.label_mapping) or None
    return data.select_labels(utts, tuple(config.data.classes) or None, mapping)


def class_names_of(config: ml_collections.ConfigDict, utts: Sequence[data.Utterance]) -> tuple:
    """The configured classes, or every label present in canonical order."""
    if config.data.classes:
        return tuple(config.data.classes)
    present = {u.label for u in utts}
    order = list(data.CANONICAL_EMOTIONS) + sorted(present - set(data.CANONICAL_EMOTIONS))
    return tuple(name for name in order if name in present)


def make_folds(
    config: ml_collections.ConfigDict, utts: Sequence[data.Utterance]
) -> list[tuple[str, data.Split]]:
    """The evaluation protocol's folds as (name, split); a single split is one fold."""
    cfg = config.data
    protocol = cfg.protocol
    if protocol == "named_speakers":
        split = data.speaker_split(
            utts, val_speakers=tuple(cfg.val_speakers), test_speakers=tuple(cfg.test_speakers)
        )
        return [("main", split)]
    if protocol == "loso":
        folds = data.loso_folds(utts, seed=config.seed)
    elif protocol == "speaker_kfold":
        folds = data.speaker_kfold(utts, k=cfg.folds, seed=config.seed, n_val_speakers=1)
    elif protocol == "speaker_fraction":
        split = data.speaker_fraction_split(
            utts, cfg.test_fraction, val_fraction=cfg.val_fraction, seed=config.seed
        )
        return [("main", split)]
    elif protocol == "file_fraction":  # speaker-dependent
        split = data.file_fraction_split(
            utts, cfg.test_fraction, val_fraction=cfg.val_fraction, seed=config.seed
        )
        return [("main", split)]
    else:  # per_corpus_speaker_fraction
        split = data.per_corpus_speaker_fraction_split(
            utts, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, seed=config.seed
        )
        return [("main", split)]
    if cfg.run_folds:
        wanted = {str(f) for f in cfg.run_folds}
        unknown = wanted - {name for name, _ in folds}
        if unknown:
            names = ", ".join(name for name, _ in folds)
            raise ValueError(
                f"data.run_folds names unknown folds {sorted(unknown)}; folds: {names}"
            )
        folds = [(name, split) for name, split in folds if name in wanted]
    return list(folds)


def decode(
    config: ml_collections.ConfigDict,
    utts: Sequence[data.Utterance],
    class_names: Sequence[str],
    cache: data.AudioCache,
) -> SplitData:
    """Decodes (cached), preprocesses (:class:`serjax.data.Preprocessing`, as inference does)
    and labels one part of a split; unusable files are skipped and counted. A part a protocol
    leaves empty (no validation speakers) stays empty."""
    if not utts:
        return SplitData((), (), np.zeros(0, np.int32))
    kept, waves = cache.load_many(utts, data.Preprocessing.from_config(config))
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.array([index[u.label] for u in kept], np.int32)
    return SplitData(tuple(kept), tuple(waves), labels)


def _counts(part: SplitData, class_names: Sequence[str]) -> dict:
    counts = np.bincount(part.labels, minlength=len(class_names))
    return {
        "utterances": len(part),
        "speakers": sorted({u.speaker for u in part.utterances}),
        "per_class": {name: int(c) for name, c in zip(class_names, counts, strict=True)},
    }


def write_report(directory: Path, result: dict, class_names: Sequence[str]) -> None:
    """results.json, confusion_matrix.png and classification_report.txt, each written atomically."""
    files.write_json_atomic(directory / "results.json", result)
    cm = np.array(result["test"]["confusion_matrix"])
    writers.plot_confusion_matrix(cm, class_names, directory / "confusion_matrix.png")
    report = metrics.classification_report(result["test"], class_names)
    files.write_text_atomic(directory / "classification_report.txt", report)


def train_fold(
    config: ml_collections.ConfigDict,
    fold_dir: Path,
    split: data.Split,
    class_names: Sequence[str],
    cache: data.AudioCache,
    runtime: Runtime,
) -> dict:
    """Trains and tests one fold; writes its report into ``fold_dir`` and returns it."""
    timings = {}
    start = time.monotonic()
    parts = {
        name: decode(config, getattr(split, name), class_names, cache)
        for name in ("train", "val", "test")
    }
    aug = augment.AugmentConfig.from_config(config.augment)
    if aug.offline:
        train = parts["train"]
        waves, source = augment.expand_offline(
            train.waveforms, sample_rate=config.data.sample_rate, aug=aug, seed=config.seed
        )
        utts = tuple(train.utterances[i] for i in source)
        parts["train"] = SplitData(utts, tuple(waves), train.labels[source])
        logging.info("Offline augmentation: %d training files become %d", len(train), len(utts))
    for name, part in parts.items():
        # Without a validation part the last epoch is tested; the functionals classifier
        # chooses its L2 on held-out training speakers instead.
        if not len(part) and name != "val":
            raise ValueError(f"the {name} part of the split in {fold_dir} has no usable utterance")
    timings["load_seconds"] = time.monotonic() - start
    with writers.MetricWriter(fold_dir / "tensorboard") as writer:
        trainer = _trainer_class(config)(config, fold_dir, class_names, parts, runtime, writer)
        try:
            start = time.monotonic()
            progress = trainer.train()
            timings["train_seconds"] = time.monotonic() - start
            start = time.monotonic()
            test, probs = trainer.test()
            timings["test_seconds"] = time.monotonic() - start
        finally:
            trainer.close()
        writer.confusion_matrix(
            progress.epoch, "test/confusion_matrix", np.array(test["confusion_matrix"]), class_names
        )
        writer.hparams(_flat_hparams(config), {"test/wa": test["wa"], "test/ua": test["ua"]})
    result = {
        "test": test,
        "best_val_ua": progress.best_val_ua,
        "epochs": progress.epoch,
        "steps": progress.step,
        "history": progress.history,
        "data": {name: _counts(part, class_names) for name, part in parts.items()},
        "timings": timings,
        "predictions": {
            "paths": [str(u.path) for u in parts["test"].utterances],
            "labels": parts["test"].labels.tolist(),
            "probabilities": np.round(probs, 6).tolist(),
        },
        "class_names": list(class_names),
        "config": config.to_dict(),
    }
    unadapted = getattr(trainer, "unadapted", None)
    if unadapted is not None:
        # Speaker-standardised functionals: the same test part without adapting to its
        # speaker (the statistics the checkpoint keeps, what inference uses by default).
        result["test_unadapted"] = unadapted["test"]
        result["predictions"]["probabilities_unadapted"] = np.round(
            unadapted["probabilities"], 6
        ).tolist()
    write_report(fold_dir, result, class_names)
    return result


def _trainer_class(config: ml_collections.ConfigDict):
    """:class:`serjax.train.FoldTrainer`, or for functionals the full-batch
    :class:`serjax.fit_functionals.FunctionalsTrainer`."""
    if config.features.kind == "functionals":
        from serjax.fit_functionals import FunctionalsTrainer

        return FunctionalsTrainer
    return FoldTrainer


def _flat_hparams(config: ml_collections.ConfigDict) -> dict:
    flat = {}

    def visit(prefix, node):
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, ml_collections.ConfigDict):
                visit(name + ".", value)
            elif isinstance(value, bool | int | float | str):
                flat[name] = value
            elif value is not None:
                flat[name] = str(value)

    visit("", config)
    return flat


def aggregate(fold_results: dict[str, dict], class_names: Sequence[str]) -> dict:
    """Pooled metrics over every fold's test predictions, and mean ± std over folds."""
    labels = np.concatenate([r["predictions"]["labels"] for r in fold_results.values()])
    probs = np.concatenate([r["predictions"]["probabilities"] for r in fold_results.values()])
    pooled = metrics.classification_metrics(labels, probs, class_names)
    per_fold = {
        name: {"wa": r["test"]["wa"], "ua": r["test"]["ua"], "n": len(r["predictions"]["labels"])}
        for name, r in fold_results.items()
    }
    summary = {}
    for key in ("wa", "ua"):
        values = np.array([row[key] for row in per_fold.values()])
        summary[f"{key}_mean"] = float(values.mean())
        summary[f"{key}_std"] = float(values.std())
    result = {"test": pooled, "folds": per_fold, "fold_summary": summary}
    if all("test_unadapted" in r for r in fold_results.values()):
        unadapted = np.concatenate(
            [r["predictions"]["probabilities_unadapted"] for r in fold_results.values()]
        )
        result["test_unadapted"] = metrics.classification_metrics(labels, unadapted, class_names)
    return result


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Runs the configured protocol end to end and leaves the report in ``workdir``.

    Resumable: a fold whose report exists is skipped, and a fold with checkpoints continues after
    its last completed epoch, ending with the same numbers as an uninterrupted run.
    """
    config_lib.validate(config)
    workdir = Path(workdir)
    runtime = Runtime()
    logging.info("Devices: %s", ", ".join(str(d) for d in jax.devices()))
    utts = load_utterances(config, workdir)
    # Only now: a run that cannot find its data leaves no trace in the workdir.
    workdir.mkdir(parents=True, exist_ok=True)
    files.write_json_atomic(workdir / "config.json", config.to_dict())
    class_names = class_names_of(config, utts)
    folds = make_folds(config, utts)
    cache = data.AudioCache(config.data.cache_dir or None)
    results = {}
    single = len(folds) == 1 and folds[0][0] == "main"
    for index, (name, split) in enumerate(folds):
        fold_dir = workdir if single else workdir / "folds" / name
        done = fold_dir / "results.json"
        if done.exists() and not single:
            results[name] = json.loads(done.read_text())
            logging.info("Fold %s already finished; reusing its results", name)
            continue
        logging.info(
            "Fold %s (%d/%d): train %d, val %d, test %d utterances",
            name,
            index + 1,
            len(folds),
            len(split.train),
            len(split.val),
            len(split.test),
        )
        results[name] = train_fold(config, fold_dir, split, class_names, cache, runtime)
    if single:
        final = results["main"]
    else:
        final = aggregate(results, class_names)
        final.update(class_names=list(class_names), config=config.to_dict())
        write_report(workdir, final, class_names)
    logging.info("Test results:\n%s", metrics.classification_report(final["test"], class_names))
    return final


# ---------------------------------------------------------------------------------------------
# Suites: every variant of the reference systems, under the report's and the honest protocol


CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"


def machine() -> dict:
    """What this process runs on: JAX's platform and devices, the CPU, the OS and the load."""
    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:  # not Linux
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info = {
        "platform": jax.default_backend(),
        "devices": f"{len(devices)} × {', '.join(kinds)}",
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "os": platform.platform(),
        "load_average": load,
    }
    accel = "" if info["platform"] == "cpu" else f"{info['devices']} ({info['platform']}), "
    info["summary"] = f"{accel}{cpu}, {info['cpu_cores']} cores, {platform.system()}"
    return info


def suite_config(
    variant: suites.Variant,
    protocol: suites.Protocol,
    seed: int,
    quick: bool,
    configs_dir: Path = CONFIGS_DIR,
) -> ml_collections.ConfigDict:
    """The config of one run of a suite: the variant's config file, then the variant's, the
    protocol's and (with ``quick``) the quick overrides, and the seed.

    Raises:
      ValueError: an override names a field the config does not have.
    """
    config = config_lib.load_config_file(configs_dir / f"{variant.config}.py")
    layers = [variant.overrides, protocol.overrides]
    if quick:
        layers += [suites.QUICK, variant.quick, protocol.quick]
    for layer in layers:
        for dotted, value in layer.items():
            *path, field = dotted.split(".")
            node = config
            for part in path:
                node = node[part]
            # The model's hyper-parameters default to the registry's; any other field must exist.
            if field not in node and path != ["model"]:
                raise ValueError(f"{variant.system} {variant.name}: no config field {dotted}")
            node[field] = value
    config.seed = seed
    return config


def run_suite(
    suite: suites.Suite,
    workdir: str | Path,
    *,
    only: Sequence[str] = (),
    quick: bool = False,
    data_dir: str | None = None,
    configs_dir: Path = CONFIGS_DIR,
    command: str = "",
) -> list[dict]:
    """Trains every run of ``suite`` not yet complete, then writes its table.

    Each run goes to ``workdir/<system>/<variant>/<protocol>/seed<k>`` through
    :func:`train_and_evaluate` (so a killed run resumes after its last epoch); a run whose
    ``results.json`` and ``run.json`` exist is complete and skipped. Writes ``RESULTS.md`` and
    ``results.json`` into ``workdir`` (:mod:`serjax.suite_report`) and returns the rows.

    Args:
      only: systems to run (``("S1", "S4")``); () runs every one.
      quick: a smoke pass (one epoch, one seed, one fold): every row says so.

    Raises:
      ValueError: an unknown system in ``only``, or a run directory made in the other mode
        (``--quick`` and full runs never share a directory).
    """
    workdir = Path(workdir)
    unknown = set(only) - set(suite.systems())
    if unknown:
        raise ValueError(
            f"unknown systems {sorted(unknown)}; suite {suite.name} has {suite.systems()}"
        )
    this_machine = machine()
    rows = []
    for variant in suite.variants:
        if only and variant.system not in only:
            continue
        for protocol in variant.protocols:
            runs = []
            for seed in suite.seeds(protocol, quick):
                run_dir = workdir / variant.system / variant.name / protocol.kind / f"seed{seed}"
                done = suite_report.load_run(run_dir)
                if done is not None and done[1]["quick"] != quick:
                    raise ValueError(
                        f"{run_dir} holds a {'--quick' if done[1]['quick'] else 'full'} run; "
                        "use another --workdir"
                    )
                if done is None:
                    config = suite_config(variant, protocol, seed, quick, configs_dir)
                    if data_dir:
                        config.data_dir = data_dir
                    logging.info("Suite %s: %s", suite.name, run_dir.relative_to(workdir))
                    start = time.monotonic()
                    train_and_evaluate(config, run_dir)
                    run = {
                        "seconds": time.monotonic() - start,
                        "quick": quick,
                        "machine": this_machine,
                        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                    }
                    files.write_json_atomic(run_dir / "run.json", run)
                    done = suite_report.load_run(run_dir)
                else:
                    logging.info("Suite %s: %s is complete", suite.name, run_dir)
                runs.append(done)
            rows.append(suite_report.summarize_runs(variant, protocol, runs))
    suite_report.write(workdir, suite, rows, this_machine, command)
    return rows


# ---------------------------------------------------------------------------------------------
# The command line: python -m serjax.experiments --suite seeds --workdir runs/seeds


def _parse_flags(argv: list[str]):
    from absl.flags import argparse_flags

    parser = argparse_flags.ArgumentParser(
        prog="python -m serjax.experiments",
        description="Train every run of a suite (skipping complete ones) and write its table "
        "(RESULTS.md, results.json) into --workdir.",
    )
    parser.add_argument(
        "--suite",
        default="seeds",
        choices=sorted(suites.SUITES),
        help="Which suite to run (default: seeds, every reference system's variants).",
    )
    parser.add_argument("--workdir", required=True, help="Where the runs and the table go.")
    parser.add_argument("--only", default="", help="Comma-separated systems, e.g. S1,S4.")
    parser.add_argument(
        "--quick", action="store_true", help="Smoke pass: one epoch, one seed, one fold."
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="Paste the summary table into README.md between its results markers.",
    )
    parser.add_argument("--data_dir", default=None, help="Data root (default: $SERJAX_DATA_DIR).")
    return parser.parse_args(argv[1:])


def main(args) -> int:
    # The console keeps to serjax's progress, as the training job's does (serjax.main).
    logging.get_absl_handler().addFilter(quiet_libraries)
    # Runs of the same shapes (a variant's protocols and seeds) compile their steps once.
    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(Path(args.workdir) / "jax_cache"))
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    command = "python -m serjax.experiments " + shlex.join(sys.argv[1:])
    try:
        rows = run_suite(
            suites.SUITES[args.suite],
            args.workdir,
            only=only,
            quick=args.quick,
            data_dir=args.data_dir,
            command=command,
        )
    except (ValueError, FileNotFoundError, data.DownloadError) as error:
        logging.error("%s", error)
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.update_readme:
        summary, _ = suite_report.markdown_tables(rows, suites.SUITES[args.suite])
        readme = CONFIGS_DIR.parent / "README.md"
        link = os.path.relpath(Path(args.workdir).resolve() / "RESULTS.md", readme.parent)
        suite_report.update_readme(readme, summary, link)
    print((Path(args.workdir) / "RESULTS.md").read_text())
    return 0


if __name__ == "__main__":
    from absl import app

    app.run(main, flags_parser=_parse_flags)
