"""Utterance-level statistical functionals of frame-level descriptors, over valid frames only.

A descriptor array ``[..., frames, D]`` with per-example frame counts (and optionally a mask,
e.g. voiced frames for F0) becomes one vector ``[..., D * len(FUNCTIONALS)]`` per example,
descriptor-major: column ``d * len(FUNCTIONALS) + j`` is functional ``j`` of descriptor ``d``,
named by ``functional_names``. Padded or masked frames never change a result, whatever they
hold (NaN included), and a descriptor without any selected frame gives 0 for every functional.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dsp import _checks
from dsp.masking import frame_mask

PERCENTILES = (1, 25, 50, 75, 99)
FUNCTIONALS = (
    "mean",
    "std",
    *(f"p{q}" for q in PERCENTILES),
    "range",
    "skewness",
    "kurtosis",
    "slope",
)


def functional_names(descriptor_names: Sequence[str]) -> tuple[str, ...]:
    """Column names of ``functionals``' output: ``f"{descriptor}_{functional}"``, in its order.

    >>> functional_names(["f0"])[:3]
    ('f0_mean', 'f0_std', 'f0_p1')
    """
    if isinstance(descriptor_names, str):
        raise ValueError("descriptor_names must be a sequence of names, not one string")
    return tuple(f"{name}_{functional}" for name in descriptor_names for functional in FUNCTIONALS)


def _selection(x: jax.Array, n_frames, mask) -> jax.Array:
    """bool ``x.shape``: the frames each descriptor's functionals read."""
    n_frames = _checks.int_array("n_frames", n_frames, shape=x.shape[:-2])
    selected = frame_mask(n_frames, x.shape[-2])[..., None]
    if mask is not None:
        mask = _checks.bool_array("mask", mask)
        try:
            selected = selected & jnp.broadcast_to(mask, x.shape)
        except ValueError as error:
            raise ValueError(
                f"mask must broadcast to x's shape {x.shape}, got {np.shape(mask)}"
            ) from error
    return jnp.broadcast_to(selected, x.shape)


def _percentiles(ordered: jax.Array, count: jax.Array) -> list[jax.Array]:
    """NumPy's default ``"linear"`` percentiles of the first ``count`` values of ``ordered``.

    The rank ``q (n - 1) / 100`` is split exactly in integers (``q`` is a whole percent), and
    the two neighbours are blended with NumPy's ``_lerp``, which approaches from the nearer end.
    """
    last = jnp.maximum(count - 1, 0)
    values = []
    for q in PERCENTILES:
        low = (q * last) // 100
        fraction = ((q * last) % 100).astype(ordered.dtype) / 100.0
        high = jnp.minimum(low + 1, last)
        a = jnp.take_along_axis(ordered, low[..., None, :], axis=-2)[..., 0, :]
        b = jnp.take_along_axis(ordered, high[..., None, :], axis=-2)[..., 0, :]
        step = b - a
        values.append(jnp.where(fraction >= 0.5, b - step * (1.0 - fraction), a + step * fraction))
    return values


def functionals(
    x: jax.Array, n_frames: jax.typing.ArrayLike, *, mask: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """Statistics of each descriptor over each example's selected frames, in ``FUNCTIONALS``
    order.

    With ``x_1 .. x_n`` the selected values (frames ``t < n_frames`` where ``mask`` is True,
    at frame indices ``t_i``):

    - ``mean``; ``std``, the population standard deviation (ddof 0, ``numpy.std``);
    - ``p1 .. p99``, percentiles with linear interpolation between order statistics
      (``numpy.percentile``'s default ``method="linear"``);
    - ``range``, ``max - min``;
    - ``skewness`` ``m3 / m2^1.5`` and ``kurtosis`` ``m4 / m2^2 - 3`` (excess), from population
      central moments ``m_k``: ``scipy.stats.skew`` and ``scipy.stats.kurtosis`` with their
      defaults (``bias=True``, ``fisher=True``). Where the variance is zero to float precision
      (``m2 <= (eps * mean)^2``, scipy's test, where scipy returns NaN) both are 0;
    - ``slope``, the least-squares slope of ``x`` against the frame index ``t`` in descriptor
      units per frame (``scipy.stats.linregress(t_i, x_i).slope``); 0 for fewer than two frames.

    Moments are taken about the minimum first (a shift that changes none of them), so a
    constant descriptor gives exactly 0 spread in any precision.

    Args:
      x: float ``[..., frames, D]`` descriptors.
      n_frames: int ``[...]`` valid frames per example.
      mask: optional bool array broadcastable to ``[..., frames, D]`` (e.g. ``[..., frames, 1]``
        voicing) selecting frames within the valid ones.

    Returns:
      ``[..., D * len(FUNCTIONALS)]`` in the compute dtype (float64 for float64 input, else
      float32), named by ``functional_names``; all 0 for a descriptor with no selected frame.
    """
    x = _checks.float_array("x", x, min_ndim=2)
    x = x.astype(_checks.compute_dtype(x))
    selected = _selection(x, n_frames, mask)
    count = jnp.sum(selected, axis=-2, dtype=jnp.int32)  # [..., D]
    present = count > 0
    n = jnp.maximum(count, 1).astype(x.dtype)

    # Selected values first in ascending order, the rest (+inf) after them.
    ordered = jnp.sort(jnp.where(selected, x, jnp.inf), axis=-2)
    minimum = jnp.where(present, ordered[..., 0, :], 0.0)
    maximum = jnp.take_along_axis(ordered, jnp.maximum(count - 1, 0)[..., None, :], axis=-2)
    maximum = jnp.where(present, maximum[..., 0, :], 0.0)

    shifted = jnp.where(selected, x - minimum[..., None, :], 0.0)
    shifted_mean = jnp.sum(shifted, axis=-2) / n
    mean = minimum + shifted_mean
    deviation = jnp.where(selected, shifted - shifted_mean[..., None, :], 0.0)
    m2, m3, m4 = (jnp.sum(deviation**k, axis=-2) / n for k in (2, 3, 4))
    flat = m2 <= jnp.square(jnp.finfo(x.dtype).eps * mean)
    safe_m2 = jnp.where(flat, 1.0, m2)
    skewness = jnp.where(flat, 0.0, m3 / safe_m2**1.5)
    kurtosis = jnp.where(flat, 0.0, m4 / jnp.square(safe_m2) - 3.0)

    index = jnp.arange(x.shape[-2], dtype=x.dtype)[:, None]
    index_mean = jnp.sum(jnp.where(selected, index, 0.0), axis=-2) / n
    index_deviation = jnp.where(selected, index - index_mean[..., None, :], 0.0)
    index_spread = jnp.sum(jnp.square(index_deviation), axis=-2)
    covariance = jnp.sum(index_deviation * deviation, axis=-2)
    has_slope = index_spread > 0
    slope = jnp.where(has_slope, covariance / jnp.where(has_slope, index_spread, 1.0), 0.0)

    columns = [
        mean,
        jnp.sqrt(m2),
        *_percentiles(ordered, count),
        maximum - minimum,
        skewness,
        kurtosis,
        slope,
    ]
    stacked = jnp.stack([jnp.where(present, c, 0.0) for c in columns], axis=-1)  # [..., D, F]
    return stacked.reshape(*stacked.shape[:-2], -1)
