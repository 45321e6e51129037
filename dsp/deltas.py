"""Regression deltas (HTK / torchaudio ``compute_deltas`` convention) along the frame axis."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dsp import _checks
from dsp.masking import frame_mask


def delta(
    x: jax.Array, *, width: int = 2, n_frames: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """Regression delta ``d_t = sum_{n=1..N} n (c_{t+n} - c_{t-n}) / (2 sum_{n=1..N} n^2)``.

    Frames beyond the ends are replicas of the edge frames, as HTK and
    ``torchaudio.functional.compute_deltas(..., win_length=2N+1, mode="replicate")``. In the
    interior this is also ``librosa.feature.delta(width=2N+1)`` (a first-order Savitzky-Golay
    derivative), which differs only near the edges.

    Args:
      x: float ``[..., frames, features]``.
      width: ``N``, the half-width; the regression spans ``2N + 1`` frames.
      n_frames: optional int ``[...]`` valid frames per example; the right edge is then each
        example's last valid frame, so valid frames match the unpadded sequence's deltas.
        Output on padded frames is unspecified (not zeroed).

    Returns:
      ``[..., frames, features]`` in ``x``'s dtype.
    """
    width = _checks.positive_int("width", width)
    x = _checks.float_array("x", x, min_ndim=2)
    total = x.shape[-2]
    if n_frames is not None:
        n_frames = _checks.int_array("n_frames", n_frames, shape=x.shape[:-2])
        # Overwrite padding with the last valid frame, then replicate-pad the whole axis: a
        # [..., 1, D] gather instead of clamped indices for every frame and every offset.
        last = jnp.clip(n_frames - 1, 0, max(total - 1, 0))[..., None, None]
        last_frame = jnp.take_along_axis(x, last, axis=-2)
        x = jnp.where(frame_mask(n_frames, total)[..., None], x, last_frame)
    padded = jnp.pad(x, [(0, 0)] * (x.ndim - 2) + [(width, width), (0, 0)], mode="edge")
    numerator = sum(
        n
        * (
            padded[..., width + n : width + n + total, :]
            - padded[..., width - n : width - n + total, :]
        )
        for n in range(1, width + 1)
    )
    return numerator / jnp.asarray(2 * sum(n * n for n in range(1, width + 1)), x.dtype)


def stack_deltas(
    x: jax.Array,
    *,
    order: int = 2,
    delta_width: int = 2,
    delta_delta_width: int = 2,
    n_frames: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """``[c]``, ``[c, Δc]`` or ``[c, Δc, ΔΔc]`` concatenated along the feature axis.

    ``ΔΔc`` is the delta of ``Δc`` with its own width, so the reading "N = 1 for Δ and N = 2
    for ΔΔ" is ``delta_width=1, delta_delta_width=2``; HTK uses 2 for both.

    Args:
      x: float ``[..., frames, D]``.
      order: 0, 1 or 2.
      delta_width: ``N`` for Δ.
      delta_delta_width: ``N`` for ΔΔ.
      n_frames: optional int ``[...]`` valid frames per example (see ``delta``).

    Returns:
      ``[..., frames, (order + 1) * D]``.
    """
    order = _checks.choice("order", order, (0, 1, 2))
    x = _checks.float_array("x", x, min_ndim=2)
    parts = [x]
    if order >= 1:
        parts.append(delta(x, width=delta_width, n_frames=n_frames))
    if order == 2:
        parts.append(delta(parts[1], width=delta_delta_width, n_frames=n_frames))
    return jnp.concatenate(parts, axis=-1) if len(parts) > 1 else x
