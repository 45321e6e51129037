"""Training, as a library: the loop of one fold, its checkpoints and early stopping.

The steps it runs are :mod:`serjax.steps` (jitted here). Parameters are replicated and batches
sharded over a ``data`` mesh axis, so one command uses every local device. Folds, reports and
the protocol around them are :mod:`serjax.experiments`; several folds' models trained at once
are :mod:`serjax.vectorized`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from serjax import augment, data, features, forward, metrics, writers
from serjax.checkpointing import Checkpointer
from serjax.features import FeatureSpec
from serjax.progress import format_duration
from serjax.steps import (
    StepConfig,
    build_model_and_optimizer,
    eval_step,
    evaluation_model_state,
    hyperparams,
    train_step,
)


@dataclasses.dataclass(frozen=True)
class SplitData:
    """Preprocessed audio of one part of a split, with integer labels in class order."""

    utterances: tuple[data.Utterance, ...]
    waveforms: tuple[np.ndarray, ...]
    labels: np.ndarray
    # [N, 2, D]: each utterance's input statistics (mean, scale) with
    # features.frame_standardise="speaker" (its speaker's, forward.speaker_statistics); else None.
    frame_stats: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def speakers(self) -> np.ndarray:
        """``[N]`` each utterance's ``Utterance.speaker_id``."""
        return np.array([u.speaker_id for u in self.utterances])


def unadapted_report(part: SplitData, probs: np.ndarray, class_names: Sequence[str]) -> dict:
    """A speaker-standardised run's test figures without adaptation to the test speaker (the
    statistics the model keeps): ``{"test": metrics, "probabilities": [N, K]}``, the report's
    ``test_unadapted``."""
    return {
        "test": metrics.classification_metrics(part.labels, probs, class_names),
        "probabilities": probs.copy(),
    }


# ---------------------------------------------------------------------------------------------
# State handling: devices and checkpoints


class Runtime:
    """The device mesh: parameters replicated, batches split along the ``data`` axis."""

    def __init__(self):
        self.mesh = Mesh(np.array(jax.devices()), ("data",))
        self.replicated = NamedSharding(self.mesh, P())
        self.sharded = NamedSharding(self.mesh, P("data"))

    @property
    def num_devices(self) -> int:
        return self.mesh.size

    def put_batch(self, batch: data.Batch, frame_stats: np.ndarray | None = None) -> dict:
        """The batch's arrays on the devices; with ``frame_stats`` (a part's ``[N, 2, D]``)
        each row's statistics too, as ``frame_mean`` and ``frame_scale``."""
        arrays = {
            "waveforms": batch.waveforms,
            "lengths": batch.lengths,
            "labels": batch.labels,
            "mask": batch.mask,
        }
        if batch.segment_index is not None:
            arrays["segment_index"] = batch.segment_index
            arrays["segment_mask"] = batch.segment_mask
        if frame_stats is not None:
            arrays["frame_mean"] = frame_stats[batch.index, 0]
            arrays["frame_scale"] = frame_stats[batch.index, 1]
        return jax.device_put(arrays, self.sharded)

    def put_state(self, state):
        return jax.device_put(state, self.replicated)


# ---------------------------------------------------------------------------------------------
# The loop


# Within a long epoch, a progress line at most this often.
REPORT_SECONDS = 20.0


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass
class Progress:
    """What resumption needs beyond the arrays: saved as checkpoint metadata."""

    epoch: int = 0  # epochs completed
    step: int = 0
    best_val_ua: float = -1.0
    best_val_loss: float = math.inf
    bad_epochs: int = 0  # epochs without a better validation UA (early stopping)
    plateau_epochs: int = 0  # epochs without a lower validation loss (reduce-on-plateau)
    history: list = dataclasses.field(default_factory=list)


class FoldTrainer:
    """Trains one fold from scratch (or resumes it) and evaluates its best checkpoint."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        fold_dir: Path,
        class_names: Sequence[str],
        parts: dict[str, SplitData],
        runtime: Runtime,
        writer: writers.MetricWriter,
    ):
        self.config = config
        self.fold_dir = fold_dir
        self.class_names = tuple(class_names)
        self.parts = parts
        self.runtime = runtime
        self.writer = writer
        self.spec = FeatureSpec.from_config(config)
        self.step_config = StepConfig(
            spec=self.spec,
            num_classes=len(class_names),
            l2=float(config.optim.l2),
            l2_params=config.optim.l2_params,
            label_smoothing=float(config.optim.label_smoothing),
            augment=augment.AugmentConfig.from_config(config.augment),
            seed=config.seed,
        )
        all_lengths = [len(w) for part in parts.values() for w in part.waveforms]
        self.buckets = data.default_buckets(all_lengths, n_buckets=config.data.num_buckets)
        cfg = config.train
        self.segment_counts = None
        self.steps_per_epoch = data.num_batches(len(parts["train"]), cfg.batch_size)
        if cfg.segment_batch:
            # Counted on what the batches hold: waveforms cut to the largest bucket.
            lengths = [len(w) for w in parts["train"].waveforms]
            self.segment_counts = features.segment_counts(
                np.minimum(lengths, max(self.buckets)), self.spec
            )
            self.steps_per_epoch = data.num_segment_batches(
                lengths,
                self.segment_counts,
                segment_batch=cfg.segment_batch,
                group=cfg.segment_group,
                buckets=self.buckets,
            )
        rows = {"batch_size": cfg.batch_size, "eval_batch_size": cfg.eval_batch_size}
        if cfg.segment_batch:
            rows["segment_batch // segment_group"] = cfg.segment_batch // cfg.segment_group
        for field, value in rows.items():
            if value % runtime.num_devices:
                raise ValueError(
                    f"train.{field}={value} is not divisible by the "
                    f"{runtime.num_devices} devices the batch is split over"
                )
        model, optimizer = build_model_and_optimizer(config, len(class_names), self.steps_per_epoch)
        forward.fit_input_standardiser(model, config, parts["train"].waveforms)
        if config.features.frame_standardise == "speaker":
            self.parts = parts = {
                name: dataclasses.replace(
                    part, frame_stats=forward.speaker_statistics(config, part)
                )
                for name, part in parts.items()
            }
        self.unadapted: dict | None = None
        model.train()
        self.train_graph, state = nnx.split((model, optimizer))
        model.eval()
        self.eval_graph, _ = nnx.split(model)
        self.template = _shapes(_items(state))
        self.state = runtime.put_state(state)
        weights = np.ones(len(class_names), np.float32)
        if config.optim.class_weighted:
            weights = data.class_weights(parts["train"].labels, len(class_names)).astype(np.float32)
        self.class_weights = jnp.asarray(weights)
        self._train = jax.jit(
            functools.partial(train_step, self.train_graph, step=self.step_config), donate_argnums=0
        )
        self._eval = jax.jit(functools.partial(eval_step, self.eval_graph, step=self.step_config))
        self.checkpoints = Checkpointer(
            fold_dir / "checkpoints", keep_latest=config.train.keep_latest
        )

    # -- checkpoints --------------------------------------------------------------------------
    def _meta(self, progress: Progress) -> dict:
        return {
            "progress": dataclasses.asdict(progress),
            "class_names": list(self.class_names),
            "config": self.config.to_dict(),
        }

    def _save(self, progress: Progress, best: bool) -> None:
        items = _items(jax.device_get(self.state))
        if best:
            # Inference reads the best model item: with a parameter average, that average.
            averaged = {**items, "model": nnx.to_pure_dict(self.eval_model_state())}
            self.checkpoints.save_best(
                progress.step, jax.device_get(averaged), self._meta(progress)
            )
        self.checkpoints.save_latest(progress.step, items, self._meta(progress))

    def restore(self, which: str) -> Progress:
        """Loads checkpoint ``which`` ("latest" or "best") into the state; returns its progress."""
        items, meta = self.checkpoints.restore(which, self.template)
        nnx.replace_by_pure_dict(self.state, {0: items["model"], 1: items["optimizer"]})
        self.state = self.runtime.put_state(self.state)
        return Progress(**meta["progress"])

    # -- evaluation ---------------------------------------------------------------------------
    def eval_batches(self, part: SplitData):
        """``part``'s evaluation batches, in input order (the plan stacked runs share)."""
        return data.iterate_batches(
            part.waveforms,
            part.labels,
            batch_size=self.config.train.eval_batch_size,
            buckets=self.buckets,
            shuffle=False,
            seed=0,
        )

    def eval_model_state(self) -> nnx.State:
        """The model state evaluated: the trained one, or its parameter average
        (``optim.ema_decay``, :func:`serjax.steps.evaluation_model_state`)."""
        if not self.config.optim.ema_decay:
            return self.state[0]
        return evaluation_model_state(self.train_graph, self.state, self.config.optim.ema_decay)

    def predict(self, part: SplitData) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities ``[N, K]`` and per-utterance losses ``[N]`` in input order."""
        probs, losses = [], []
        model_state = self.eval_model_state()
        for batch in self.eval_batches(part):
            p, loss = self._eval(model_state, self.runtime.put_batch(batch, part.frame_stats))
            keep = np.asarray(batch.mask)
            probs.append(np.asarray(p)[keep])
            losses.append(np.asarray(loss)[keep])
        return np.concatenate(probs), np.concatenate(losses)

    def evaluate(self, part: SplitData) -> tuple[dict, np.ndarray]:
        probs, losses = self.predict(part)
        return score(part, probs, losses, self.class_names), probs

    # -- training -----------------------------------------------------------------------------
    def plan(self, epoch: int):
        """The training batches of one epoch: utterances (all their segments), or segments
        drawn across the training set (``train.segment_batch``)."""
        train, cfg = self.parts["train"], self.config.train
        common = {"buckets": self.buckets, "seed": self.config.seed, "epoch": epoch}
        if self.segment_counts is None:
            return data.iterate_batches(
                train.waveforms, train.labels, batch_size=cfg.batch_size, shuffle=True, **common
            )
        return data.iterate_segment_batches(
            train.waveforms,
            train.labels,
            self.segment_counts,
            segment_batch=cfg.segment_batch,
            group=cfg.segment_group,
            **common,
        )

    def _learning_rate(self) -> float:
        _, optimizer = nnx.merge(self.train_graph, self.state)
        return float(hyperparams(optimizer.opt_state)["learning_rate"].get_value())

    def _scale_learning_rate(self, factor: float) -> None:
        model, optimizer = nnx.merge(self.train_graph, self.state)
        rate = hyperparams(optimizer.opt_state)["learning_rate"]
        rate.set_value(rate.get_value() * factor)
        self.state = self.runtime.put_state(nnx.state((model, optimizer)))

    def train(self) -> Progress:
        progress = self.resume()
        while not self.finished(progress):
            epoch_start = time.monotonic()
            losses = self._train_epoch(progress)
            train_seconds = time.monotonic() - epoch_start
            val = self.evaluate(self.parts["val"])[0] if len(self.parts["val"]) else None
            self.end_epoch(progress, losses, val, train_seconds)
        self.checkpoints.wait_until_finished()
        return progress

    def resume(self) -> Progress:
        """The progress of the latest checkpoint (its state restored), or a fresh one."""
        progress = Progress()
        if self.checkpoints.latest_step() is not None:
            progress = self.restore("latest")
            logging.info(
                "Resuming %s after epoch %d (step %d)", self.fold_dir, progress.epoch, progress.step
            )
        self._started, self._first_epoch = time.monotonic(), progress.epoch
        return progress

    def finished(self, progress: Progress) -> bool:
        """Whether training is over: every epoch run, or stopped early."""
        patience = self.config.train.patience
        if (
            progress.epoch < self.config.train.epochs
            and patience
            and progress.bad_epochs >= patience
        ):
            logging.info(
                "Early stopping: no better validation UA for %d epochs", progress.bad_epochs
            )
            return True
        return progress.epoch >= self.config.train.epochs

    def check_loss(self, loss: float, progress: Progress) -> None:
        """Raises :class:`NonFiniteLossError` for a NaN or infinite loss of the next step."""
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"loss is {loss} at step {progress.step + 1} (epoch {progress.epoch + 1}); "
                f"stopping with the last good checkpoint in {self.checkpoints.directory}"
            )

    def _train_epoch(self, progress: Progress) -> list[float]:
        """Runs one epoch's steps; returns their losses."""
        epoch_start = last_report = time.monotonic()
        losses = []
        frame_stats = self.parts["train"].frame_stats
        for batch in self.plan(progress.epoch):
            self.state, loss = self._train(
                self.state, self.runtime.put_batch(batch, frame_stats), self.class_weights
            )
            self.check_loss(float(loss), progress)
            losses.append(float(loss))
            progress.step += 1
            if time.monotonic() - last_report > REPORT_SECONDS:
                last_report = time.monotonic()
                elapsed = last_report - epoch_start
                logging.info(
                    "  epoch %d: step %d/%d  loss %.4f  %.2f steps/s  epoch ETA %s",
                    progress.epoch + 1,
                    len(losses),
                    self.steps_per_epoch,
                    float(np.mean(losses)),
                    len(losses) / elapsed,
                    format_duration(elapsed / len(losses) * (self.steps_per_epoch - len(losses))),
                )
        return losses

    def end_epoch(
        self, progress: Progress, losses: list[float], val: dict | None, train_seconds: float
    ) -> None:
        """After an epoch's steps (``losses``) and its validation scores (None without
        validation speakers: every epoch counts as the best, so the last is tested): early
        stopping and plateau counters, the history, checkpoints, TensorBoard and the log line."""
        config = self.config
        has_val = val is not None
        if not has_val:
            val = dict.fromkeys(("loss", "wa", "ua", "confusion_matrix"))
        progress.epoch += 1
        lr = self._learning_rate()
        improved = not has_val or val["ua"] > progress.best_val_ua
        if improved:
            progress.best_val_ua = val["ua"] if has_val else progress.best_val_ua
            progress.bad_epochs = 0
        else:
            progress.bad_epochs += 1
        if not has_val:
            pass
        elif val["loss"] < progress.best_val_loss:
            progress.best_val_loss = val["loss"]
            progress.plateau_epochs = 0
        else:
            progress.plateau_epochs += 1
            if (
                config.optim.schedule == "plateau"
                and progress.plateau_epochs >= config.optim.plateau_patience
            ):
                self._scale_learning_rate(config.optim.plateau_factor)
                progress.plateau_epochs = 0
        row = {
            "epoch": progress.epoch,
            "train_loss": float(np.mean(losses)),
            "val_loss": val["loss"],
            "val_wa": val["wa"],
            "val_ua": val["ua"],
            "learning_rate": lr,
        }
        progress.history.append(row)
        self._save(progress, best=improved)
        self.writer.scalars(
            progress.epoch, {k: v for k, v in row.items() if k != "epoch" and v is not None}
        )
        if has_val:
            self.writer.confusion_matrix(
                progress.epoch,
                "val/confusion_matrix",
                np.array(val["confusion_matrix"]),
                self.class_names,
            )
        epochs = config.train.epochs
        elapsed = time.monotonic() - self._started
        eta = elapsed / (progress.epoch - self._first_epoch) * (epochs - progress.epoch)
        scores = "no validation set"
        if has_val:
            star = " *" if improved else ""
            scores = (
                f"val_loss {val['loss']:.4f}  val_WA {val['wa']:.3f}  val_UA {val['ua']:.3f}{star}"
            )
        logging.info(
            "epoch %d/%d  train_loss %.4f  %s  lr %.2e  %.1f utt/s  ETA %s",
            progress.epoch,
            epochs,
            row["train_loss"],
            scores,
            lr,
            len(self.parts["train"]) / max(train_seconds, 1e-9),
            format_duration(eta),
        )

    def test(self) -> tuple[dict, np.ndarray]:
        """Metrics of the best checkpoint (by validation UA) on the test part. With
        ``features.frame_standardise="speaker"`` each test speaker is standardised with their
        own statistics, and the figures without them (the training part's statistics, which
        the model keeps: what inference on a new speaker does) are kept in :attr:`unadapted`."""
        self.restore("best")
        part = self.parts["test"]
        if part.frame_stats is not None:
            probs = self.predict(dataclasses.replace(part, frame_stats=None))[0]
            self.unadapted = unadapted_report(part, probs, self.class_names)
        return self.evaluate(part)

    def close(self) -> None:
        self.checkpoints.close()


def score(
    part: SplitData, probs: np.ndarray, losses: np.ndarray, class_names: Sequence[str]
) -> dict:
    """Metrics of probabilities ``[N, K]`` of ``part`` (:mod:`serjax.metrics`) and the mean of
    the per-utterance losses ``[N]``."""
    result = metrics.classification_metrics(part.labels, probs, class_names)
    result["loss"] = float(np.mean(losses))
    return result


def _items(state: nnx.State) -> dict:
    """The checkpoint items of a ``(model, optimizer)`` state, as plain nested dicts."""
    pure = nnx.to_pure_dict(state)
    return {"model": pure[0], "optimizer": pure[1]}


def _shapes(tree):
    """Shapes and dtypes of a pytree's arrays: the template a restore fills."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)
