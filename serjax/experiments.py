"""Experiments: a run's data, its evaluation protocol's folds, training every fold, reports.

:func:`train_and_evaluate` is what ``python -m serjax.main`` runs: it loads the configured
corpora, splits them by the protocol (``config.data.protocol``), trains and tests each fold
with :mod:`serjax.fold` (one after another, or side by side in one program with
``train.vectorize``: every fold's model, or each fold's models of several seeds) and writes the
reports (per fold, and pooled over folds). It never reads flags.

:func:`run_suite` runs a suite of them (:mod:`serjax.suites`: every reference system's variants
under the report's and an honest protocol) and writes its table; ``python -m
serjax.experiments --suite seeds --workdir runs/seeds [--only S1,S4] [--quick]
[--update-readme]`` is its command line.
"""

from __future__ import annotations

import dataclasses
import itertools
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

from serjax import config_lib, data, files, metrics, suite_report, suites
from serjax.fold import train_fold, train_together, write_report
from serjax.progress import quiet_libraries
from serjax.train import Runtime


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


@dataclasses.dataclass
class _Run:
    """One run of :func:`train_and_evaluate`: its config and workdir, its protocol's folds, the
    reports of folds already finished, and ``todo``: ``(name, fold_dir, split)`` to train."""

    config: ml_collections.ConfigDict
    workdir: Path
    class_names: tuple
    folds: list
    results: dict
    todo: list


def _prepare_run(config: ml_collections.ConfigDict, workdir: Path) -> _Run:
    utts = load_utterances(config, workdir)
    # Only now: a run that cannot find its data leaves no trace in the workdir.
    workdir.mkdir(parents=True, exist_ok=True)
    files.write_json_atomic(workdir / "config.json", config.to_dict())
    folds = make_folds(config, utts)
    run = _Run(config, workdir, class_names_of(config, utts), folds, {}, [])
    single = len(folds) == 1 and folds[0][0] == "main"
    for index, (name, split) in enumerate(folds):
        fold_dir = workdir if single else workdir / "folds" / name
        done = fold_dir / "results.json"
        if done.exists() and not single:
            run.results[name] = json.loads(done.read_text())
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
        run.todo.append((name, fold_dir, split))
    return run


def _finish_run(run: _Run) -> dict:
    """The run's report: its one fold's, or the folds' pooled (written into its workdir)."""
    results = {name: run.results[name] for name, _ in run.folds}  # in the protocol's order
    if len(run.folds) == 1 and run.folds[0][0] == "main":
        final = results["main"]
    else:
        final = aggregate(results, run.class_names)
        final.update(class_names=list(run.class_names), config=run.config.to_dict())
        write_report(run.workdir, final, run.class_names)
    report = metrics.classification_report(final["test"], run.class_names)
    logging.info("Test results of %s:\n%s", run.workdir, report)
    return final


def _groups(vectorize: str, runs: Sequence[_Run]) -> list[list[tuple[_Run, tuple]]]:
    """The models to train together (``train.vectorize``): each fold alone ("none"), every fold
    of the run ("folds"), or the same fold of every seed's run ("seeds")."""
    members = [[(run, fold) for fold in run.todo] for run in runs]
    if vectorize == "none":
        return [[member] for run in members for member in run]
    if vectorize == "folds":
        return [member for member in members if member]
    columns = itertools.zip_longest(*members)
    return [[member for member in column if member is not None] for column in columns]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Runs the configured protocol end to end and leaves the report in ``workdir``.

    With ``train.vectorize="seeds"`` it makes one run per seed of ``train.seeds``, each in
    ``workdir/seed<k>`` with the config's seed set to k (as a run of that seed alone would be),
    trains the runs' models of each fold side by side and returns ``{"seeds": {k: report}}``.

    Resumable: a fold whose report exists is skipped, and a fold with checkpoints continues after
    its last completed epoch, ending with the same numbers as an uninterrupted run.
    """
    config_lib.validate(config)
    workdir = Path(workdir)
    runtime = Runtime()
    logging.info("Devices: %s", ", ".join(str(d) for d in jax.devices()))
    vectorize = config.train.vectorize
    runs_of = [(config, workdir)]
    if vectorize == "seeds":
        runs_of = [
            (_with_seed(config, seed), workdir / f"seed{seed}") for seed in config.train.seeds
        ]
    runs = [_prepare_run(run_config, run_dir) for run_config, run_dir in runs_of]
    if vectorize == "seeds":
        files.write_json_atomic(workdir / "config.json", config.to_dict())
    cache = data.AudioCache(config.data.cache_dir or None)
    for group in _groups(vectorize, runs):
        members = [(run.config, fold_dir, split) for run, (_, fold_dir, split) in group]
        if len(group) == 1:
            reports = [train_fold(*members[0], group[0][0].class_names, cache, runtime)]
        else:
            logging.info("Training %d models side by side in one program", len(group))
            reports = train_together(members, group[0][0].class_names, cache, runtime)
        for (run, (name, _, _)), report in zip(group, reports, strict=True):
            run.results[name] = report
    finals = [_finish_run(run) for run in runs]
    if vectorize == "seeds":
        return {"seeds": {run.config.seed: final for run, final in zip(runs, finals, strict=True)}}
    return finals[0]


def _with_seed(config: ml_collections.ConfigDict, seed: int) -> ml_collections.ConfigDict:
    """``config`` as a run of one seed: ``seed`` set, and no seeds left to vectorise over."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.seed = seed
    config.train.vectorize = "none"
    config.train.seeds = ()
    return config


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
