"""Training and evaluation, as a library: :func:`train_and_evaluate` never reads flags.

The train step is one jitted function: padded waveforms → dsp features → model → loss → optax
update. The eval step runs the same features and model without dropout and returns per-utterance
class probabilities (with S1's windows: the mean of the windows' probabilities). Parameters are
replicated and batches sharded over a ``data`` mesh axis, so one command uses every local device.
"""

from __future__ import annotations

import dataclasses
import functools
import json
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

from serjax import augment, config_lib, data, metrics, models, writers
from serjax.checkpointing import Checkpointer
from serjax.features import FeatureSpec, model_inputs, windows

# ---------------------------------------------------------------------------------------------
# Data


@dataclasses.dataclass(frozen=True)
class SplitData:
    """Decoded audio of one part of a split, with integer labels in class order."""

    utterances: tuple[data.Utterance, ...]
    waveforms: tuple[np.ndarray, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.utterances)


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
    if protocol == "fixed":
        split = data.speaker_split(
            utts, val_speakers=tuple(cfg.val_speakers), test_speakers=tuple(cfg.test_speakers)
        )
        return [("main", split)]
    if protocol == "loso":
        folds = data.loso_folds(utts, seed=config.seed)
    elif protocol == "actor_kfold":
        folds = data.actor_kfold(utts, k=cfg.folds, seed=config.seed, n_val_speakers=1)
    elif protocol == "speaker_fraction":
        split = data.speaker_fraction_split(
            utts, cfg.test_fraction, val_fraction=cfg.val_fraction, seed=config.seed
        )
        return [("main", split)]
    else:  # even
        split = data.even_split(
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
    """Decodes (cached) and labels one part of a split; unusable files are skipped and counted."""
    cfg = config.data
    kept, waves = cache.load_many(
        utts,
        sample_rate=cfg.sample_rate,
        peak_normalize=cfg.peak_normalize,
        trim_silence=cfg.trim_silence,
        fixed_seconds=cfg.fixed_seconds or None,
    )
    if cfg.max_seconds:
        limit = int(cfg.max_seconds * cfg.sample_rate)
        waves = [w[:limit] for w in waves]
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.array([index[u.label] for u in kept], np.int32)
    return SplitData(tuple(kept), tuple(waves), labels)


# ---------------------------------------------------------------------------------------------
# Model, optimiser, steps


def create_model(
    config: ml_collections.ConfigDict, spec: FeatureSpec, num_classes: int, seed: int
) -> nnx.Module:
    """The configured model, for the spec's input size."""
    hparams = {k: v for k, v in config.model.items() if k != "name"}
    hparams = {k: tuple(v) if isinstance(v, list) else v for k, v in hparams.items()}
    return models.create_model(
        config.model.name,
        num_features=spec.num_features,
        num_classes=num_classes,
        rngs=nnx.Rngs(params=seed, dropout=seed + 1),
        **hparams,
    )


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
    """The model and its optimiser, whose joint state a checkpoint holds.

    The schedule's length (``steps_per_epoch``) does not change the optimiser state's shapes,
    so inference can rebuild the pair with the default to restore a checkpoint into.
    """
    model = create_model(config, FeatureSpec.from_config(config), num_classes, config.seed)
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


def _forward(model, waveforms, lengths, mask, step: StepConfig, key=None):
    """Logits per example, the weight of each, and the mixup pairing (or None).

    Shapes ``[B, W, K]`` and ``[B, W]``; without windows W = 1. Padding rows (mask False) get
    the full length so that no model ever sees an empty sequence; their weight is zero. With a
    ``key`` (training only) the inputs go through the step's augmentation.
    """
    lengths = jnp.where(mask, lengths, waveforms.shape[-1])
    pairing = None
    if key is None:
        x, steps = model_inputs(waveforms, lengths, step.spec)
    else:
        x, steps, pairing = augment.training_inputs(
            key, waveforms, lengths, mask, step.spec, step.augment
        )
    if step.spec.windowed:
        cut, cut_steps, valid = windows(
            x, steps, frames=step.spec.window_frames, shift=step.spec.window_shift
        )
        b, w = cut.shape[:2]
        logits = model(cut.reshape(b * w, *cut.shape[2:]), cut_steps.reshape(-1))
        logits = logits.reshape(b, w, -1)
        weight = valid & mask[:, None]
    else:
        logits = model(x, steps)[:, None, :]
        weight = mask[:, None]
    return logits, weight.astype(jnp.float32), pairing


def train_step(graphdef, state, batch, class_weights, step: StepConfig):
    """One optimiser step; returns the new state and the batch's mean loss."""
    model, optimizer = nnx.merge(graphdef, state)
    key = None
    if step.augment is not None and step.augment.enabled:
        # The step count is part of the checkpoint, so a resumed run draws the same
        # augmentations as an uninterrupted one.
        key = jax.random.fold_in(jax.random.key(step.seed), optimizer.step[...])

    def loss_fn(model):
        logits, weight, pairing = _forward(
            model, batch["waveforms"], batch["lengths"], batch["mask"], step, key
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


def eval_step(graphdef, state, batch, step: StepConfig):
    """Per-utterance class probabilities ``[B, K]`` and cross-entropy ``[B]``."""
    model, _ = nnx.merge(graphdef, state)
    logits, weight, _ = _forward(model, batch["waveforms"], batch["lengths"], batch["mask"], step)
    # An utterance's prediction is the mean of its windows' probabilities (S1).
    probs = jax.nn.softmax(logits, axis=-1)
    probs = jnp.sum(probs * weight[..., None], axis=1) / jnp.maximum(weight.sum(1), 1)[:, None]
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
        return jax.device_put(arrays, self.sharded)

    def put_state(self, state):
        return jax.device_put(state, self.replicated)


def abstract_pure_state(state: nnx.State) -> dict:
    """Shapes and dtypes of a state as a plain nested dict: the template a restore fills."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), nnx.to_pure_dict(state))


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
        self.steps_per_epoch = data.num_batches(len(parts["train"]), config.train.batch_size)
        for field in ("batch_size", "eval_batch_size"):
            if config.train[field] % runtime.num_devices:
                raise ValueError(
                    f"train.{field}={config.train[field]} is not divisible by the "
                    f"{runtime.num_devices} devices the batch is split over"
                )
        model = create_model(config, self.spec, len(class_names), config.seed)
        optimizer = nnx.Optimizer(
            model, create_optimizer(config, self.steps_per_epoch), wrt=nnx.Param
        )
        model.train()
        self.train_graph, state = nnx.split((model, optimizer))
        model.eval()
        self.eval_graph, _ = nnx.split((model, optimizer))
        self.abstract_state = abstract_pure_state(state)
        self.state = runtime.put_state(state)
        weights = np.ones(len(class_names), np.float32)
        if config.optim.class_weighted:
            weights = data.class_weights(parts["train"].labels, len(class_names)).astype(np.float32)
        self.class_weights = jnp.asarray(weights)
        self._train = jax.jit(
            functools.partial(train_step, self.train_graph, step=self.step_config), donate_argnums=0
        )
        self._eval = jax.jit(functools.partial(eval_step, self.eval_graph, step=self.step_config))
        self.checkpoints = Checkpointer(fold_dir / "checkpoints")

    # -- checkpoints --------------------------------------------------------------------------
    def _meta(self, progress: Progress) -> dict:
        return {
            "progress": dataclasses.asdict(progress),
            "class_names": list(self.class_names),
            "config": self.config.to_dict(),
        }

    def _save(self, progress: Progress, best: bool) -> None:
        stored = nnx.to_pure_dict(jax.device_get(self.state))
        if best:
            self.checkpoints.save_best(progress.step, stored, self._meta(progress))
        self.checkpoints.save_latest(progress.step, stored, self._meta(progress))

    def _restore(self, which: str) -> Progress:
        stored, meta = self.checkpoints.restore(which, self.abstract_state)
        nnx.replace_by_pure_dict(self.state, stored)
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
            p, loss = self._eval(self.state, self.runtime.put_batch(batch))
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
            for batch in data.iterate_batches(
                train.waveforms,
                train.labels,
                batch_size=config.train.batch_size,
                buckets=self.buckets,
                shuffle=True,
                seed=config.seed,
                epoch=progress.epoch,
            ):
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
                        _duration(elapsed / len(losses) * (self.steps_per_epoch - len(losses))),
                    )
            train_seconds = time.monotonic() - epoch_start
            val, _ = self.evaluate(self.parts["val"])
            progress.epoch += 1
            lr = self._learning_rate()
            improved = val["ua"] > progress.best_val_ua
            if improved:
                progress.best_val_ua = val["ua"]
                progress.bad_epochs = 0
            else:
                progress.bad_epochs += 1
            if val["loss"] < progress.best_val_loss:
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
            self.writer.scalars(progress.epoch, {k: v for k, v in row.items() if k != "epoch"})
            self.writer.confusion_matrix(
                progress.epoch,
                "val/confusion_matrix",
                np.array(val["confusion_matrix"]),
                self.class_names,
            )
            done = progress.epoch - first_epoch
            elapsed = time.monotonic() - started
            eta = elapsed / done * (epochs - progress.epoch)
            logging.info(
                "epoch %d/%d  train_loss %.4f  val_loss %.4f  val_WA %.3f  val_UA %.3f%s  "
                "lr %.2e  %.1f utt/s  ETA %s",
                progress.epoch,
                epochs,
                row["train_loss"],
                val["loss"],
                val["wa"],
                val["ua"],
                " *" if improved else "",
                lr,
                len(train) / max(train_seconds, 1e-9),
                _duration(eta),
            )
        self.checkpoints.wait_until_finished()
        return progress

    def test(self) -> tuple[dict, np.ndarray]:
        """Metrics of the best checkpoint (by validation UA) on the test part."""
        self._restore("best")
        return self.evaluate(self.parts["test"])

    def close(self) -> None:
        self.checkpoints.close()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


def _counts(part: SplitData, class_names: Sequence[str]) -> dict:
    counts = np.bincount(part.labels, minlength=len(class_names))
    return {
        "utterances": len(part),
        "speakers": sorted({u.speaker for u in part.utterances}),
        "per_class": {name: int(c) for name, c in zip(class_names, counts, strict=True)},
    }


def write_report(directory: Path, result: dict, class_names: Sequence[str]) -> None:
    """results.json, confusion_matrix.png and classification_report.txt, each written atomically."""
    writers.write_json_atomic(directory / "results.json", result)
    cm = np.array(result["test"]["confusion_matrix"])
    writers.plot_confusion_matrix(cm, class_names, directory / "confusion_matrix.png")
    report = metrics.classification_report(result["test"], class_names)
    writers.write_text_atomic(directory / "classification_report.txt", report)


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
        if not len(part):
            raise ValueError(f"the {name} part of the split in {fold_dir} has no usable utterance")
    timings["load_seconds"] = time.monotonic() - start
    with writers.MetricWriter(fold_dir / "tensorboard") as writer:
        trainer = FoldTrainer(config, fold_dir, class_names, parts, runtime, writer)
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
    write_report(fold_dir, result, class_names)
    return result


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
    return {"test": pooled, "folds": per_fold, "fold_summary": summary}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Runs the configured protocol end to end and leaves the report in ``workdir``.

    Resumable: a fold whose report exists is skipped, and a fold with checkpoints continues after
    its last completed epoch, ending with the same numbers as an uninterrupted run.
    """
    config_lib.validate(config)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    writers.write_json_atomic(workdir / "config.json", config.to_dict())
    runtime = Runtime()
    logging.info("Devices: %s", ", ".join(str(d) for d in jax.devices()))
    utts = load_utterances(config, workdir)
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
