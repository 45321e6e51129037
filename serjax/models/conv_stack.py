"""Stacks of conv blocks: argument checks, static shape planning and construction.

The per-block arguments of every convolutional model (``filters``, ``kernel_sizes``,
``pool_sizes``) are normalised here, and the size of each axis after the stack is planned at
construction, so a configuration that would pool an axis below one step fails before any
parameter is drawn, with a message naming sizes that would work. Kernels and pools follow
:mod:`serjax.models.convolutional`'s convention: time first, then the feature axis.
"""

from __future__ import annotations

from collections.abc import Sequence

from flax import nnx

from serjax.models.layers import ConvBlock, static_conv_size, static_pool_size
from serjax.models.recurrent import validate_sizes


def _as_tuple(value: int | Sequence[int], dims: int, what: str, model: str) -> tuple[int, ...]:
    """An int or a ``dims``-long sequence -> a ``dims``-tuple of ints (configs give lists)."""
    if isinstance(value, int):
        return (value,) * dims
    out = tuple(int(v) for v in value)
    if len(out) != dims:
        raise ValueError(f"{model}: each entry of {what} needs {dims} sizes, got {tuple(value)}")
    return out


def normalize_blocks(
    model: str,
    conv_dims: int,
    filters: Sequence[int],
    kernel_sizes: Sequence[int | Sequence[int]],
    pool_sizes: Sequence[int | Sequence[int]],
) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """Checks the per-block tuples agree in length and turns them into tuples of tuples."""
    filters = tuple(int(f) for f in filters)
    kernels = tuple(_as_tuple(k, conv_dims, "kernel_sizes", model) for k in kernel_sizes)
    pools = tuple(_as_tuple(p, conv_dims, "pool_sizes", model) for p in pool_sizes)
    if not filters or not len(filters) == len(kernels) == len(pools):
        raise ValueError(
            f"{model}: filters, kernel_sizes and pool_sizes need one entry per block and the "
            f"same (non-zero) length; got {len(filters)}, {len(kernels)} and {len(pools)}"
        )
    validate_sizes(model, "filters", filters)
    for name, sizes in (("kernel_sizes", kernels), ("pool_sizes", pools)):
        for entry in sizes:
            validate_sizes(model, name, entry)
    return filters, kernels, pools


def _min_size(kernels: Sequence[int], pools: Sequence[int], padding: str, *, ceil: bool) -> int:
    """Smallest input size for which every block leaves at least one step on this axis."""
    need = 1
    for k, p in zip(reversed(kernels), reversed(pools), strict=True):
        need = (need - 1) * p + 1 if ceil else need * p
        if padding == "VALID":
            need += k - 1
    return need


def plan_axis(
    model: str,
    what: str,
    argument: str,
    size: int,
    kernels: Sequence[int],
    pools: Sequence[int],
    padding: str,
    *,
    ceil: bool,
    axis: int,
) -> int:
    """Size of one axis after the conv blocks; a ValueError saying what would work otherwise.

    Args:
      what: the unit, for the message ("band(s)", "frames per chunk", ...).
      argument: the constructor argument that sets ``size``.
      axis: 0 for time, 1 for the feature axis (index into the ``(kt, kf)`` pairs in the
        suggestion).
    """
    current = size
    for block, (k, p) in enumerate(zip(kernels, pools, strict=True), start=1):
        after_conv = static_conv_size(current, k, padding)
        after_pool = static_pool_size(after_conv, p, ceil=ceil) if after_conv >= 1 else 0
        if after_pool < 1:
            if after_conv < 1:
                problem = (
                    f"block {block}'s VALID convolution (kernel {k}) does not fit {current} {what}"
                )
            else:
                problem = f"block {block} would pool {after_conv} {what} by {p} down to 0"
            minimum = _min_size(kernels, pools, padding, ceil=ceil)
            hint = f"These kernels and pools need {argument} >= {minimum}"
            fitted = _fit_pools(size, kernels, pools, padding, ceil=ceil)
            if fitted is not None:
                hint += (
                    f"; for {argument}={size} smaller pools along this axis would work "
                    f"(axis {axis} of each pool_sizes entry): {fitted}"
                )
            elif padding == "VALID":
                hint += "; or use padding='SAME'"
            raise ValueError(f"{model}: {argument}={size} is too small: {problem}. {hint}.")
        current = after_pool
    return current


def _fit_pools(
    size: int, kernels: Sequence[int], pools: Sequence[int], padding: str, *, ceil: bool
) -> tuple[int, ...] | None:
    """Pools capped at what each block can afford for ``size``, or None if none would fit."""
    fitted = []
    for k, p in zip(kernels, pools, strict=True):
        size = static_conv_size(size, k, padding)
        if size < 1:
            return None
        p = min(p, size)
        fitted.append(p)
        size = static_pool_size(size, p, ceil=ceil)
    return tuple(fitted)


def build_blocks(
    in_channels: int,
    filters: Sequence[int],
    kernels: Sequence[tuple[int, ...]],
    pools: Sequence[tuple[int, ...]],
    *,
    rngs: nnx.Rngs,
    **block_kwargs,
) -> nnx.List:
    """One :class:`ConvBlock` per entry, ``in_channels -> filters[0] -> filters[1] ...``.

    The blocks are created first to last, which fixes the order in which they draw
    parameter keys. ``block_kwargs`` (padding, activation, batch norm, dropout, pool kind,
    ...) go to every block.
    """
    channels = [in_channels, *filters]
    return nnx.List(
        [
            ConvBlock(c_in, c_out, k, pool_size=p, rngs=rngs, **block_kwargs)
            for c_in, c_out, k, p in zip(channels[:-1], channels[1:], kernels, pools, strict=True)
        ]
    )
