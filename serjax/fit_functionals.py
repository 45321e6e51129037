"""Training the functionals classifier of one fold (``features.kind="functionals"``).

The classifier sees one fixed vector per utterance, so it is fitted on those vectors directly
instead of stepping through waveform batches:

1. every utterance's functionals are computed once (:func:`serjax.features.functionals_of`, the
   forward path's own jitted feature function) and kept for the rest of the process;
2. they are standardised: by the training set's statistics, or each by its own speaker's
   (``features.standardise``);
3. the L2 strength is chosen among ``optim.l2_grid`` by leave-one-speaker-out over the
   fold's training speakers alone (its ``train`` and ``val`` parts; the test part is never
   read): each candidate is fitted once per held-out training speaker, and the candidate
   with the best pooled UA on those held-out speakers wins;
4. the head is fitted on all training speakers, full batch, ``train.epochs`` Adam steps at
   ``optim.learning_rate`` (with ``optim.class_weighted``: inverse class frequency weights);
5. the model (statistics and weights) is saved as an ordinary checkpoint, and the test part is
   classified from its waveforms by :func:`serjax.forward.predict_step`, the function inference
   runs. With speaker standardisation each test speaker is first adapted to (the model's
   statistics replaced by that speaker's), and the test part is also scored unadapted, with the
   statistics the checkpoint keeps (``test_unadapted`` in the report).

Every candidate and held-out speaker is fitted at once (``jax.vmap``): on Emo-DB a fold takes
10-20 s of a 2-core CPU once its functionals are known.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import nnx

from serjax import data, forward, metrics, writers
from serjax.checkpointing import Checkpointer
from serjax.data import length_ladder
from serjax.features import LADDER_UNIT, FeatureSpec, functionals_of
from serjax.models.functionals import (
    average_speaker_statistics,
    speaker_standardised,
    standardisation_statistics,
)
from serjax.train import Progress, Runtime, SplitData, unadapted_report

# ---------------------------------------------------------------------------------------------
# Full-batch fitting of the head


def _kernel_penalty(params: nnx.State) -> jax.Array:
    """Sum of squares of the dense kernels (biases are not penalised)."""
    leaves = [v for path, v in nnx.to_flat_state(params) if str(path[-1]) == "kernel"]
    return sum(jnp.sum(jnp.square(v.get_value())) for v in leaves)


def fit_head(
    head: nnx.Module,
    z: jax.Array,
    targets: jax.Array,
    weights: jax.Array,
    l2: jax.Array,
    *,
    steps: int,
    learning_rate: float,
) -> nnx.State:
    """The head's parameters after ``steps`` full-batch Adam steps from its current ones.

    Minimises ``sum_i w_i CE(head(z_i), targets_i) / sum_i w_i + l2 * |kernels|^2``.

    Args:
      head: an ``nnx`` module ``[M, N] -> [M, K]`` (left unchanged).
      z: ``[M, N]`` standardised inputs; targets: ``[M, K]`` one-hot.
      weights: ``[M]`` per-utterance weights (0 leaves an utterance out).
      l2: scalar penalty. Every array argument may carry leading ``vmap`` axes.
    """
    graphdef, params, rest = nnx.split(head, nnx.Param, ...)
    optimizer = optax.adam(learning_rate)

    def loss(p):
        logits = nnx.merge(graphdef, p, rest)(z)
        ce = optax.softmax_cross_entropy(logits, targets)
        return jnp.sum(ce * weights) / jnp.maximum(jnp.sum(weights), 1e-9) + l2 * _kernel_penalty(p)

    def update(carry, _):
        p, state = carry
        grads = jax.grad(loss)(p)
        updates, state = optimizer.update(grads, state, p)
        return (optax.apply_updates(p, updates), state), None

    (params, _), _ = jax.lax.scan(update, (params, optimizer.init(params)), None, length=steps)
    return params


def _logits(head: nnx.Module, params: nnx.State, z: jax.Array) -> jax.Array:
    graphdef, _, rest = nnx.split(head, nnx.Param, ...)
    return nnx.merge(graphdef, params, rest)(z)


def sample_weights(labels: np.ndarray, num_classes: int, balanced: bool) -> np.ndarray:
    """Per-utterance loss weights: inverse class frequency (``data.class_weights``) or 1."""
    if not balanced:
        return np.ones(len(labels), np.float32)
    return data.class_weights(labels, num_classes).astype(np.float32)[labels]


@dataclasses.dataclass(frozen=True)
class Selection:
    """The L2 chosen on the training speakers, with every candidate's held-out scores."""

    l2: float
    val_ua: float
    table: tuple[dict, ...]  # per candidate: l2, val_ua, val_wa


@dataclasses.dataclass(frozen=True)
class InnerFolds:
    """Leave-one-speaker-out over training speakers, as :func:`select_l2` fits it.

    Attributes:
      held_out: ``[F, M]`` bool, row ``f`` marks the utterances of the ``f``-th speaker.
      z: ``[F, M, N]`` inputs standardised as inner fold ``f`` standardises them.
      targets: ``[M, K]`` one-hot labels.
      weights: ``[F, M]`` loss weights, 0 on each fold's held-out speaker.
    """

    held_out: np.ndarray
    z: np.ndarray
    targets: np.ndarray
    weights: np.ndarray


def inner_folds(
    x: np.ndarray,
    labels: np.ndarray,
    speakers: Sequence[str],
    *,
    standardise: str,
    num_classes: int,
    balanced: bool,
) -> InnerFolds:
    """The inputs of :func:`select_l2`'s fits (arguments as there); raises ``ValueError``
    with fewer than 2 speakers."""
    speakers = np.asarray(speakers)
    names = np.unique(speakers)
    if len(names) < 2:
        raise ValueError("choosing the L2 by held-out speakers needs at least 2 speakers")
    held_out = np.stack([speakers == name for name in names])  # [F, M]
    if standardise == "speaker":
        z = np.broadcast_to(speaker_standardised(x, speakers), (len(names), *x.shape))
    else:
        z = np.stack(
            [(x - m) / s for m, s in (standardisation_statistics(x[~out]) for out in held_out)]
        )
    weights = np.stack(
        [
            np.where(out, 0.0, 1.0) * sample_weights(labels, num_classes, balanced)
            for out in held_out
        ]
    ).astype(np.float32)
    targets = np.asarray(jax.nn.one_hot(labels, num_classes))
    return InnerFolds(held_out, z, targets, weights)


def select_l2(
    head: nnx.Module,
    x: np.ndarray,
    labels: np.ndarray,
    speakers: Sequence[str],
    *,
    grid: Sequence[float],
    standardise: str,
    num_classes: int,
    balanced: bool,
    steps: int,
    learning_rate: float,
) -> Selection:
    """Leave-one-speaker-out over the speakers of ``x`` (training speakers only): every
    candidate in ``grid`` is fitted without each speaker and scored on it; the candidate
    with the best UA over the pooled held-out predictions wins (ties: the larger L2).

    All ``len(grid) * speakers`` fits run as one program (``jax.vmap`` over candidates and
    folds): on Emo-DB's nine training speakers and seven candidates, 63 models.

    Args:
      head: the model's head, at its initial parameters.
      x: ``[M, N]`` raw functionals; labels ``[M]``; speakers: ``M`` speaker ids (at least 2
        distinct).
      standardise: ``"speaker"`` (each speaker by its own statistics) or ``"training"`` (by
        the statistics of each inner fold's training utterances).
    """
    folds = inner_folds(
        x, labels, speakers, standardise=standardise, num_classes=num_classes, balanced=balanced
    )
    fit = functools.partial(fit_head, head, steps=steps, learning_rate=learning_rate)
    # [L] candidates x [F] folds, each fold with its own inputs and weights.
    per_fold = jax.vmap(fit, in_axes=(0, None, 0, None))
    grid_arr = jnp.asarray(grid, jnp.float32)
    params = jax.jit(jax.vmap(per_fold, in_axes=(None, None, None, 0)))(
        jnp.asarray(folds.z), folds.targets, jnp.asarray(folds.weights), grid_arr
    )
    return selection_of(head, params, folds, labels, grid, num_classes)


def selection_of(
    head: nnx.Module,
    params: nnx.State,
    folds: InnerFolds,
    labels: np.ndarray,
    grid: Sequence[float],
    num_classes: int,
) -> Selection:
    """The candidate of ``grid`` whose fits score the best pooled UA on the speakers they held
    out (ties: the larger L2).

    Args:
      head: the head the fits were made of; params: its parameters with leading axes
        ``[L, F]`` (``L = len(grid)`` candidates by the ``F`` inner folds of ``folds``);
      labels: ``[M]``.
    """
    z = jnp.broadcast_to(jnp.asarray(folds.z), (len(grid), *folds.z.shape))
    logits = np.asarray(jax.vmap(jax.vmap(functools.partial(_logits, head)))(params, z))
    table = []
    for i, l2 in enumerate(grid):
        # Each utterance is predicted by the fold that held its speaker out.
        preds = np.einsum("fmk,fm->mk", logits[i], folds.held_out.astype(np.float32)).argmax(-1)
        table.append(
            {
                "l2": float(l2),
                "val_ua": metrics.unweighted_accuracy(labels, preds, num_classes),
                "val_wa": metrics.weighted_accuracy(labels, preds),
            }
        )
    best = max(range(len(grid)), key=lambda i: (table[i]["val_ua"], grid[i]))
    return Selection(float(grid[best]), table[best]["val_ua"], tuple(table))


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How :func:`fit_classifier` fits (from a run config: :meth:`from_config`).

    Attributes:
      standardise: ``"speaker"`` or ``"training"`` (``features.standardise``).
      l2_grid: candidate L2 strengths chosen by held-out training speakers; () uses ``l2``.
      l2: the L2 strength without a grid.
      balanced: inverse class frequency weights (``optim.class_weighted``).
      steps: full-batch Adam steps (``train.epochs``); learning_rate: ``optim.learning_rate``.
    """

    standardise: str = "speaker"
    l2_grid: tuple[float, ...] = ()
    l2: float = 0.0
    balanced: bool = True
    steps: int = 300
    learning_rate: float = 0.01

    def select_l2(self, head: nnx.Module, x, labels, speakers, *, num_classes: int) -> Selection:
        """:func:`select_l2` among ``l2_grid``, fitting as these settings say."""
        return select_l2(
            head,
            x,
            labels,
            speakers,
            grid=self.l2_grid,
            standardise=self.standardise,
            num_classes=num_classes,
            balanced=self.balanced,
            steps=self.steps,
            learning_rate=self.learning_rate,
        )

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> FitSettings:
        return cls(
            standardise=config.features.standardise,
            l2_grid=tuple(float(v) for v in config.optim.l2_grid),
            l2=float(config.optim.l2),
            balanced=bool(config.optim.class_weighted),
            steps=int(config.train.epochs),
            learning_rate=float(config.optim.learning_rate),
        )


def fit_classifier(
    model: nnx.Module,
    x: np.ndarray,
    labels: np.ndarray,
    speakers: Sequence[str],
    settings: FitSettings,
) -> Selection | None:
    """Fits a :class:`~serjax.models.FunctionalsClassifier` in place on training speakers.

    The L2 comes from :func:`select_l2` on these speakers when ``settings.l2_grid`` is set
    (which needs 2+ speakers). The model keeps the training set's statistics
    (``"training"``) or the average training speaker's (``"speaker"``, see
    :func:`~serjax.models.functionals.average_speaker_statistics`), and its head is fitted on
    the inputs standardised as ``settings.standardise`` says.

    Args:
      model: at its initial parameters; x: ``[M, N]`` functionals; labels: ``[M]``;
        speakers: ``M`` speaker ids.

    Returns:
      The selection (None without a grid).
    """
    k = model.head.out.out_features
    selection = None
    l2 = settings.l2
    if settings.l2_grid:
        selection = settings.select_l2(model.head, x, labels, speakers, num_classes=k)
        l2 = selection.l2
    if settings.standardise == "speaker":
        z = speaker_standardised(x, speakers)
        stored = average_speaker_statistics(x, speakers)
    else:
        stored = standardisation_statistics(x)
        z = (x - stored[0]) / stored[1]
    fit = functools.partial(
        fit_head, model.head, steps=settings.steps, learning_rate=settings.learning_rate
    )
    weights = sample_weights(labels, k, settings.balanced)
    params = jax.jit(fit)(z, jax.nn.one_hot(labels, k), weights, jnp.float32(l2))
    nnx.update(model.head, params)
    model.standardiser.set(*stored)
    return selection


# ---------------------------------------------------------------------------------------------
# One fold


class FunctionalsTrainer:
    """Fits and tests one fold of a functionals run; the interface of
    :class:`serjax.train.FoldTrainer` (``train``, ``test``, ``close``), used by
    :func:`serjax.fold.train_fold`."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        fold_dir: Path,
        class_names: Sequence[str],
        parts: dict[str, SplitData],
        runtime: Runtime,
        writer: writers.MetricWriter,
    ):
        del runtime  # the vectors are small; one device fits them
        self.config = config
        self.class_names = tuple(class_names)
        self.parts = parts
        self.writer = writer
        self.spec = FeatureSpec.from_config(config)
        self.settings = FitSettings.from_config(config)
        self.model = forward.create_model(config, len(class_names))
        self.model.eval()
        self.checkpoints = Checkpointer(
            fold_dir / "checkpoints", keep_latest=config.train.keep_latest
        )
        self.unadapted: dict | None = None

    def train(self) -> Progress:
        # Every training speaker (train and val parts) both for choosing the L2 and fitting.
        parts = [p for p in (self.parts["train"], self.parts["val"]) if len(p)]
        x = np.concatenate([functionals_of(p.waveforms, self.spec) for p in parts])
        labels = np.concatenate([p.labels for p in parts])
        speakers = np.concatenate([p.speakers for p in parts])
        selection = fit_classifier(self.model, x, labels, speakers, self.settings)
        steps = self.settings.steps
        progress = Progress(epoch=steps, step=steps)
        if selection is not None:
            logging.info(
                "L2 %g chosen among %d by %d held-out training speakers (their UA %.1f %%)",
                selection.l2,
                len(selection.table),
                len(np.unique(speakers)),
                100 * selection.val_ua,
            )
            progress.best_val_ua = selection.val_ua
            progress.history = [*selection.table, {"chosen_l2": selection.l2}]
            for i, row in enumerate(selection.table):
                self.writer.scalars(
                    i, {"selection/l2": row["l2"], "selection/val_ua": row["val_ua"]}
                )
        meta = {
            "progress": dataclasses.asdict(progress),
            "class_names": list(self.class_names),
            "config": self.config.to_dict(),
        }
        items = {"model": nnx.to_pure_dict(nnx.state(self.model))}
        self.checkpoints.save_best(steps, items, meta)
        self.checkpoints.save_latest(steps, items, meta)
        self.checkpoints.wait_until_finished()
        return progress

    def _predict(self, part: SplitData, state) -> np.ndarray:
        """Class probabilities ``[M, K]`` by :func:`serjax.forward.predict_step`."""
        graphdef, _ = nnx.split(self.model)
        step = forward.jitted_predict_step(graphdef, self.spec)
        buckets = length_ladder(max(len(w) for w in part.waveforms), LADDER_UNIT)
        probs = []
        for batch in data.iterate_batches(
            part.waveforms,
            part.labels,
            batch_size=self.config.train.eval_batch_size,
            buckets=buckets,
            shuffle=False,
            seed=0,
        ):
            p = step(state, batch.waveforms, batch.lengths, batch.mask)
            probs.append(np.asarray(p)[np.asarray(batch.mask)])
        return np.concatenate(probs)

    def test(self) -> tuple[dict, np.ndarray]:
        """Metrics on the test part; with speaker standardisation, each test speaker adapted
        to (and the unadapted figures kept in :attr:`unadapted`)."""
        part = self.parts["test"]
        stored = nnx.state(self.model)
        probs = self._predict(part, stored)
        if self.settings.standardise == "speaker":
            self.unadapted = unadapted_report(part, probs, self.class_names)
            speakers = part.speakers
            x = functionals_of(part.waveforms, self.spec)
            for name in np.unique(speakers):
                rows = np.flatnonzero(speakers == name)
                adapted = nnx.clone(self.model)
                adapted.standardiser.set(*standardisation_statistics(x[rows]))
                sub = SplitData(
                    tuple(part.utterances[i] for i in rows),
                    tuple(part.waveforms[i] for i in rows),
                    part.labels[rows],
                )
                probs[rows] = self._predict(sub, nnx.state(adapted))
        return metrics.classification_metrics(part.labels, probs, self.class_names), probs

    def close(self) -> None:
        self.checkpoints.close()
