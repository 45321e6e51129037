"""The model's optimiser and the two jitted steps, as pure functions of a split state.

The train step is one function: padded waveforms → dsp features → (augmentation) → model →
loss → optax update. The evaluation step is :func:`serjax.forward.predict_step` (the function
inference runs) plus the loss. :mod:`serjax.train` runs them for one fold,
:mod:`serjax.vectorized` for several models at once (``jax.vmap`` over stacked states).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from serjax import augment, forward
from serjax.features import FeatureSpec


# ---------------------------------------------------------------------------------------------
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
    transforms = [base]
    if cfg.grad_clip > 0:
        transforms.insert(0, optax.clip_by_global_norm(cfg.grad_clip))
    if cfg.ema_decay > 0:
        transforms.append(parameter_average(cfg.ema_decay))
    return transforms[0] if len(transforms) == 1 else optax.chain(*transforms)


class ParameterAverage(NamedTuple):
    """State of :func:`parameter_average`: updates counted, and the (biased) average."""

    count: jax.Array
    average: optax.Params


def parameter_average(decay: float) -> optax.GradientTransformation:
    """An exponential moving average of the parameters after every update, kept in the
    optimiser state (so checkpoints, resumption and stacked models carry it); the updates
    pass unchanged.

    ``average_t = decay * average_{t-1} + (1 - decay) * params_t`` from zeros, read through
    :func:`averaged_parameters` with Adam's bias correction ``1 / (1 - decay**t)``: weight
    averaging as in Polyak & Juditsky (1992) and the EMA of Tarvainen & Valpola (2017).
    """

    def init(params):
        return ParameterAverage(jnp.zeros([], jnp.int32), jax.tree.map(jnp.zeros_like, params))

    def update(updates, state, params):
        new = optax.apply_updates(params, updates)
        average = jax.tree.map(lambda a, p: decay * a + (1 - decay) * p, state.average, new)
        return updates, ParameterAverage(optax.safe_increment(state.count), average)

    return optax.GradientTransformation(init, update)


def averaged_parameters(opt_state, decay: float) -> dict | None:
    """The bias-corrected parameter average inside an ``nnx.Optimizer``'s state, as the pure
    dict of ``nnx.state(model, nnx.Param)``, or None without :func:`parameter_average`."""
    nodes = jax.tree.leaves(opt_state, is_leaf=lambda n: isinstance(n, ParameterAverage))
    nodes = [n for n in nodes if isinstance(n, ParameterAverage)]
    if not nodes:
        return None
    count = jnp.maximum(nodes[0].count.get_value(), 1).astype(jnp.float32)
    correction = 1.0 - jnp.power(decay, count)
    return jax.tree.map(lambda a: a / correction, nnx.to_pure_dict(nodes[0].average))


def evaluation_model_state(graphdef, state, decay: float) -> nnx.State:
    """The model state that evaluation, the best checkpoint and inference use: the trained
    one, with its parameters replaced by their average when the optimiser keeps one
    (``optim.ema_decay > 0``)."""
    model, optimizer = nnx.merge(graphdef, state)
    average = averaged_parameters(optimizer.opt_state, decay)
    if average is not None:
        params = nnx.state(model, nnx.Param)
        nnx.replace_by_pure_dict(params, average)
        nnx.update(model, params)
    return nnx.state(model)


def build_model_and_optimizer(
    config: ml_collections.ConfigDict, num_classes: int, steps_per_epoch: int = 1
) -> tuple[nnx.Module, nnx.Optimizer]:
    """The model and its optimiser, whose states a checkpoint holds (as separate items, so
    that inference restores the model's alone)."""
    model = forward.create_model(config, num_classes)
    optimizer = nnx.Optimizer(model, create_optimizer(config, steps_per_epoch), wrt=nnx.Param)
    return model, optimizer


def hyperparams(opt_state) -> dict:
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
    label_smoothing: float = 0.0  # optim.label_smoothing
    augment: augment.AugmentConfig | None = None  # training only; None or disabled: no change
    seed: int = 0


def _logits(
    model, waveforms, lengths, mask, step: StepConfig, key=None, drawn=None, statistics=None
):
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
    logits, weight = forward.logits_from_inputs(model, x, steps, mask, step.spec, drawn, statistics)
    return logits, weight, pairing


def batch_statistics(batch: dict):
    """A batch's per-row input statistics ``(frame_mean, frame_scale)``, if it carries them
    (``features.frame_standardise="speaker"``), else None."""
    return (batch["frame_mean"], batch["frame_scale"]) if "frame_mean" in batch else None


def train_step(graphdef, state, batch, class_weights, step: StepConfig, seed=None):
    """One optimiser step; returns the new state and the batch's mean loss.

    ``seed`` (an int32 scalar, traced) replaces ``step.seed`` as the augmentation's seed, so
    that models of several seeds can share one compiled step (:mod:`serjax.vectorized`).
    """
    model, optimizer = nnx.merge(graphdef, state)
    key = None
    if step.augment is not None and step.augment.enabled:
        # The step count is part of the checkpoint, so a resumed run draws the same
        # augmentations as an uninterrupted one.
        seed = step.seed if seed is None else seed
        key = jax.random.fold_in(jax.random.key(seed), optimizer.step[...])

    drawn = None
    if "segment_index" in batch:  # train.segment_batch: the segments drawn for this step
        drawn = (batch["segment_index"], batch["segment_mask"])

    def loss_fn(model):
        logits, weight, pairing = _logits(
            model,
            batch["waveforms"],
            batch["lengths"],
            batch["mask"],
            step,
            key,
            drawn,
            batch_statistics(batch),
        )
        if pairing is None:
            targets = jax.nn.one_hot(batch["labels"], step.num_classes)
        else:
            targets = augment.mixup_targets(batch["labels"], step.num_classes, pairing)
        weight = weight * (targets @ class_weights)[:, None]
        if step.label_smoothing:  # after the class weights, which follow the true labels
            targets = optax.smooth_labels(targets, step.label_smoothing)
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
        model,
        batch["waveforms"],
        batch["lengths"],
        batch["mask"],
        step.spec,
        batch_statistics(batch),
    )
    picked = jnp.take_along_axis(probs, batch["labels"][:, None], axis=-1)[:, 0]
    return probs, -jnp.log(jnp.maximum(picked, 1e-12))
