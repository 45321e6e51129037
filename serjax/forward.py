"""The one forward path: waveforms → features → model → per-utterance class probabilities.

Training, evaluation and inference all run these functions, so there is a single feature path
and a single way of turning a model's outputs into an utterance's prediction:

    waveforms [B, T], lengths [B] ── serjax.features.model_inputs ──► [B, S, D]
      ── S1's segments (optional) ──► [B, W, frames, D] ── model ──► logits [B, W, K]
      ── softmax, mean over each utterance's valid segments ──► probabilities [B, K]

This module imports no optimiser, writer or checkpoint library: inference builds the model from
a saved config and runs :func:`predict_step`, nothing else.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from serjax import models
from serjax.features import FeatureSpec, frame_statistics, model_inputs, segments, segments_at
from serjax.models.layers import MIN_SCALE, Statistics


def create_model(
    config: ml_collections.ConfigDict, num_classes: int, seed: int | None = None
) -> nnx.Module:
    """The model ``config.model`` describes, for the input size of ``config.features``.

    Args:
      config: a run config (``serjax.config_lib.base_config`` and its overrides).
      num_classes: K of the logits.
      seed: parameter initialisation (stream ``params``) and dropout (``dropout``, seed + 1);
        default ``config.seed``.

    With ``features.frame_standardise="training"`` or ``"speaker"`` the model is wrapped in
    :class:`serjax.models.StandardisedInputs`, whose statistics
    :func:`fit_input_standardiser` sets before training (with ``"speaker"`` training and
    evaluation pass each utterance's speaker's statistics instead; the stored ones are what
    inference on an unknown speaker uses).

    Raises:
      ValueError: unknown model name or hyper-parameter (the message lists the valid ones).
    """
    seed = config.seed if seed is None else seed
    spec = FeatureSpec.from_config(config)
    hparams = {k: v for k, v in config.model.items() if k != "name"}
    hparams = {k: tuple(v) if isinstance(v, list) else v for k, v in hparams.items()}
    model = models.create_model(
        config.model.name,
        num_features=spec.num_features,
        num_classes=num_classes,
        rngs=nnx.Rngs(params=seed, dropout=seed + 1),
        **hparams,
    )
    if config.features.frame_standardise in ("training", "speaker"):
        model = models.StandardisedInputs(
            model, spec.frame_features, time_averaged=spec.time_average
        )
    return model


def input_statistics(
    waveforms: Sequence[np.ndarray], spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, scale)``, ``[D]`` each, that standardise the frames of ``waveforms``
    (preprocessed): per feature, the mean and population standard deviation of their valid
    frames (:func:`serjax.features.frame_statistics`), a deviation below ``MIN_SCALE``
    replaced by 1 (a constant feature is centred, not blown up)."""
    mean, std = frame_statistics(waveforms, spec)
    return mean, np.where(std < MIN_SCALE, 1.0, std)


def fit_input_standardiser(
    model: nnx.Module, config: ml_collections.ConfigDict, waveforms: Sequence[np.ndarray]
) -> None:
    """Sets a :class:`serjax.models.StandardisedInputs` model's statistics to
    :func:`input_statistics` of ``waveforms`` (the training part). Any other model is left as
    it is."""
    if not isinstance(model, models.StandardisedInputs):
        return
    model.standardiser.set(*input_statistics(waveforms, FeatureSpec.from_config(config)))


def speaker_statistics(config: ml_collections.ConfigDict, part) -> np.ndarray:
    """Each utterance's input statistics under ``features.frame_standardise="speaker"``:
    ``[N, 2, D]``, :func:`input_statistics` of all of its speaker's utterances in ``part`` (a
    ``serjax.train.SplitData``; speakers by ``Utterance.speaker_id``).

    This is the per-speaker standardisation of the LOSO literature: a test speaker's
    statistics come from their own unlabelled recordings.
    """
    spec = FeatureSpec.from_config(config)
    speakers = part.speakers
    stats = np.zeros((len(speakers), 2, spec.frame_features), np.float32)
    for name in np.unique(speakers):
        rows = np.flatnonzero(speakers == name)
        stats[rows] = input_statistics([part.waveforms[i] for i in rows], spec)
    return stats


def logits_from_inputs(
    model: nnx.Module,
    x: jax.Array,
    steps: jax.Array,
    mask: jax.Array,
    spec: FeatureSpec,
    drawn: tuple[jax.Array, jax.Array] | None = None,
    statistics: Statistics | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Logits ``[B, W, K]`` of model inputs and the weight ``[B, W]`` of each.

    Args:
      x: ``[B, S, D]`` model inputs; steps: ``[B]`` valid steps of each.
      mask: ``[B]`` bool, False for padding rows of a batch (their weight is zero).
      spec: with S1's segments each utterance gives W segments (weight 0 past its end);
        without them W = 1.
      drawn: training with drawn segments (``train.segment_batch``): ``(index [B, G],
        drawn_mask [B, G])``, the segment numbers of each row to use, so W = G; a segment
        weighs 1 when drawn and inside its utterance. None: every segment.
      statistics: ``(mean, scale)`` ``[B, D]``, each row's own input statistics
        (``features.frame_standardise="speaker"``: its speaker's), for a
        :class:`serjax.models.StandardisedInputs` model; None: the model's stored ones.
    """
    kw = {} if statistics is None else {"statistics": statistics}
    if spec.segmented:
        if drawn is None:
            cut, cut_steps, valid = segments(
                x, steps, frames=spec.segment_frames, shift=spec.segment_shift
            )
        else:
            index, drawn_mask = drawn
            cut, cut_steps, valid = segments_at(
                x, steps, index, frames=spec.segment_frames, shift=spec.segment_shift
            )
            valid = valid & drawn_mask
        b, w = cut.shape[:2]
        if statistics is not None:  # each segment standardised as its utterance
            kw["statistics"] = tuple(jnp.repeat(s, w, axis=0) for s in statistics)
        logits = model(cut.reshape(b * w, *cut.shape[2:]), cut_steps.reshape(-1), **kw)
        return logits.reshape(b, w, -1), (valid & mask[:, None]).astype(jnp.float32)
    return model(x, steps, **kw)[:, None, :], mask[:, None].astype(jnp.float32)


def full_lengths(waveforms: jax.Array, lengths: jax.Array, mask: jax.Array) -> jax.Array:
    """``lengths`` with padding rows given the full length, so no model sees an empty input."""
    return jnp.where(mask, lengths, waveforms.shape[-1])


def utterance_probabilities(logits: jax.Array, weight: jax.Array) -> jax.Array:
    """Class probabilities ``[B, K]``: the weighted mean of each utterance's segments'
    softmax (S1 averages its windows' probabilities; without segments it is the softmax)."""
    probs = jax.nn.softmax(logits, axis=-1)
    return jnp.sum(probs * weight[..., None], axis=1) / jnp.maximum(weight.sum(1), 1)[:, None]


def predict_step(
    model: nnx.Module,
    waveforms: jax.Array,
    lengths: jax.Array,
    mask: jax.Array,
    spec: FeatureSpec,
    statistics: Statistics | None = None,
) -> jax.Array:
    """Per-utterance class probabilities ``[B, K]`` of a padded waveform batch.

    Args:
      model: in eval mode (no dropout; batch norm uses its running statistics).
      waveforms: float32 ``[B, T]`` at the config's sample rate, preprocessed
        (``serjax.data.Preprocessing``), zero-padded.
      lengths: int32 ``[B]`` valid samples; mask: bool ``[B]``, False for padding rows.
      spec: the feature transform (static).
      statistics: each row's input statistics (:func:`logits_from_inputs`), or None.
    """
    lengths = full_lengths(waveforms, lengths, mask)
    x, steps = model_inputs(waveforms, lengths, spec)
    logits, weight = logits_from_inputs(model, x, steps, mask, spec, statistics=statistics)
    return utterance_probabilities(logits, weight)


@functools.cache
def jitted_predict_step(graphdef: nnx.GraphDef, spec: FeatureSpec):
    """``predict_step`` for a split model: ``f(state, waveforms, lengths, mask) -> [B, K]``,
    jitted once per input shape.

    Kept per (graph, spec) for the process: models built from equal configs have equal graph
    definitions, so a second predictor (a reloaded checkpoint, another fold, the command line
    inside a running program) reuses the compiled programs instead of compiling every shape
    again.
    """

    @jax.jit
    def step(state, waveforms, lengths, mask):
        return predict_step(nnx.merge(graphdef, state), waveforms, lengths, mask, spec)

    return step
