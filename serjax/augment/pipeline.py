"""How the on-device transforms are chained in the train step, and mixup.

Each transform draws from its own stream of the step's key (see ``_keys``), and each example
of the batch draws whether it is picked and its own parameter (see ``_draw``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

import dsp
from serjax.augment.config import AugmentConfig
from serjax.augment.spectral import (
    mask_features,
    mask_time,
    random_spans,
    shift_pitch,
    stretch_time,
    vtlp_filterbank,
)
from serjax.augment.waveform import add_noise, apply_gain, change_speed
from serjax.features import FeatureSpec, model_inputs, time_average


def _keys(key: jax.Array) -> dict[str, jax.Array]:
    # One fixed stream per transform: turning one on or off leaves the others' draws unchanged.
    names = ("gain", "noise", "speed", "pitch", "stretch", "vtlp", "time_masks", "freq_masks")
    return {name: jax.random.fold_in(key, i) for i, name in enumerate(names)}


def _draw(key: jax.Array, prob: float, bounds: tuple[float, float], batch: int):
    """Which examples a transform picks (bool ``[B]``) and each one's parameter (``[B]``)."""
    pick_key, value_key = jax.random.split(key)
    picked = jax.random.bernoulli(pick_key, prob, (batch,))
    value = jax.random.uniform(value_key, (batch,), jnp.float32, bounds[0], bounds[1])
    return picked, value


def augment_waveforms(
    key: jax.Array, waveforms: jax.Array, lengths: jax.Array, aug: AugmentConfig
) -> tuple[jax.Array, jax.Array]:
    """The waveform stage: gain, then noise, then speed, each on the examples it picks.

    Args:
      key: PRNG key; waveforms: float ``[B, T]``; lengths: int ``[B]``; aug: static config.

    Returns:
      ``(waveforms [B, T], lengths [B])``; lengths change only under speed perturbation.
    """
    keys = _keys(key)
    batch = waveforms.shape[0]
    x = waveforms
    lengths = lengths.astype(jnp.int32)
    if aug.gain_prob > 0:
        picked, gain = _draw(keys["gain"], aug.gain_prob, aug.gain_db, batch)
        x = jnp.where(picked[:, None], apply_gain(x, gain), x)
    if aug.noise_prob > 0:
        picked, snr = _draw(keys["noise"], aug.noise_prob, aug.snr_db, batch)
        pink = None
        if "pink" in aug.noise_colors:
            color_key = jax.random.fold_in(keys["noise"], 1)
            color = jax.random.randint(color_key, (batch,), 0, len(aug.noise_colors))
            pink = jnp.asarray([c == "pink" for c in aug.noise_colors])[color]
        noise_key = jax.random.fold_in(keys["noise"], 2)
        x = jnp.where(picked[:, None], add_noise(noise_key, x, lengths, snr, pink), x)
    if aug.speed_prob > 0:
        picked, factor = _draw(keys["speed"], aug.speed_prob, aug.speed, batch)
        fast, fast_lengths = change_speed(x, lengths, factor)
        x = jnp.where(picked[:, None], fast, x)
        lengths = jnp.where(picked, fast_lengths, lengths)
    return x, lengths


def augment_power(
    key: jax.Array,
    power: jax.Array,
    n_frames: jax.Array,
    config: dsp.FeatureConfig,
    aug: AugmentConfig,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """The power-spectrogram stage: pitch shift, time stretch and VTLP's filterbank.

    Args:
      key: PRNG key; power: float ``[B, F, n_freq]``; n_frames: int ``[B]``; config: the
        front end (static); aug: static config.

    Returns:
      ``(power [B, F, n_freq], n_frames [B], mel_basis)``: ``mel_basis`` is None without VTLP,
      else float32 ``[B, n_freq, n_mels]`` (the plain filterbank for examples not picked).
    """
    keys = _keys(key)
    batch = power.shape[0]
    if aug.pitch_prob > 0:
        picked, semitones = _draw(keys["pitch"], aug.pitch_prob, aug.semitones, batch)
        power = jnp.where(picked[:, None, None], shift_pitch(power, semitones), power)
    if aug.stretch_prob > 0:
        picked, rate = _draw(keys["stretch"], aug.stretch_prob, aug.stretch, batch)
        stretched, stretched_frames = stretch_time(power, n_frames, rate)
        power = jnp.where(picked[:, None, None], stretched, power)
        n_frames = jnp.where(picked, stretched_frames, n_frames)
    basis = None
    if aug.vtlp_prob > 0:
        picked, alpha = _draw(keys["vtlp"], aug.vtlp_prob, aug.vtlp_alpha, batch)
        plain = jnp.asarray(config.filterbank(), jnp.float32)
        basis = jnp.where(picked[:, None, None], vtlp_filterbank(config, alpha), plain)
    return power, n_frames, basis


def augment_features(
    key: jax.Array,
    feats: jax.Array,
    n_frames: jax.Array,
    config: dsp.FeatureConfig,
    aug: AugmentConfig,
) -> jax.Array:
    """The feature stage: SpecAugment time masks, then frequency masks (:func:`mask_time` and
    :func:`mask_features` at spans drawn by :func:`random_spans`), both filling with the mean
    valid frame of ``feats``.

    Args:
      key: PRNG key; feats: float ``[B, F, D]`` from the front end ``config``; n_frames: int
        ``[B]``; aug: static config.

    Returns:
      ``[B, F, D]``, changed only on valid frames.
    """
    time_on = aug.time_masks > 0 and aug.time_mask_frames > 0
    freq_on = aug.freq_masks > 0 and aug.freq_mask_bins > 0
    if not (time_on or freq_on):
        return feats
    keys = _keys(key)
    # Both kinds of mask fill with the mean valid frame of the features before either mask.
    fill, _ = dsp.masked_mean_var(feats, n_frames)
    masked = feats
    if time_on:
        starts, widths = random_spans(
            keys["time_masks"], n_frames, aug.time_masks, aug.time_mask_frames
        )
        masked = mask_time(masked, n_frames, starts, widths, fill=fill)
    if freq_on:
        block = config.num_features // (config.deltas + 1)
        batch = feats.shape[0]
        starts, widths = random_spans(
            keys["freq_masks"], jnp.full((batch,), block), aug.freq_masks, aug.freq_mask_bins
        )
        masked = mask_features(masked, n_frames, starts, widths, block=block, fill=fill)
    return masked


def augmented_inputs(
    key: jax.Array,
    waveforms: jax.Array,
    lengths: jax.Array,
    spec: FeatureSpec,
    aug: AugmentConfig | None,
) -> tuple[jax.Array, jax.Array]:
    """``serjax.features.model_inputs`` with the configured augmentation, for training.

    Args:
      key: PRNG key of this step (e.g. ``fold_in(seed_key, step)``); each example draws its
        own parameters from it.
      waveforms: float ``[B, T]``, zero-padded; lengths: int ``[B]`` valid samples.
      spec: the feature spec (static).
      aug: the augmentation (static); None or all off returns exactly ``model_inputs``.

    Returns:
      ``(x [B, S, D], steps [B])``, the shapes of ``model_inputs``.

    Raises:
      ValueError: for spectral transforms with a raw-waveform front end.
    """
    if aug is None or not aug.transforms_inputs:
        return model_inputs(waveforms, lengths, spec)
    if spec.frontend is None and aug.spectral_transforms:
        raise ValueError(
            "augment: pitch, stretch, vtlp and SpecAugment masks need spectral features; "
            "features.kind='waveform' allows only gain, noise and speed"
        )
    x, lengths = augment_waveforms(key, waveforms, lengths, aug)
    if spec.frontend is None:
        return model_inputs(x, lengths, spec)
    config = spec.frontend
    if aug.pitch_prob > 0 or aug.stretch_prob > 0 or aug.vtlp_prob > 0:
        power, n_frames = dsp.power_stage(x, lengths, config)
        power, n_frames, basis = augment_power(key, power, n_frames, config, aug)
        feats = dsp.features_from_power(power, n_frames, config, mel_basis=basis)
    else:
        feats, n_frames = dsp.features(x, lengths, config)
    feats = augment_features(key, feats, n_frames, config, aug)
    return time_average(feats, n_frames, spec)


# ---------------------------------------------------------------------------------------------
# Mixup


class MixupPairing(NamedTuple):
    """How :func:`mixup` mixed a batch: example i became ``weight[i] * x[i] + (1 - weight[i]) *
    x[partner[i]]``; the loss mixes the labels the same way (see :func:`mixup_targets`)."""

    partner: jax.Array  # int32 [B]
    weight: jax.Array  # float32 [B], in [0, 1]; 1 on padding rows


def mixup(
    key: jax.Array, x: jax.Array, steps: jax.Array, mask: jax.Array, alpha: float
) -> tuple[jax.Array, jax.Array, MixupPairing]:
    """Mixup of model inputs (Zhang et al., 2018), pairing only real rows of the batch.

    Each real example (``mask`` True) draws its own weight from Beta(alpha, alpha) and is mixed
    with a partner from a random permutation of the real examples; padding rows are left as
    they are. The mixed sequence is as long as the longer of the two.

    Args:
      key: PRNG key.
      x: float ``[B, S, D]`` model inputs, zero past ``steps``.
      steps: int ``[B]`` valid steps; mask: bool ``[B]``, False on padding rows.
      alpha: Beta parameter (> 0).

    Returns:
      ``(x [B, S, D], steps [B], pairing)``.
    """
    batch = x.shape[0]
    weight_key, order_key = jax.random.split(key)
    weight = jax.random.beta(weight_key, alpha, alpha, (batch,), jnp.float32)
    weight = jnp.where(mask, weight, 1.0)
    index = jnp.arange(batch)
    # Real rows in order, then padding rows; and real rows shuffled, then padding rows: mapping
    # one onto the other permutes the real rows among themselves and fixes the padding rows.
    real_rows = jnp.argsort(jnp.where(mask, index, batch + index))
    shuffled = jnp.argsort(jnp.where(mask, jax.random.uniform(order_key, (batch,)), 2.0 + index))
    partner = jnp.zeros(batch, jnp.int32).at[real_rows].set(shuffled.astype(jnp.int32))
    w = weight.reshape((batch,) + (1,) * (x.ndim - 1)).astype(x.dtype)
    mixed = w * x + (1 - w) * x[partner]
    steps = jnp.where(mask, jnp.maximum(steps, steps[partner]), steps)
    return mixed, steps, MixupPairing(partner, weight)


def mixup_targets(labels: jax.Array, num_classes: int, pairing: MixupPairing) -> jax.Array:
    """Soft targets ``[B, K]``: ``weight * onehot(labels) + (1 - weight) * onehot(partner's)``."""
    own = jax.nn.one_hot(labels, num_classes)
    other = jax.nn.one_hot(labels[pairing.partner], num_classes)
    w = pairing.weight[:, None]
    return w * own + (1 - w) * other


def training_inputs(
    key: jax.Array,
    waveforms: jax.Array,
    lengths: jax.Array,
    mask: jax.Array,
    spec: FeatureSpec,
    aug: AugmentConfig | None,
) -> tuple[jax.Array, jax.Array, MixupPairing | None]:
    """The train step's model input: :func:`augmented_inputs`, then :func:`mixup` if enabled.

    Args:
      key: PRNG key of this step; split here between the input transforms and mixup.
      waveforms: float ``[B, T]``; lengths: int ``[B]``; mask: bool ``[B]``, False on rows
        that only pad the batch (never mixed into real rows).
      spec, aug: static.

    Returns:
      ``(x [B, S, D], steps [B], pairing)``; ``pairing`` is None without mixup, else the loss
      should use ``mixup_targets(labels, num_classes, pairing)``.
    """
    inputs_key, mixup_key = jax.random.split(key)
    x, steps = augmented_inputs(inputs_key, waveforms, lengths, spec, aug)
    if aug is None or aug.mixup_alpha <= 0:
        return x, steps, None
    return mixup(mixup_key, x, steps, mask, aug.mixup_alpha)
