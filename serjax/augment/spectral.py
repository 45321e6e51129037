"""On-device spectral transforms: pitch shift and time stretch of power spectrograms
``[B, F, n_freq]``, VTLP's warped mel filterbank, and SpecAugment's masks on features
``[B, F, D]``, each with the valid frame counts ``[B]``."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import dsp

# VTLP warps frequencies linearly up to this fraction of Nyquist, then maps the rest linearly
# onto what is left, so that Nyquist stays Nyquist (Jaitly & Hinton 2013: 4.8 kHz at 16 kHz).
VTLP_BOUNDARY = 0.6
# The warped filterbank interpolates triangles sampled this many times finer than the FFT bins.
_VTLP_OVERSAMPLE = 8


def _lerp_magnitudes(power: jax.Array, source: jax.Array, axis: int) -> jax.Array:
    """Power at fractional positions ``source`` along ``axis`` (-1 or -2), by linear
    interpolation of magnitudes as the phase vocoder interpolates them; ``source`` is already
    clamped to ``[0, size - 1]`` and broadcasts against ``power`` along the other axes."""
    size = power.shape[axis]
    magnitude = jnp.sqrt(power)
    low = jnp.floor(source)
    frac = (source - low).astype(power.dtype)
    low = low.astype(jnp.int32)
    high = jnp.minimum(low + 1, size - 1)
    left = jnp.take_along_axis(magnitude, low, axis=axis)
    right = jnp.take_along_axis(magnitude, high, axis=axis)
    return jnp.square((1 - frac) * left + frac * right)


def shift_pitch(power: jax.Array, semitones: jax.Array) -> jax.Array:
    """Pitch shift without tempo change, as magnitude features see it.

    Bin k of the output reads the input at bin ``k / ratio`` with ``ratio = 2 ** (semitones /
    12)``: a tone at bin k0 moves to bin ``ratio * k0`` (one octave up doubles its bin) with
    its peak height kept. Content shifted past Nyquist is dropped and, shifting down, the top
    bins are left empty, as after a resampling pitch shift.

    Args:
      power: float ``[B, F, n_freq]`` power spectrograms.
      semitones: float ``[B]`` shifts (0 is the identity).

    Returns:
      ``[B, F, n_freq]``; frames and padded frames as in ``power``.
    """
    n_freq = power.shape[-1]
    ratio = 2.0 ** (semitones.astype(jnp.float32) / 12.0)
    source = jnp.arange(n_freq, dtype=jnp.float32)[None, :] / ratio[:, None]  # [B, n_freq]
    inside = source <= n_freq - 1
    source = jnp.minimum(source, n_freq - 1)[:, None, :]
    shifted = _lerp_magnitudes(power, source, axis=-1)
    return jnp.where(inside[:, None, :], shifted, 0)


def stretch_time(
    power: jax.Array, n_frames: jax.Array, rate: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Time stretch without pitch change, as magnitude features see it.

    Output frame t reads the input at frame ``t * rate`` (magnitudes linearly interpolated, as
    ``librosa.phase_vocoder`` does), clamped to the last valid frame, so the spectrum of every
    frame keeps its frequencies and padding is never read.

    Args:
      power: float ``[B, F, n_freq]`` power spectrograms.
      n_frames: int ``[B]`` valid frames.
      rate: float ``[B]`` stretch rates (> 1 faster, fewer frames; 1 is the identity).

    Returns:
      ``(power [B, F, n_freq], new_n_frames [B])``: ``new_n_frames = min(F, round(n_frames /
      rate))`` (halves up; at least 1 for a non-empty example), frames past it zero.
    """
    num = power.shape[-2]
    rate = rate.astype(jnp.float32)
    new_frames = jnp.clip(jnp.floor(n_frames.astype(jnp.float32) / rate + 0.5), 1, num)
    new_frames = jnp.where(n_frames > 0, new_frames, 0).astype(jnp.int32)
    last = jnp.maximum(n_frames - 1, 0).astype(jnp.float32)
    source = jnp.arange(num, dtype=jnp.float32)[None, :] * rate[:, None]
    source = jnp.minimum(source, last[:, None])[:, :, None]  # [B, F, 1]
    stretched = _lerp_magnitudes(power, source, axis=-2)
    return jnp.where(dsp.frame_mask(new_frames, num)[..., None], stretched, 0), new_frames


def vtlp_warp(freqs, alpha, *, nyquist: float, boundary: float = VTLP_BOUNDARY):
    """VTLP's piecewise-linear frequency warp (Jaitly & Hinton, 2013), elementwise.

    ``f -> alpha f`` up to ``f0 = boundary * nyquist * min(alpha, 1) / alpha``; above it, the
    line through ``(f0, alpha f0)`` and ``(nyquist, nyquist)``. Works on NumPy or JAX arrays.

    Args:
      freqs: frequencies in Hz, ``0 <= f <= nyquist``.
      alpha: warp factors (> 0), broadcasting against ``freqs``.
      nyquist: ``sample_rate / 2`` in Hz.
      boundary: fraction of Nyquist where the warp turns.
    """
    xp = jnp if isinstance(freqs, jax.Array) or isinstance(alpha, jax.Array) else np
    knee = boundary * nyquist * xp.minimum(alpha, 1.0)
    turn = knee / alpha
    upper = nyquist - (nyquist - knee) / (nyquist - turn) * (nyquist - freqs)
    return xp.where(freqs <= turn, alpha * freqs, upper)


@functools.lru_cache(maxsize=32)
def _fine_filterbank(config: dsp.FeatureConfig) -> np.ndarray:
    return config.filterbank(n_fft=config.n_fft * _VTLP_OVERSAMPLE)


def vtlp_filterbank(config: dsp.FeatureConfig, alpha: jax.Array) -> jax.Array:
    """Per-example mel filterbanks with VTLP-warped frequency axes.

    Filter m's weight on FFT bin k is the unwarped triangle m evaluated at
    ``vtlp_warp(f_k, alpha)``: a tone at f lands in the bands of ``alpha * f`` (below the
    knee), so alpha > 1 sounds like a shorter vocal tract. The triangles are taken from
    ``dsp.mel_filterbank`` sampled 8 times finer than the bins and interpolated linearly.

    Args:
      config: the front end whose filterbank is warped.
      alpha: float ``[B]`` warp factors (1 gives ``dsp.mel_filterbank`` within float error).

    Returns:
      float32 ``[B, n_freq, n_mels]``, for ``dsp.features_from_power(mel_basis=...)``.
    """
    fine = jnp.asarray(_fine_filterbank(config), jnp.float32)
    nyquist = config.sample_rate / 2
    freqs = jnp.asarray(np.fft.rfftfreq(config.n_fft, d=1.0 / config.sample_rate), jnp.float32)
    warped = vtlp_warp(freqs[None, :], alpha.astype(jnp.float32)[:, None], nyquist=nyquist)
    position = jnp.clip(warped / (nyquist / (fine.shape[0] - 1)), 0, fine.shape[0] - 1)
    low = jnp.floor(position)
    frac = (position - low)[..., None]
    low = low.astype(jnp.int32)
    high = jnp.minimum(low + 1, fine.shape[0] - 1)
    return (1 - frac) * fine[low] + frac * fine[high]


# ---------------------------------------------------------------------------------------------
# SpecAugment masks, on features [B, F, D] with valid frames [B]


def _span_mask(positions: jax.Array, starts: jax.Array, widths: jax.Array) -> jax.Array:
    """bool ``[B, P]``: positions ``[P]`` inside any span ``[start, start + width)``, ``[B, M]``."""
    p = positions[None, None, :]
    inside = (p >= starts[..., None]) & (p < (starts + widths)[..., None])
    return jnp.any(inside, axis=1)


def mask_time(
    feats: jax.Array,
    n_frames: jax.Array,
    starts: jax.Array,
    widths: jax.Array,
    *,
    fill: jax.Array | None = None,
) -> jax.Array:
    """SpecAugment's time masks (Park et al., 2019): replaces frames ``[start, start + width)``
    of each example by ``fill``, by default its mean valid frame.

    The mean valid frame is the per-feature mean over the valid frames, i.e. 0 after CMVN, as
    SpecAugment fills normalised features. Padded frames stay as they are.

    Args:
      feats: float ``[B, F, D]``; n_frames: int ``[B]``.
      starts, widths: int ``[B, M]``, M masks per example.
      fill: float ``[B, 1, D]``; None means ``dsp.masked_mean_var(feats, n_frames)[0]``.

    Returns:
      ``[B, F, D]``, changed only on valid frames inside a span.
    """
    if fill is None:
        fill, _ = dsp.masked_mean_var(feats, n_frames)
    num = feats.shape[-2]
    masked = _span_mask(jnp.arange(num), starts, widths) & dsp.frame_mask(n_frames, num)
    return jnp.where(masked[..., None], fill, feats)


def mask_features(
    feats: jax.Array,
    n_frames: jax.Array,
    starts: jax.Array,
    widths: jax.Array,
    *,
    block: int,
    fill: jax.Array | None = None,
) -> jax.Array:
    """SpecAugment's frequency masks (Park et al., 2019): replaces feature bins ``[start, start +
    width)`` of every ``block`` by ``fill``, by default the mean valid frame.

    Static, Δ and ΔΔ features of one band sit ``block`` apart (``D = block * (deltas + 1)``),
    so a band is masked in all of them. Only valid frames are touched.

    Args:
      feats: float ``[B, F, D]``; n_frames: int ``[B]``.
      starts, widths: int ``[B, M]``, bins within a block (``0 <= start``,
        ``start + width <= block``).
      block: features per block (``n_mels`` or ``n_mfcc``).
      fill: float ``[B, 1, D]``; None means ``dsp.masked_mean_var(feats, n_frames)[0]``.

    Returns:
      ``[B, F, D]``, changed only on valid frames in a masked band.
    """
    if fill is None:
        fill, _ = dsp.masked_mean_var(feats, n_frames)
    bins = jnp.arange(feats.shape[-1]) % block
    masked = _span_mask(bins, starts, widths)[:, None, :]  # [B, 1, D]
    masked = masked & dsp.frame_mask(n_frames, feats.shape[-2])[..., None]
    return jnp.where(masked, fill, feats)


def random_spans(
    key: jax.Array, limit: jax.Array, count: int, max_width: int
) -> tuple[jax.Array, jax.Array]:
    """SpecAugment's draw: ``count`` spans per example, width uniform in ``0..max_width`` (cut
    to ``limit``), start uniform in ``0..limit - width``. Returns int32 ``[B, count]`` each."""
    width_key, start_key = jax.random.split(key)
    shape = (limit.shape[0], count)
    widths = jax.random.randint(width_key, shape, 0, max_width + 1)
    widths = jnp.minimum(widths, limit[:, None])
    room = (limit[:, None] - widths + 1).astype(jnp.float32)
    starts = jnp.floor(jax.random.uniform(start_key, shape) * room).astype(jnp.int32)
    starts = jnp.minimum(starts, limit[:, None] - widths)
    return starts.astype(jnp.int32), widths.astype(jnp.int32)
