"""Many models in one jitted program: K models trained side by side (``train.vectorize``).

Leave-one-speaker-out is many small models (10 on Emo-DB, 24 on RAVDESS), and an ensemble is
several seeds' models. Here the K models' states are stacked on a leading axis and
:func:`serjax.steps.train_step` and :func:`serjax.steps.eval_step` run under ``jax.vmap``, so
one call advances all K, and the steps compile once for all K instead of once per fold. What
that buys depends on the hardware: where one model's step leaves the device idle part of the
time (a GPU, or fixed per-call costs) K models fill it; where a step already keeps every core
busy (S1 on a small CPU: matrix products and the front end), K models cost about K times one.

Each model is trained as it would be alone. Every member is a :class:`serjax.train.FoldTrainer`
that keeps everything of its own: its batches (drawn from the same ``(seed, epoch)`` as a
separate run), its class weights, checkpoints, early stopping, plateau schedule, TensorBoard
and log lines. Per step, member k's batch is its own next batch. A member whose epoch has fewer
steps than the longest one (folds differ in size), or that has finished (every epoch run, or
stopped early), is fed another member's batch with its update masked: it keeps its parameters,
optimiser state, step count and RNG state, so the step is a no-op for it. The batches of one
step are padded to the longest among them (``[K, B, T]``); the front end and the models see
each row's own length, so the padding changes nothing but float rounding (and costs the
front end's time on the padded samples). One exception: random draws in the padded shape
(dropout on unsegmented sequences, augmentation noise) differ from those alone when a batch is
padded further (other values of the same distribution); S1's model, on fixed-size segments,
draws the same.

Limits: the members share one model graph and one static step (model, features, augmentation;
the augmentation's seed is a traced input) and one optimiser transform, so a cosine schedule
(whose length is the fold's number of steps) needs members with equal steps per epoch.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from serjax import data
from serjax.progress import format_duration
from serjax.steps import eval_step, train_step
from serjax.train import REPORT_SECONDS, FoldTrainer, Progress, SplitData, score


def stack(trees: Sequence) -> object:
    """Pytrees of one structure → one pytree with their leaves stacked on a new axis 0."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def unstack(tree, k: int):
    """Member ``k`` of a stacked pytree (:func:`stack`)."""
    return jax.tree.map(lambda leaf: leaf[k], tree)


def masked_train_step(graphdef, state, batch, class_weights, seed, active, step):
    """:func:`serjax.steps.train_step` of one member (augmentation ``seed``, an int32 scalar)
    whose update applies only when ``active`` (a bool scalar); an inactive member keeps its
    whole state. Returns (state, loss)."""
    # The arrays, taken before the step: merging shares the state's variables with the model,
    # which the update then changes in place.
    before = jax.tree.leaves(state)
    new_state, loss = train_step(graphdef, state, batch, class_weights, step, seed)
    leaves, treedef = jax.tree.flatten(new_state)
    kept = [jnp.where(active, new, old) for new, old in zip(leaves, before, strict=True)]
    return jax.tree.unflatten(treedef, kept), loss


def stack_batches(batches: Sequence[data.Batch]) -> dict:
    """Batches of one shape but their length ``T`` → arrays ``[K, B, ...]``, waveforms
    zero-padded to the longest ``T`` (past each row's length, as every batch is padded)."""
    longest = max(b.waveforms.shape[1] for b in batches)
    waves = [np.pad(b.waveforms, ((0, 0), (0, longest - b.waveforms.shape[1]))) for b in batches]
    arrays = {
        "waveforms": np.stack(waves),
        "lengths": np.stack([b.lengths for b in batches]),
        "labels": np.stack([b.labels for b in batches]),
        "mask": np.stack([b.mask for b in batches]),
    }
    if batches[0].segment_index is not None:
        arrays["segment_index"] = np.stack([b.segment_index for b in batches])
        arrays["segment_mask"] = np.stack([b.segment_mask for b in batches])
    return arrays


def lockstep(plans: Sequence[Iterator[data.Batch]]) -> Iterator[tuple[list, np.ndarray]]:
    """Steps of K batch sequences side by side: per step the K batches and which of them are
    real ``[K]``; a sequence that has ended is stood in for by another's batch (masked)."""
    for batches in itertools.zip_longest(*plans):
        live = np.array([b is not None for b in batches])
        stand_in = next(b for b in batches if b is not None)
        yield [stand_in if b is None else b for b in batches], live


def _check_members(trainers: Sequence[FoldTrainer]) -> None:
    """Raises ValueError unless every member's step is the first one's: the same model graph,
    static step but for the seed, and optimiser (the first member's optimiser transform serves
    all)."""
    first = trainers[0]
    for t in trainers[1:]:
        if (
            t.eval_graph != first.eval_graph
            or dataclasses.replace(t.step_config, seed=first.step_config.seed) != first.step_config
            or t.config.optim != first.config.optim
        ):
            raise ValueError(
                f"{t.fold_dir} and {first.fold_dir} differ in model, step or optimiser: only "
                "models of one config train side by side"
            )
        schedule = (t.steps_per_epoch, t.config.train.epochs)
        if first.config.optim.schedule == "cosine" and schedule != (
            first.steps_per_epoch,
            first.config.train.epochs,
        ):
            raise ValueError(
                "train.vectorize with optim.schedule='cosine' needs models with equal steps per "
                f"epoch and epochs: {t.fold_dir} has {schedule}, {first.fold_dir} "
                f"{(first.steps_per_epoch, first.config.train.epochs)}; use train.vectorize='none'"
            )


class StackedTrainer:
    """Trains and tests K :class:`serjax.train.FoldTrainer`\\ s' models at once.

    Args:
      trainers: of one model, step and optimiser (their folds, seeds, epochs, patience,
        directories and writers may differ); each resumes from its own latest checkpoint.

    Raises:
      ValueError: the members' models, steps or optimisers differ, or a cosine schedule meets
        members of unequal steps per epoch or epochs.
    """

    def __init__(self, trainers: Sequence[FoldTrainer]):
        if not trainers:
            raise ValueError("StackedTrainer needs at least one FoldTrainer")
        _check_members(trainers)
        self.trainers = tuple(trainers)
        first = trainers[0]
        runtime = first.runtime
        self._state_sharding = runtime.replicated
        # Members on axis 0 (every device holds all); each member's batch split over devices.
        self._batch_sharding = NamedSharding(runtime.mesh, P(None, "data"))
        self.class_weights = jnp.stack([t.class_weights for t in trainers])
        self.seeds = jnp.asarray([t.step_config.seed for t in trainers], jnp.int32)
        step = first.step_config
        self._train = jax.jit(
            jax.vmap(functools.partial(masked_train_step, first.train_graph, step=step)),
            donate_argnums=0,
        )
        self._eval = jax.jit(jax.vmap(functools.partial(eval_step, first.eval_graph, step=step)))
        self.state = None

    def __len__(self) -> int:
        return len(self.trainers)

    def _gather(self) -> None:
        """Stacks the members' states into this trainer's."""
        self.state = jax.device_put(stack([t.state for t in self.trainers]), self._state_sharding)

    def _scatter(self, k: int) -> None:
        """Gives member ``k`` its state out of the stack (to save, or to change its rate)."""
        trainer = self.trainers[k]
        trainer.state = trainer.runtime.put_state(unstack(self.state, k))

    def _put(self, batches: Sequence[data.Batch]) -> dict:
        return jax.device_put(stack_batches(batches), self._batch_sharding)

    # -- evaluation ---------------------------------------------------------------------------
    def predict(self, parts: Sequence[SplitData | None]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each member's probabilities ``[N_k, C]`` and losses ``[N_k]`` of its part (in input
        order), all members in one eval step per batch; a None or empty part gives empty ones."""
        plans = [
            iter(()) if part is None or not len(part) else t.eval_batches(part)
            for t, part in zip(self.trainers, parts, strict=True)
        ]
        probs = [[] for _ in self.trainers]
        losses = [[] for _ in self.trainers]
        num_classes = len(self.trainers[0].class_names)
        for batches, live in lockstep(plans):
            p, loss = jax.device_get(self._eval(self.state[0], self._put(batches)))
            for k in np.flatnonzero(live):
                keep = np.asarray(batches[k].mask)
                probs[k].append(p[k][keep])
                losses[k].append(loss[k][keep])
        return [
            (
                np.concatenate(p) if p else np.zeros((0, num_classes), np.float32),
                np.concatenate(loss) if loss else np.zeros(0, np.float32),
            )
            for p, loss in zip(probs, losses, strict=True)
        ]

    def evaluate(self, parts: Sequence[SplitData | None]) -> list[tuple[dict, np.ndarray] | None]:
        """Each member's metrics (:func:`serjax.train.score`) and probabilities of its part;
        None for a None or empty part."""
        results = []
        for t, part, (probs, losses) in zip(self.trainers, parts, self.predict(parts), strict=True):
            has_part = part is not None and len(part) > 0
            results.append((score(part, probs, losses, t.class_names), probs) if has_part else None)
        return results

    # -- training -----------------------------------------------------------------------------
    def _train_round(self, progress: Sequence[Progress], training: np.ndarray) -> list[list]:
        """One epoch of every member in ``training`` ``[K]`` (each its own next epoch), in
        lockstep; returns each member's step losses (empty for the others)."""
        plans = [
            t.plan(p.epoch) if on else iter(())
            for t, p, on in zip(self.trainers, progress, training, strict=True)
        ]
        longest = max(
            t.steps_per_epoch for t, on in zip(self.trainers, training, strict=True) if on
        )
        losses = [[] for _ in self.trainers]
        start = last_report = time.monotonic()
        for done, (batches, live) in enumerate(lockstep(plans), start=1):
            self.state, loss = self._train(
                self.state, self._put(batches), self.class_weights, self.seeds, jnp.asarray(live)
            )
            loss = np.asarray(loss)
            for k in np.flatnonzero(live):
                self.trainers[k].check_loss(float(loss[k]), progress[k])
                losses[k].append(float(loss[k]))
                progress[k].step += 1
            if time.monotonic() - last_report > REPORT_SECONDS:
                last_report = time.monotonic()
                elapsed = last_report - start
                logging.info(
                    "  %d models: step %d/%d  %.2f steps/s  epoch ETA %s",
                    int(training.sum()),
                    done,
                    longest,
                    done / elapsed,
                    format_duration(elapsed / done * (longest - done)),
                )
        return losses

    def train(self) -> list[Progress]:
        """Trains every member to its end (each resumed from its latest checkpoint); returns
        their progress, in order."""
        progress = [t.resume() for t in self.trainers]
        self._gather()
        while True:
            training = np.array(
                [not t.finished(p) for t, p in zip(self.trainers, progress, strict=True)]
            )
            if not training.any():
                break
            start = time.monotonic()
            losses = self._train_round(progress, training)
            train_seconds = time.monotonic() - start
            vals = self.evaluate(
                [
                    t.parts["val"] if on else None
                    for t, on in zip(self.trainers, training, strict=True)
                ]
            )
            for k in np.flatnonzero(training):
                trainer = self.trainers[k]
                self._scatter(k)
                val = vals[k][0] if vals[k] is not None else None
                trainer.end_epoch(progress[k], losses[k], val, train_seconds)
            self._gather()  # end_epoch may have lowered a member's learning rate
        for t in self.trainers:
            t.checkpoints.wait_until_finished()
        return progress

    def test(self) -> list[tuple[dict, np.ndarray]]:
        """Each member's metrics and probabilities of its best checkpoint (by validation UA)
        on its test part, in order."""
        for t in self.trainers:
            t.restore("best")
        self._gather()
        return self.evaluate([t.parts["test"] for t in self.trainers])
