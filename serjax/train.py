"""Training, as a library: the train step, the evaluation step and the loop of one fold.

The train step is one jitted function: padded waveforms → dsp features → (augmentation) →
model → loss → optax update. The evaluation step is :func:`serjax.forward.predict_step` (the
function inference runs) plus the loss. Parameters are replicated and batches sharded over a
``data`` mesh axis, so one command uses every local device. Folds, reports and the protocol
around them are :mod:`serjax.experiments`.
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
import optax
from absl import logging
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from serjax import augment, data, features, forward, metrics, writers
from serjax.checkpointing import Checkpointer
from serjax.features import FeatureSpec
from serjax.progress import format_duration


@dataclasses.dataclass(frozen=True)
class SplitData:
    """Preprocessed audio of one part of a split, with integer labels in class order."""

    utterances: tuple[data.Utterance, ...]
    waveforms: tuple[np.ndarray, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.utterances)


# ---------------------------------------------------------------------------------------------
# Model, optimiser, steps


def create_optimizer(
    config: ml_collections.ConfigDict, steps_per_epoch: int
) -> optax.GradientTransformation:
    """The optimiser with its learning-rate schedule; the rate is an injected hyper-parameter so
    that reduce-on-plateau can lower it between epochs and checkpoints keep it."""
    cfg = config.optim
    total = max(1, steps_per_epoch * config.train.epochs)
    if cfg.schedule == "cosine":
        warmup = int(cfg.warmup_epochs * steps_per_epoch)
        learning_rate = optax.warmup_cosine_decay_schedule(
            0.0, cfg.learning_rate, warmup_steps=max(warmup, 0), decay_steps=max(total, warmup + 1)
        )
    else:
        learning_rate = cfg.learning_rate
    if cfg.optimizer == "adam":
        base = optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)
    elif cfg.optimizer == "adamw":
        base = optax.inject_hyperparams(optax.adamw)(
            learning_rate=learning_rate, weight_decay=cfg.weight_decay
        )
    else:
        base = optax.inject_hyperparams(optax.sgd)(
            learning_rate=learning_rate, momentum=cfg.momentum
        )
    if cfg.grad_clip > 0:
        return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), base)
    return base


def build_model_and_optimizer(
    config: ml_collections.ConfigDict, num_classes: int, steps_per_epoch: int = 1
) -> tuple[nnx.Module, nnx.Optimizer]:
    """The model and its optimiser, whose states a checkpoint holds (as separate items, so
    that inference restores the model's alone)."""
    model = forward.create_model(config, num_classes)
    optimizer = nnx.Optimizer(model, create_optimizer(config, steps_per_epoch), wrt=nnx.Param)
    return model, optimizer


def _hyperparams(opt_state) -> dict:
    """The injected hyper-parameters inside a (possibly chained) optimiser state."""
    for node in jax.tree.leaves(opt_state, is_leaf=lambda n: hasattr(n, "hyperparams")):
        if hasattr(node, "hyperparams"):
            return node.hyperparams
    raise ValueError("optimizer state has no injected hyper-parameters")


def l2_penalty(model_params: nnx.State, selector: str) -> jax.Array:
    """Sum of squares of the parameters whose path contains ``selector`` ("" selects all)."""
    total = jnp.zeros((), jnp.float32)
    for path, value in nnx.to_flat_state(model_params):
        if selector in "/".join(str(p) for p in path):
            total += jnp.sum(jnp.square(value.get_value()))
    return total


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Everything static about the train and eval steps (hashable, so jit can key on it)."""

    spec: FeatureSpec
    num_classes: int
    l2: float = 0.0
    l2_params: str = "head"
    augment: augment.AugmentConfig | None = None  # training only; None or disabled: no change
    seed: int = 0


def _logits(model, waveforms, lengths, mask, step: StepConfig, key=None, drawn=None):
    """Logits ``[B, W, K]``, their weights ``[B, W]`` and the mixup pairing (or None).

    The forward path of :mod:`serjax.forward`; with a ``key`` (training only) the inputs go
    through the step's augmentation first; ``drawn`` selects segments
    (:func:`serjax.forward.logits_from_inputs`).
    """
    lengths = forward.full_lengths(waveforms, lengths, mask)
    pairing = None
    if key is None:
        x, steps = forward.model_inputs(waveforms, lengths, step.spec)
    else:
        x, steps, pairing = augment.training_inputs(
            key, waveforms, lengths, mask, step.spec, step.augment
        )
    logits, weight = forward.logits_from_inputs(model, x, steps, mask, step.spec, drawn)
    return logits, weight, pairing


def train_step(graphdef, state, batch, class_weights, step: StepConfig):
    """One optimiser step; returns the new state and the batch's mean loss."""
    model, optimizer = nnx.merge(graphdef, state)
    key = None
    if step.augment is not None and step.augment.enabled:
        # The step count is part of the checkpoint, so a resumed run draws the same
        # augmentations as an uninterrupted one.
        key = jax.random.fold_in(jax.random.key(step.seed), optimizer.step[...])

    drawn = None
    if "segment_index" in batch:  # train.segment_batch: the segments drawn for this step
        drawn = (batch["segment_index"], batch["segment_mask"])

    def loss_fn(model):
        logits, weight, pairing = _logits(
            model, batch["waveforms"], batch["lengths"], batch["mask"], step, key, drawn
        )
        if pairing is None:
            targets = jax.nn.one_hot(batch["labels"], step.num_classes)
        else:
            targets = augment.mixup_targets(batch["labels"], step.num_classes, pairing)
        weight = weight * (targets @ class_weights)[:, None]
        ce = optax.softmax_cross_entropy(logits, jnp.broadcast_to(targets[:, None], logits.shape))
        loss = jnp.sum(ce * weight) / jnp.maximum(jnp.sum(weight), 1e-9)
        if step.l2:
            loss += step.l2 * l2_penalty(nnx.state(model, nnx.Param), step.l2_params)
        return loss

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), loss


def eval_step(graphdef, model_state, batch, step: StepConfig):
    """Per-utterance class probabilities ``[B, K]`` (:func:`serjax.forward.predict_step`) and
    cross-entropy ``[B]``; ``graphdef`` is the model's in eval mode."""
    model = nnx.merge(graphdef, model_state)
    probs = forward.predict_step(
        model, batch["waveforms"], batch["lengths"], batch["mask"], step.spec
    )
    picked = jnp.take_along_axis(probs, batch["labels"][:, None], axis=-1)[:, 0]
    return probs, -jnp.log(jnp.maximum(picked, 1e-12))


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

    def put_batch(self, batch: data.Batch) -> dict:
        arrays = {
            "waveforms": batch.waveforms,
            "lengths": batch.lengths,
            "labels": batch.labels,
            "mask": batch.mask,
        }
        if batch.segment_index is not None:
            arrays["segment_index"] = batch.segment_index
            arrays["segment_mask"] = batch.segment_mask
        return jax.device_put(arrays, self.sharded)

    def put_state(self, state):
        return jax.device_put(state, self.replicated)


# ---------------------------------------------------------------------------------------------
# The loop


# Within a long epoch, a progress line at most this often.
_REPORT_SECONDS = 20.0


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
            self.checkpoints.save_best(progress.step, items, self._meta(progress))
        self.checkpoints.save_latest(progress.step, items, self._meta(progress))

    def _restore(self, which: str) -> Progress:
        items, meta = self.checkpoints.restore(which, self.template)
        nnx.replace_by_pure_dict(self.state, {0: items["model"], 1: items["optimizer"]})
        self.state = self.runtime.put_state(self.state)
        return Progress(**meta["progress"])

    # -- evaluation ---------------------------------------------------------------------------
    def predict(self, part: SplitData) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities ``[N, K]`` and per-utterance losses ``[N]`` in input order."""
        probs, losses = [], []
        for batch in data.iterate_batches(
            part.waveforms,
            part.labels,
            batch_size=self.config.train.eval_batch_size,
            buckets=self.buckets,
            shuffle=False,
            seed=0,
        ):
            p, loss = self._eval(self.state[0], self.runtime.put_batch(batch))
            keep = np.asarray(batch.mask)
            probs.append(np.asarray(p)[keep])
            losses.append(np.asarray(loss)[keep])
        return np.concatenate(probs), np.concatenate(losses)

    def evaluate(self, part: SplitData) -> tuple[dict, np.ndarray]:
        probs, losses = self.predict(part)
        result = metrics.classification_metrics(part.labels, probs, self.class_names)
        result["loss"] = float(np.mean(losses))
        return result, probs

    # -- training -----------------------------------------------------------------------------
    def _plan(self, epoch: int):
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
        return float(_hyperparams(optimizer.opt_state)["learning_rate"].get_value())

    def _scale_learning_rate(self, factor: float) -> None:
        model, optimizer = nnx.merge(self.train_graph, self.state)
        rate = _hyperparams(optimizer.opt_state)["learning_rate"]
        rate.set_value(rate.get_value() * factor)
        self.state = self.runtime.put_state(nnx.state((model, optimizer)))

    def train(self) -> Progress:
        config = self.config
        progress = Progress()
        if self.checkpoints.latest_step() is not None:
            progress = self._restore("latest")
            logging.info(
                "Resuming %s after epoch %d (step %d)", self.fold_dir, progress.epoch, progress.step
            )
        train = self.parts["train"]
        epochs = config.train.epochs
        started = time.monotonic()
        first_epoch = progress.epoch
        while progress.epoch < epochs:
            if config.train.patience and progress.bad_epochs >= config.train.patience:
                logging.info(
                    "Early stopping: no better validation UA for %d epochs", progress.bad_epochs
                )
                break
            epoch_start = last_report = time.monotonic()
            losses = []
            for batch in self._plan(progress.epoch):
                self.state, loss = self._train(
                    self.state, self.runtime.put_batch(batch), self.class_weights
                )
                loss = float(loss)
                if not math.isfinite(loss):
                    raise NonFiniteLossError(
                        f"loss is {loss} at step {progress.step + 1} (epoch {progress.epoch + 1}); "
                        f"stopping with the last good checkpoint in {self.checkpoints.directory}"
                    )
                losses.append(loss)
                progress.step += 1
                if time.monotonic() - last_report > _REPORT_SECONDS:
                    last_report = time.monotonic()
                    elapsed = last_report - epoch_start
                    logging.info(
                        "  epoch %d: step %d/%d  loss %.4f  %.2f steps/s  epoch ETA %s",
                        progress.epoch + 1,
                        len(losses),
                        self.steps_per_epoch,
                        float(np.mean(losses)),
                        len(losses) / elapsed,
                        format_duration(
                            elapsed / len(losses) * (self.steps_per_epoch - len(losses))
                        ),
                    )
            train_seconds = time.monotonic() - epoch_start
            # Without validation speakers every epoch counts as the best: the last is tested.
            has_val = len(self.parts["val"]) > 0
            val = dict.fromkeys(("loss", "wa", "ua", "confusion_matrix"))
            if has_val:
                val, _ = self.evaluate(self.parts["val"])
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
            done = progress.epoch - first_epoch
            elapsed = time.monotonic() - started
            eta = elapsed / done * (epochs - progress.epoch)
            scores = "no validation set"
            if has_val:
                star = " *" if improved else ""
                scores = (
                    f"val_loss {val['loss']:.4f}  val_WA {val['wa']:.3f}  "
                    f"val_UA {val['ua']:.3f}{star}"
                )
            logging.info(
                "epoch %d/%d  train_loss %.4f  %s  lr %.2e  %.1f utt/s  ETA %s",
                progress.epoch,
                epochs,
                row["train_loss"],
                scores,
                lr,
                len(train) / max(train_seconds, 1e-9),
                format_duration(eta),
            )
        self.checkpoints.wait_until_finished()
        return progress

    def test(self) -> tuple[dict, np.ndarray]:
        """Metrics of the best checkpoint (by validation UA) on the test part."""
        self._restore("best")
        return self.evaluate(self.parts["test"])

    def close(self) -> None:
        self.checkpoints.close()


def _items(state: nnx.State) -> dict:
    """The checkpoint items of a ``(model, optimizer)`` state, as plain nested dicts."""
    pure = nnx.to_pure_dict(state)
    return {"model": pure[0], "optimizer": pure[1]}


def _shapes(tree):
    """Shapes and dtypes of a pytree's arrays: the template a restore fills."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)
