"""Length-aware building blocks shared by every model family.

Every tensor that carries time is batch-major, ``[B, T, ...]``, with ``lengths: [B]`` int32
counting the valid leading steps of each example. The rest of a row is padding. The blocks
here guarantee that padding never reaches a valid output: convolutions see zeros past the
valid length (exactly what a SAME/VALID convolution of the unpadded example sees), pooling
windows ignore padded steps, batch statistics are taken over valid steps only, and
summaries (mean, attention) weigh valid steps only. As a result a padded batch gives the
same logits as running each example alone on exactly its valid frames.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

import dsp

# Keras' defaults, which all five reference systems were built with.
KERNEL_INIT = nnx.initializers.glorot_uniform()
RECURRENT_INIT = nnx.initializers.orthogonal()
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3
LEAKY_RELU_SLOPE = 0.01
# A feature whose standard deviation is below this (e.g. constant over a speaker's
# utterances) is centred but not scaled, so that it cannot blow up.
MIN_SCALE = 1e-6

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "elu": nnx.elu,
    "relu": nnx.relu,
    "leaky_relu": lambda x: nnx.leaky_relu(x, negative_slope=LEAKY_RELU_SLOPE),
    "tanh": jnp.tanh,
}
POOLINGS = ("last", "mean", "stats", "attention")
PADDINGS = ("SAME", "VALID")
POOL_KINDS = ("max", "avg")


def _expand_like(mask: jax.Array, x: jax.Array) -> jax.Array:
    """``[B, T]`` mask -> ``[B, T, 1, ..., 1]`` broadcastable against ``x: [B, T, ...]``."""
    return mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))


@jax.jit
def zero_padding(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Sets the padded steps of ``x: [B, T, ...]`` to exactly zero (``where``, so NaN-safe)."""
    mask = _expand_like(dsp.frame_mask(lengths, x.shape[1]), x)
    return jnp.where(mask, x, jnp.zeros((), x.dtype))


def normalize_lengths(lengths: jax.Array | None, batch: int, max_len: int) -> jax.Array:
    """Validates ``lengths: [B]`` (None means every row is full) and clips it to ``[0, T]``."""
    if lengths is None:
        return jnp.full((batch,), max_len, jnp.int32)
    lengths = jnp.asarray(lengths)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},) to match x, got {lengths.shape}")
    return jnp.clip(lengths.astype(jnp.int32), 0, max_len)


def check_input(x: jax.Array, num_features: int, model: str) -> None:
    """Raises a readable ValueError at trace time for a wrongly shaped ``x: [B, T, D]``."""
    if x.ndim != 3:
        raise ValueError(
            f"{model}: expected x of shape [batch, time, {num_features}], got shape {x.shape}"
        )
    if x.shape[-1] != num_features:
        raise ValueError(
            f"{model}: the model was built for num_features={num_features} but x has "
            f"{x.shape[-1]} features (shape {x.shape})"
        )


@jax.jit
def masked_mean(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Mean of ``x: [B, T, D]`` over valid steps -> ``[B, D]`` (zeros for an empty row)."""
    mask = dsp.frame_mask(lengths, x.shape[1])[..., None]
    total = jnp.sum(jnp.where(mask, x, 0.0), axis=1)
    return total / jnp.maximum(lengths, 1)[:, None].astype(x.dtype)


def statistics_pooling(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Mean and standard deviation of ``x: [B, T, D]`` over the valid steps, concatenated
    -> ``[B, 2D]`` (zeros for an empty row): the x-vector's statistics pooling (Snyder et al.,
    "X-vectors: robust DNN embeddings for speaker recognition", ICASSP 2018)."""
    mean, var = dsp.masked_mean_var(x, lengths)
    # The epsilon keeps the gradient of sqrt finite where a feature is constant.
    return jnp.concatenate([mean[:, 0], jnp.sqrt(var[:, 0] + 1e-8)], axis=-1)


def conv_lengths(lengths: jax.Array, kernel: int, padding: str) -> jax.Array:
    """Valid output steps of a stride-1 convolution along time.

    A VALID output step is kept only when its whole window lies inside the valid input,
    which is how many steps the same convolution gives on the unpadded example.
    """
    if padding == "SAME":
        return lengths
    return jnp.maximum(lengths - (kernel - 1), 0)


def static_conv_size(size: int, kernel: int, padding: str) -> int:
    """Static counterpart of :func:`conv_lengths` for one axis."""
    return size if padding == "SAME" else size - kernel + 1


def static_pool_size(size: int, pool: int, *, ceil: bool) -> int:
    """Output size of a non-overlapping pool: ceil along time, floor along feature axes."""
    return -(-size // pool) if ceil else size // pool


@functools.partial(jax.jit, static_argnames=("window", "kind"))
def pool(
    x: jax.Array, lengths: jax.Array, window: Sequence[int], kind: str
) -> tuple[jax.Array, jax.Array]:
    """Non-overlapping max/average pooling that respects the valid length.

    Args:
      x: ``[B, T, *S, C]`` activations; time is axis 1, ``S`` are feature axes (0 or 1).
      lengths: ``[B]`` valid steps along time.
      window: pool (= stride) per axis, time first, ``len(window) == 1 + len(S)``.
      kind: ``"max"`` or ``"avg"``.

    Returns:
      ``([B, ceil(T / pt), *(S // ps), C], ceil(lengths / pt))``.

    Along time a window that straddles the end of the valid region is kept and pools over
    its valid steps only (so any non-empty utterance yields at least one step); padded
    steps never enter a max or an average. Along feature axes the remainder is dropped
    (Keras' VALID pooling), since those axes have no padding.
    """
    b, t = x.shape[:2]
    spatial, channels = x.shape[2:-1], x.shape[-1]
    pt, ps = window[0], tuple(window[1:])
    if len(ps) != len(spatial):
        raise ValueError(f"pool window {tuple(window)} does not match input shape {x.shape}")
    t_out = -(-t // pt)
    s_out = tuple(s // p for s, p in zip(spatial, ps, strict=True))
    crop = tuple(slice(0, so * p) for so, p in zip(s_out, ps, strict=True))
    x = x[(slice(None), slice(None), *crop)]
    valid = _expand_like(dsp.frame_mask(lengths, t), x)
    pad = [(0, 0), (0, t_out * pt - t)] + [(0, 0)] * (x.ndim - 2)
    if kind == "max":
        fill = jnp.asarray(jnp.finfo(x.dtype).min, x.dtype)
        x = jnp.pad(jnp.where(valid, x, fill), pad, constant_values=fill)
    elif kind == "avg":
        x = jnp.pad(jnp.where(valid, x, 0.0), pad)
    else:
        raise ValueError(f"unknown pool kind {kind!r}; expected one of {POOL_KINDS}")
    shape = [b, t_out, pt]
    for so, p in zip(s_out, ps, strict=True):
        shape += [so, p]
    x = x.reshape(shape + [channels])
    window_axes = tuple(range(2, 2 + 2 * len(window), 2))
    new_lengths = -(-lengths // pt)
    if kind == "max":
        y = jnp.max(x, axis=window_axes)
    else:
        steps = jnp.clip(lengths[:, None] - jnp.arange(t_out)[None, :] * pt, 0, pt)
        count = steps.astype(x.dtype) * math.prod(ps)
        y = jnp.sum(x, axis=window_axes)
        y = y / _expand_like(jnp.maximum(count, 1.0), y)
    out_valid = _expand_like(dsp.frame_mask(new_lengths, t_out), y)
    return jnp.where(out_valid, y, jnp.zeros((), y.dtype)), new_lengths


class ConvBlock(nnx.Module):
    """One convolutional block over ``[B, T, *S, C]``: conv -> [BN] -> act -> [dropout] -> pool.

    With ``pool_before_activation`` the order is conv -> [BN] -> pool -> act -> [dropout]
    (S3's CNN). Convolutions have stride 1; ``padding`` is "SAME" or "VALID" on every axis.
    Works for 1D (``S`` empty, kernel ``(k,)``) and 2D (``S = (F,)``, kernel ``(kt, kf)``)
    inputs; time is always axis 1.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: Sequence[int],
        *,
        pool_size: Sequence[int],
        padding: str = "SAME",
        activation: str = "relu",
        batch_norm: bool = True,
        dropout: float = 0.0,
        pool_kind: str = "max",
        pool_before_activation: bool = False,
        rngs: nnx.Rngs,
    ):
        self.kernel_size = tuple(kernel_size)
        self.pool_size = tuple(pool_size)
        self.padding = padding
        self.activation = activation
        self.pool_kind = pool_kind
        self.pool_before_activation = pool_before_activation
        self.conv = nnx.Conv(
            in_features,
            out_features,
            kernel_size=self.kernel_size,
            padding=padding,
            kernel_init=KERNEL_INIT,
            rngs=rngs,
        )
        self.norm = (
            nnx.BatchNorm(out_features, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, rngs=rngs)
            if batch_norm
            else None
        )
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``x: [B, T, *S, C_in]``, ``lengths: [B]`` -> ``([B, T', *S', C_out], [B])``."""
        y = self.conv(zero_padding(x, lengths))
        lengths = conv_lengths(lengths, self.kernel_size[0], self.padding)
        if self.norm is not None:
            # Batch statistics over valid steps only: padding must not shift the
            # normalisation of real frames in training mode either.
            mask = _expand_like(dsp.frame_mask(lengths, y.shape[1]), y)
            y = self.norm(y, mask=mask)
        act = ACTIVATIONS[self.activation]
        if self.pool_before_activation:
            y, lengths = pool(y, lengths, self.pool_size, self.pool_kind)
            y = self.dropout(act(y))
        else:
            y = self.dropout(act(y))
            y, lengths = pool(y, lengths, self.pool_size, self.pool_kind)
        return zero_padding(y, lengths), lengths


class AdditiveAttention(nnx.Module):
    """Additive (Bahdanau-style) attention pooling over time.

    ``score_t = v . tanh(W h_t + b)``, softmax over the valid steps, then
    ``context = sum_t alpha_t h_t``.
    """

    def __init__(self, in_features: int, attention_size: int, *, rngs: nnx.Rngs):
        self.proj = nnx.Linear(in_features, attention_size, kernel_init=KERNEL_INIT, rngs=rngs)
        self.score = nnx.Linear(
            attention_size, 1, use_bias=False, kernel_init=KERNEL_INIT, rngs=rngs
        )

    def __call__(self, h: jax.Array, lengths: jax.Array) -> jax.Array:
        """``h: [B, T, D]``, ``lengths: [B]`` -> context ``[B, D]`` (zeros for an empty row)."""
        mask = dsp.frame_mask(lengths, h.shape[1])
        scores = self.score(jnp.tanh(self.proj(h)))[..., 0]
        scores = jnp.where(mask, scores, -1e30)
        weights = jax.nn.softmax(scores, axis=-1) * mask
        return jnp.einsum("bt,btd->bd", weights, h)


class MLPHead(nnx.Module):
    """Classifier head: ``[Dense(n) -> ReLU -> dropout] * len(hidden_sizes) -> Dense(classes)``."""

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        num_classes: int,
        *,
        dropout: float = 0.0,
        rngs: nnx.Rngs,
    ):
        sizes = [in_features, *hidden_sizes]
        self.hidden = nnx.List(
            [
                nnx.Linear(a, b, kernel_init=KERNEL_INIT, rngs=rngs)
                for a, b in zip(sizes[:-1], sizes[1:], strict=True)
            ]
        )
        self.dropouts = nnx.List([nnx.Dropout(dropout, rngs=rngs) for _ in hidden_sizes])
        self.out = nnx.Linear(sizes[-1], num_classes, kernel_init=KERNEL_INIT, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """``x: [B, in_features]`` -> logits ``[B, num_classes]``."""
        for dense, drop in zip(self.hidden, self.dropouts, strict=True):
            x = drop(nnx.relu(dense(x)))
        return self.out(x)


# Per-row standardisation statistics: (mean, scale), each [B, N].
Statistics = tuple[jax.Array, jax.Array]


class Standardiser(nnx.Module):
    """``(x - mean) / scale`` per feature; ``mean`` and ``scale`` ``[N]`` are batch statistics
    (``nnx.BatchStat``), so optimisers over ``nnx.Param`` leave them alone and checkpoints
    keep them with the model."""

    def __init__(self, num_features: int):
        self.mean = nnx.BatchStat(jnp.zeros((num_features,), jnp.float32))
        self.scale = nnx.BatchStat(jnp.ones((num_features,), jnp.float32))

    def set(self, mean: jax.typing.ArrayLike, scale: jax.typing.ArrayLike) -> None:
        """Replaces the statistics (shapes ``[N]``)."""
        for variable, value in ((self.mean, mean), (self.scale, scale)):
            value = jnp.asarray(value, jnp.float32)
            if value.shape != variable.shape:
                raise ValueError(f"statistics must have shape {variable.shape}, got {value.shape}")
            variable.set_value(value)

    def __call__(self, x: jax.Array, statistics: Statistics | None = None) -> jax.Array:
        """``x: [B, ..., N]``; ``statistics``: ``(mean, scale)`` of ``[B, N]`` to use for each
        row instead of the stored ones (a speaker's own, ``frame_standardise="speaker"``)."""
        if statistics is None:
            return (x - self.mean[...]) / self.scale[...]
        mean, scale = (
            s.reshape(s.shape[:1] + (1,) * (x.ndim - 2) + s.shape[1:]) for s in statistics
        )
        return (x - mean) / scale


class StandardisedInputs(nnx.Module):
    """Any model of :mod:`serjax.models` behind a :class:`Standardiser` of its input frames.

    Called as the wrapped model is, ``model(x, lengths)``. ``x: [B, T, D]`` frames are
    standardised per feature and their padded steps set back to zero, so the wrapped model
    sees padding exactly as before. With ``time_averaged`` (S2: the D time-averaged
    coefficients read as ``[B, D, 1]``, step d being coefficient d) step d is standardised
    with feature d's statistics, which is what averaging standardised frames gives.

    The statistics (``standardiser.mean``, ``standardiser.scale``, ``[D]``) are set from the
    training data before training (:func:`serjax.forward.fit_input_standardiser`) and kept in
    the checkpoint's model item, so inference applies them with no extra step. A call may give
    each row its own statistics instead (``statistics``: ``(mean, scale)``, ``[B, D]``): with
    ``features.frame_standardise="speaker"`` those of the row's speaker.
    """

    def __init__(self, model: nnx.Module, num_features: int, *, time_averaged: bool = False):
        self.standardiser = Standardiser(num_features)
        self.model = model
        self.time_averaged = time_averaged

    @property
    def head(self) -> nnx.Module:
        """The wrapped model's classifier layers."""
        return self.model.head

    def __call__(
        self,
        x: jax.Array,
        lengths: jax.Array | None = None,
        statistics: Statistics | None = None,
    ) -> jax.Array:
        if self.time_averaged:
            x = self.standardiser(x[..., 0], statistics)[..., None]
        else:
            x = self.standardiser(x, statistics)
            if lengths is not None:
                x = zero_padding(x, normalize_lengths(lengths, x.shape[0], x.shape[1]))
        return self.model(x, lengths)
