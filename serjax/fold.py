"""One fold of a protocol: its parts decoded, its model trained and tested, its report.

:func:`train_fold` trains one fold's model (:class:`serjax.train.FoldTrainer`, or the
functionals classifier's :class:`serjax.fit_functionals.FunctionalsTrainer`);
:func:`train_together` trains several models side by side in one jitted program
(:mod:`serjax.vectorized`): the folds of a run, or one fold of several seeds' runs. Both leave
the same files in each fold's directory: checkpoints, TensorBoard, ``results.json``, the
confusion matrix and the classification report. :mod:`serjax.experiments` chooses the folds
and pools their reports.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

import ml_collections
import numpy as np
from absl import logging

from serjax import augment, data, files, metrics, writers
from serjax.train import FoldTrainer, Progress, Runtime, SplitData
from serjax.vectorized import StackedTrainer


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


def prepare_parts(
    config: ml_collections.ConfigDict,
    fold_dir: Path,
    split: data.Split,
    class_names: Sequence[str],
    cache: data.AudioCache,
) -> dict[str, SplitData]:
    """The fold's train, val and test parts, decoded (:func:`decode`), with the offline
    augmentation's copies added to the training part.

    Raises:
      ValueError: the training or test part has no usable utterance.
    """
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
    return parts


def train_fold(
    config: ml_collections.ConfigDict,
    fold_dir: Path,
    split: data.Split,
    class_names: Sequence[str],
    cache: data.AudioCache,
    runtime: Runtime,
) -> dict:
    """Trains and tests one fold; writes its report into ``fold_dir`` and returns it."""
    start = time.monotonic()
    parts = prepare_parts(config, fold_dir, split, class_names, cache)
    timings = {"load_seconds": time.monotonic() - start}
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
        unadapted = getattr(trainer, "unadapted", None)
        logging.info(
            "%s: test WA %.1f %%, UA %.1f %%%s (%.0f s)",
            fold_dir.name,
            100 * test["wa"],
            100 * test["ua"],
            f", not adapted UA {100 * unadapted['test']['ua']:.1f} %" if unadapted else "",
            sum(timings.values()),
        )
        return fold_report(
            config, fold_dir, parts, class_names, writer, progress, test, probs, timings, unadapted
        )


def train_together(
    members: Sequence[tuple[ml_collections.ConfigDict, Path, data.Split]],
    class_names: Sequence[str],
    cache: data.AudioCache,
    runtime: Runtime,
) -> list[dict]:
    """Trains and tests ``(config, fold_dir, split)`` models side by side in one program
    (:class:`serjax.vectorized.StackedTrainer`: the folds of a run, or one fold of several
    seeds' runs); writes each one's report, checkpoints and TensorBoard into its ``fold_dir``
    as :func:`train_fold` does and returns the reports in order. The timings' train and test
    seconds are those of all of them together (``models_together``)."""
    with contextlib.ExitStack() as stack:
        trainers, timings = [], []
        for config, fold_dir, split in members:
            start = time.monotonic()
            parts = prepare_parts(config, fold_dir, split, class_names, cache)
            timings.append({"load_seconds": time.monotonic() - start})
            writer = stack.enter_context(writers.MetricWriter(fold_dir / "tensorboard"))
            trainer = FoldTrainer(config, fold_dir, class_names, parts, runtime, writer)
            stack.callback(trainer.close)
            trainers.append(trainer)
        together = StackedTrainer(trainers)
        start = time.monotonic()
        progress = together.train()
        train_seconds = time.monotonic() - start
        start = time.monotonic()
        tests = together.test()
        shared = {
            "train_seconds": train_seconds,
            "test_seconds": time.monotonic() - start,
            "models_together": len(trainers),
        }
        return [
            fold_report(
                t.config,
                t.fold_dir,
                t.parts,
                class_names,
                t.writer,
                done,
                test,
                probs,
                {**timing, **shared},
            )
            for t, done, (test, probs), timing in zip(
                trainers, progress, tests, timings, strict=True
            )
        ]


def fold_report(
    config: ml_collections.ConfigDict,
    fold_dir: Path,
    parts: dict[str, SplitData],
    class_names: Sequence[str],
    writer: writers.MetricWriter,
    progress: Progress,
    test: dict,
    probs: np.ndarray,
    timings: dict,
    unadapted: dict | None = None,
) -> dict:
    """A trained fold's report: TensorBoard's test confusion matrix and hyper-parameters, and
    ``results.json`` with the rest (:func:`write_report`) in ``fold_dir``. ``unadapted``: the
    functionals trainer's test results without speaker adaptation, if any."""
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
