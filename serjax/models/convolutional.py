"""Convolutional families: CNN-LSTM in 1D and 2D (S4), time-distributed CNN-LSTM (S4), CRNN
(S5) and the plain CNN on MFCC maps (S3).

2D models read the features ``[B, T, F]`` as a one-channel image with time as the first
spatial axis and the feature (mel band / cepstral coefficient) axis as the second, so a
kernel or pool written ``(kt, kf)`` is (time, feature). 1D models read ``[B, T, D]`` as a
``D``-channel signal (``D = 1`` for a raw waveform). Lengths are propagated through every
convolution and pooling (see :mod:`serjax.models.layers`), so the recurrent layers and the
summaries mask exactly the steps that come from real frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from serjax.models.layers import (
    ACTIVATIONS,
    PADDINGS,
    POOL_KINDS,
    ConvBlock,
    MLPHead,
    check_input,
    length_mask,
    masked_mean,
    normalize_lengths,
    static_conv_size,
    static_pool_size,
    zero_padding,
)
from serjax.models.recurrent import (
    RecurrentEncoder,
    validate_dropouts,
    validate_recurrent,
    validate_sizes,
)

TIME_SUMMARIES = ("flatten", "mean")


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


def _check_choice(model: str, name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{model}: {name}={value!r} is not one of {tuple(choices)}")


def _check_positive(model: str, **sizes: int) -> None:
    for name, value in sizes.items():
        if int(value) < 1:
            raise ValueError(f"{model}: {name} must be >= 1, got {value}")


def _build_blocks(
    in_channels: int,
    filters: Sequence[int],
    kernels: Sequence[tuple[int, ...]],
    pools: Sequence[tuple[int, ...]],
    *,
    rngs: nnx.Rngs,
    **block_kwargs,
) -> nnx.List:
    channels = [in_channels, *filters]
    return nnx.List(
        [
            ConvBlock(c_in, c_out, k, pool_size=p, rngs=rngs, **block_kwargs)
            for c_in, c_out, k, p in zip(channels[:-1], channels[1:], kernels, pools, strict=True)
        ]
    )


class ConvRecurrent(nnx.Module):
    """Conv blocks -> recurrent stack -> summary -> head (S4's 1D/2D CNN-LSTM, S5's CRNN).

    ``conv_dims=2``: ``x: [B, T, F]`` is an image ``[B, T, F, 1]``; after the blocks the
    remaining feature axis and the channels are flattened per step: ``[B, T', F' * C]``.
    ``conv_dims=1``: ``x: [B, T, D]`` is a ``D``-channel signal; after the blocks
    ``[B, T', C]``. The step sequence goes through the recurrent stack with the propagated
    lengths. Logits ``[B, num_classes]``.
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        *,
        conv_dims: int,
        filters: Sequence[int],
        kernel_sizes: Sequence[int | Sequence[int]],
        pool_sizes: Sequence[int | Sequence[int]],
        padding: str = "SAME",
        activation: str = "elu",
        batch_norm: bool = True,
        conv_dropout: float = 0.0,
        pool_kind: str = "max",
        bidirectional: bool = False,
        hidden_sizes: Sequence[int] = (256,),
        dropout: float = 0.0,
        summary: str = "last",
        attention_size: int = 128,
        output_dropout: float = 0.0,
        head_sizes: Sequence[int] = (),
        head_dropout: float = 0.0,
        name: str = "conv_recurrent",
        rngs: nnx.Rngs,
    ):
        _check_positive(name, num_features=num_features, num_classes=num_classes)
        _check_choice(name, "padding", padding, PADDINGS)
        _check_choice(name, "activation", activation, tuple(ACTIVATIONS))
        _check_choice(name, "pool_kind", pool_kind, POOL_KINDS)
        if conv_dims not in (1, 2):
            raise ValueError(f"{name}: conv_dims must be 1 or 2, got {conv_dims}")
        filters, kernels, pools = normalize_blocks(
            name, conv_dims, filters, kernel_sizes, pool_sizes
        )
        validate_recurrent(
            name,
            hidden_sizes=hidden_sizes,
            summary=summary,
            attention_size=attention_size,
            head_sizes=head_sizes,
            dropouts={
                "conv_dropout": conv_dropout,
                "dropout": dropout,
                "output_dropout": output_dropout,
                "head_dropout": head_dropout,
            },
        )
        if conv_dims == 2:
            bands = plan_axis(
                name,
                "band(s)",
                "num_features",
                num_features,
                [k[1] for k in kernels],
                [p[1] for p in pools],
                padding,
                ceil=False,
                axis=1,
            )
            in_channels, step_features = 1, bands * filters[-1]
        else:
            in_channels, step_features = num_features, filters[-1]
        self.model_name = name
        self.num_features = num_features
        self.conv_dims = conv_dims
        self.blocks = _build_blocks(
            in_channels,
            filters,
            kernels,
            pools,
            padding=padding,
            activation=activation,
            batch_norm=batch_norm,
            dropout=conv_dropout,
            pool_kind=pool_kind,
            rngs=rngs,
        )
        self.encoder = RecurrentEncoder(
            step_features,
            cell="lstm",
            hidden_sizes=tuple(hidden_sizes),
            bidirectional=bidirectional,
            dropout=dropout,
            summary=summary,
            attention_size=attention_size,
            rngs=rngs,
        )
        self.output_dropout = nnx.Dropout(output_dropout, rngs=rngs)
        self.head = MLPHead(
            self.encoder.out_features, head_sizes, num_classes, dropout=head_dropout, rngs=rngs
        )

    def __call__(self, x: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
        """``x: [B, T, D]``, ``lengths: [B]`` valid steps -> logits ``[B, num_classes]``."""
        check_input(x, self.num_features, self.model_name)
        lengths = normalize_lengths(lengths, x.shape[0], x.shape[1])
        h = x[..., None] if self.conv_dims == 2 else x
        for block in self.blocks:
            h, lengths = block(h, lengths)
        h = h.reshape(h.shape[0], h.shape[1], -1)
        return self.head(self.output_dropout(self.encoder(h, lengths)))


class TimeDistributedConvRecurrent(nnx.Module):
    """The same small 2D CNN on every chunk of frames, then a recurrent stack over chunks.

    ``x: [B, T, F]`` is cut into ``ceil(T / chunk_frames)`` non-overlapping chunks of
    ``[chunk_frames, F]``; each chunk goes through the conv blocks on its own (VALID
    convolutions by default: the chunk is the whole image), is flattened, and the chunk
    sequence ``[B, N, D']`` goes through the recurrent stack. A chunk is valid when it
    holds at least one valid frame; the padded frames of a partial last chunk are zeros,
    as if the utterance had been zero-padded to a whole number of chunks.
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        *,
        chunk_frames: int,
        filters: Sequence[int],
        kernel_sizes: Sequence[int | Sequence[int]],
        pool_sizes: Sequence[int | Sequence[int]],
        padding: str = "VALID",
        activation: str = "elu",
        batch_norm: bool = True,
        conv_dropout: float = 0.0,
        bidirectional: bool = True,
        hidden_sizes: Sequence[int] = (32,),
        dropout: float = 0.0,
        summary: str = "last",
        attention_size: int = 128,
        output_dropout: float = 0.0,
        head_sizes: Sequence[int] = (),
        head_dropout: float = 0.0,
        name: str = "time_distributed",
        rngs: nnx.Rngs,
    ):
        _check_positive(
            name, num_features=num_features, num_classes=num_classes, chunk_frames=chunk_frames
        )
        _check_choice(name, "padding", padding, PADDINGS)
        _check_choice(name, "activation", activation, tuple(ACTIVATIONS))
        filters, kernels, pools = normalize_blocks(name, 2, filters, kernel_sizes, pool_sizes)
        validate_recurrent(
            name,
            hidden_sizes=hidden_sizes,
            summary=summary,
            attention_size=attention_size,
            head_sizes=head_sizes,
            dropouts={
                "conv_dropout": conv_dropout,
                "dropout": dropout,
                "output_dropout": output_dropout,
                "head_dropout": head_dropout,
            },
        )
        steps = plan_axis(
            name,
            "frame(s)",
            "chunk_frames",
            chunk_frames,
            [k[0] for k in kernels],
            [p[0] for p in pools],
            padding,
            ceil=True,
            axis=0,
        )
        bands = plan_axis(
            name,
            "band(s)",
            "num_features",
            num_features,
            [k[1] for k in kernels],
            [p[1] for p in pools],
            padding,
            ceil=False,
            axis=1,
        )
        self.model_name = name
        self.num_features = num_features
        self.chunk_frames = chunk_frames
        self.blocks = _build_blocks(
            1,
            filters,
            kernels,
            pools,
            padding=padding,
            activation=activation,
            batch_norm=batch_norm,
            dropout=conv_dropout,
            pool_kind="max",
            rngs=rngs,
        )
        self.encoder = RecurrentEncoder(
            steps * bands * filters[-1],
            cell="lstm",
            hidden_sizes=tuple(hidden_sizes),
            bidirectional=bidirectional,
            dropout=dropout,
            summary=summary,
            attention_size=attention_size,
            rngs=rngs,
        )
        self.output_dropout = nnx.Dropout(output_dropout, rngs=rngs)
        self.head = MLPHead(
            self.encoder.out_features, head_sizes, num_classes, dropout=head_dropout, rngs=rngs
        )

    def __call__(self, x: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
        """``x: [B, T, F]``, ``lengths: [B]`` valid frames -> logits ``[B, num_classes]``."""
        check_input(x, self.num_features, self.model_name)
        b, t, f = x.shape
        lengths = normalize_lengths(lengths, b, t)
        n = -(-t // self.chunk_frames)
        x = jnp.pad(zero_padding(x, lengths), [(0, 0), (0, n * self.chunk_frames - t), (0, 0)])
        chunks = x.reshape(b * n, self.chunk_frames, f, 1)
        chunk_lengths = -(-lengths // self.chunk_frames)
        # Inside a valid chunk every frame counts (the zeros of a partial chunk included);
        # an all-padding chunk has length 0, so it stays out of the batch statistics.
        row_lengths = jnp.where(length_mask(chunk_lengths, n), self.chunk_frames, 0).reshape(-1)
        for block in self.blocks:
            chunks, row_lengths = block(chunks, row_lengths)
        h = chunks.reshape(b, n, -1)
        return self.head(self.output_dropout(self.encoder(h, chunk_lengths)))


class ConvClassifier(nnx.Module):
    """2D CNN on a feature map, then a dense head (S3's CNN on MFCC maps).

    Blocks: conv -> [BN] -> pool -> act -> dropout (pooling before the activation, as S3
    describes). ``time_summary="flatten"`` flattens the whole ``[T', F', C]`` map of a
    ``num_frames``-frame input (shorter inputs are zero-padded up to it, as S3 pads every
    map to the longest file; positions past an utterance's valid length are zero in the
    flattened vector); ``"mean"`` averages the valid steps instead and accepts any length.
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        *,
        filters: Sequence[int],
        kernel_sizes: Sequence[int | Sequence[int]],
        pool_sizes: Sequence[int | Sequence[int]],
        padding: str = "VALID",
        activation: str = "leaky_relu",
        batch_norm: bool = False,
        conv_dropout: float = 0.5,
        pool_kind: str = "avg",
        time_summary: str = "flatten",
        num_frames: int = 160,
        head_sizes: Sequence[int] = (),
        head_dropout: float = 0.0,
        name: str = "cnn",
        rngs: nnx.Rngs,
    ):
        _check_positive(name, num_features=num_features, num_classes=num_classes)
        _check_choice(name, "padding", padding, PADDINGS)
        _check_choice(name, "activation", activation, tuple(ACTIVATIONS))
        _check_choice(name, "pool_kind", pool_kind, POOL_KINDS)
        _check_choice(name, "time_summary", time_summary, TIME_SUMMARIES)
        filters, kernels, pools = normalize_blocks(name, 2, filters, kernel_sizes, pool_sizes)
        validate_sizes(name, "head_sizes", head_sizes)
        validate_dropouts(name, {"conv_dropout": conv_dropout, "head_dropout": head_dropout})
        bands = plan_axis(
            name,
            "band(s)",
            "num_features",
            num_features,
            [k[1] for k in kernels],
            [p[1] for p in pools],
            padding,
            ceil=False,
            axis=1,
        )
        step_features = bands * filters[-1]
        if time_summary == "flatten":
            _check_positive(name, num_frames=num_frames)
            steps = plan_axis(
                name,
                "frame(s)",
                "num_frames",
                num_frames,
                [k[0] for k in kernels],
                [p[0] for p in pools],
                padding,
                ceil=True,
                axis=0,
            )
            head_in = steps * step_features
        else:
            head_in = step_features
        self.model_name = name
        self.num_features = num_features
        self.num_frames = num_frames
        self.time_summary = time_summary
        self.blocks = _build_blocks(
            1,
            filters,
            kernels,
            pools,
            padding=padding,
            activation=activation,
            batch_norm=batch_norm,
            dropout=conv_dropout,
            pool_kind=pool_kind,
            pool_before_activation=True,
            rngs=rngs,
        )
        self.head = MLPHead(head_in, head_sizes, num_classes, dropout=head_dropout, rngs=rngs)

    def __call__(self, x: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
        """``x: [B, T, F]``, ``lengths: [B]`` valid frames -> logits ``[B, num_classes]``.

        With ``time_summary="flatten"``, ``T`` must be at most ``num_frames``.
        """
        check_input(x, self.num_features, self.model_name)
        b, t, _ = x.shape
        lengths = normalize_lengths(lengths, b, t)
        if self.time_summary == "flatten":
            if t > self.num_frames:
                raise ValueError(
                    f"{self.model_name}: input has {t} frames but the flattened head was built "
                    f"for num_frames={self.num_frames}; build the model with "
                    f"num_frames>={t} or time_summary='mean'"
                )
            x = jnp.pad(x, [(0, 0), (0, self.num_frames - t), (0, 0)])
        h = x[..., None]
        for block in self.blocks:
            h, lengths = block(h, lengths)
        h = h.reshape(b, h.shape[1], -1)
        if self.time_summary == "flatten":
            return self.head(h.reshape(b, -1))
        return self.head(masked_mean(h, lengths))
