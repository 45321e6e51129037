"""Variable-length batches: valid-frame counts, frame masks and masked normalisation.

A batch holds signals zero-padded to a common length ``T`` with their true lengths beside them.
Everything here works on the valid frames only, so that the features of a padded batch equal,
on each example's valid frames, the features of that signal computed alone.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dsp import _checks

CMVN_KINDS = ("none", "mean", "meanvar")


def num_frames(
    lengths: jax.typing.ArrayLike, *, n_fft: int, hop_length: int, center: bool
) -> jax.Array:
    """Number of STFT frames of signals of ``lengths`` samples, as librosa's ``stft`` frames them.

    Args:
      lengths: int ``[...]``, valid samples per example.
      n_fft: frame length in samples.
      hop_length: frame shift in samples.
      center: whether frames are centred (the signal is padded by ``n_fft // 2`` on each side).

    Returns:
      int32 ``[...]``: ``1 + (L + 2 * (n_fft // 2) - n_fft) // hop_length`` with ``center``,
      ``1 + (L - n_fft) // hop_length`` without; 0 for an empty signal or one shorter than a
      frame (where librosa raises).
    """
    n_fft, hop_length, _ = _checks.frame_params(n_fft=n_fft, hop_length=hop_length)
    center = _checks.boolean("center", center)
    lengths = _checks.int_array("lengths", lengths)
    padded = lengths + 2 * (n_fft // 2) if center else lengths
    count = 1 + (padded - n_fft) // hop_length
    return jnp.where((lengths > 0) & (padded >= n_fft), count, 0).astype(jnp.int32)


def frame_mask(n_frames: jax.typing.ArrayLike, max_frames: int) -> jax.Array:
    """bool ``[..., max_frames]``: True on the first ``n_frames`` frames of each example."""
    max_frames = _checks.nonnegative_int("max_frames", max_frames)
    n_frames = _checks.int_array("n_frames", n_frames)
    return jnp.arange(max_frames, dtype=jnp.int32) < n_frames[..., None]


def _frames_of(x: jax.Array, name: str) -> int:
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape [..., frames, features], got {x.shape}")
    return x.shape[-2]


def _check_n_frames(n_frames: jax.typing.ArrayLike, x: jax.Array) -> jax.Array:
    return _checks.int_array("n_frames", n_frames, shape=x.shape[:-2])


def masked_mean_var(x: jax.Array, n_frames: jax.typing.ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Per-example mean and (population) variance over the valid frames.

    Args:
      x: float ``[..., frames, D]``.
      n_frames: int ``[...]``, valid frames per example.

    Returns:
      ``(mean, var)``, each ``[..., 1, D]``; both 0 for an example without valid frames.
    """
    x = _checks.float_array("x", x, min_ndim=2)
    mask = frame_mask(_check_n_frames(n_frames, x), _frames_of(x, "x"))[..., None]
    count = jnp.maximum(jnp.sum(mask, axis=-2, keepdims=True), 1).astype(x.dtype)
    mean = jnp.sum(jnp.where(mask, x, 0), axis=-2, keepdims=True) / count
    # Two-pass variance: the one-pass E[x^2] - E[x]^2 cancels badly on dB-scale features.
    var = jnp.sum(jnp.where(mask, jnp.square(x - mean), 0), axis=-2, keepdims=True) / count
    return mean, var


def cmvn(
    x: jax.Array, n_frames: jax.typing.ArrayLike, *, kind: str = "meanvar", eps: float = 1e-10
) -> jax.Array:
    """Per-utterance cepstral mean (and variance) normalisation over valid frames.

    ``"mean"``: ``x - mean``; ``"meanvar"``: ``(x - mean) / sqrt(var + eps)``, with the
    population variance (ddof 0) of the valid frames. ``eps`` keeps the division finite (and
    its gradient too) and is invisible next to the variance of real features.

    A feature that is constant over an example's valid frames (zero variance: a silent band, a
    clipped or DC-only input) becomes exactly 0 with either kind. Computed, its mean differs
    from the constant by a rounding error, which ``1 / sqrt(eps)`` would blow up to order 1.
    Every other feature is normalised by the formulas above, unchanged.

    Args:
      x: float ``[..., frames, D]``.
      n_frames: int ``[...]``, valid frames per example.
      kind: ``"none"`` | ``"mean"`` | ``"meanvar"``.
      eps: variance floor added under the square root.

    Returns:
      ``[..., frames, D]`` in ``x``'s dtype, with padded frames set to 0.
    """
    kind = _checks.choice("kind", kind, CMVN_KINDS)
    eps = _checks.real("eps", eps, low=0.0)
    x = _checks.float_array("x", x, min_ndim=2)
    n_frames = _check_n_frames(n_frames, x)
    mask = frame_mask(n_frames, _frames_of(x, "x"))[..., None]
    if kind == "none":
        return jnp.where(mask, x, 0)
    mean, var = masked_mean_var(x, n_frames)
    y = x - mean
    if kind == "meanvar":
        y = y * jax.lax.rsqrt(var + eps)
    # Constant over the valid frames: exactly equal extremes (the computed var may not be 0).
    lowest = jnp.min(jnp.where(mask, x, jnp.inf), axis=-2, keepdims=True)
    highest = jnp.max(jnp.where(mask, x, -jnp.inf), axis=-2, keepdims=True)
    return jnp.where(mask & (lowest != highest), y, 0)
