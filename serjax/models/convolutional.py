"""Convolutional families: CNN-LSTM in 1D and 2D (S4), time-distributed CNN-LSTM (S4), CRNN
(S5) and the plain CNN on MFCC maps (S3).

2D models read the features ``[B, T, F]`` as a one-channel image with time as the first
spatial axis and the feature (mel band / cepstral coefficient) axis as the second, so a
kernel or pool written ``(kt, kf)`` is (time, feature). 1D models read ``[B, T, D]`` as a
``D``-channel signal (``D = 1`` for a raw waveform). Lengths are propagated through every
convolution and pooling (see :mod:`serjax.models.layers`), so the recurrent layers and the
summaries mask exactly the steps that come from real frames.

The block stacks are checked and sized by :mod:`serjax.models.conv_stack`; the recurrent
models end in :class:`~serjax.models.recurrent.RecurrentTail`. The classes take every
hyper-parameter explicitly: each model's reference values are its row of
:mod:`serjax.models.registry`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

import dsp
from serjax.models.conv_stack import (
    build_blocks,
    normalize_blocks,
    plan_axis,
)
from serjax.models.layers import (
    ACTIVATIONS,
    PADDINGS,
    POOL_KINDS,
    MLPHead,
    check_input,
    masked_mean,
    normalize_lengths,
    statistics_pooling,
    zero_padding,
)
from serjax.models.recurrent import (
    RecurrentTail,
    validate_dropouts,
    validate_recurrent,
    validate_sizes,
)
from serjax.validation import one_of, positive

TIME_POOLINGS = ("flatten", "mean", "stats")


class ConvRecurrent(RecurrentTail):
    """Conv blocks -> recurrent stack -> pooling -> head (S4's 1D/2D CNN-LSTM, S5's CRNN).

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
        padding: str,
        activation: str,
        batch_norm: bool,
        conv_dropout: float,
        pool_kind: str,
        bidirectional: bool,
        hidden_sizes: Sequence[int],
        dropout: float,
        pooling: str,
        attention_size: int,
        output_dropout: float,
        head_sizes: Sequence[int],
        head_dropout: float,
        name: str = "conv_recurrent",
        rngs: nnx.Rngs,
    ):
        positive(name, num_features=num_features, num_classes=num_classes)
        one_of("padding", padding, PADDINGS, owner=name)
        one_of("activation", activation, tuple(ACTIVATIONS), owner=name)
        one_of("pool_kind", pool_kind, POOL_KINDS, owner=name)
        if conv_dims not in (1, 2):
            raise ValueError(f"{name}: conv_dims must be 1 or 2, got {conv_dims}")
        filters, kernels, pools = normalize_blocks(
            name, conv_dims, filters, kernel_sizes, pool_sizes
        )
        validate_recurrent(
            name,
            hidden_sizes=hidden_sizes,
            pooling=pooling,
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
        self.blocks = build_blocks(
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
        self.build_tail(
            step_features,
            num_classes,
            cell="lstm",
            bidirectional=bidirectional,
            hidden_sizes=hidden_sizes,
            dropout=dropout,
            pooling=pooling,
            attention_size=attention_size,
            output_dropout=output_dropout,
            head_sizes=head_sizes,
            head_dropout=head_dropout,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
        """``x: [B, T, D]``, ``lengths: [B]`` valid steps -> logits ``[B, num_classes]``."""
        check_input(x, self.num_features, self.model_name)
        lengths = normalize_lengths(lengths, x.shape[0], x.shape[1])
        h = x[..., None] if self.conv_dims == 2 else x
        for block in self.blocks:
            h, lengths = block(h, lengths)
        return self.classify(h.reshape(h.shape[0], h.shape[1], -1), lengths)


class TimeDistributedConvRecurrent(RecurrentTail):
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
        padding: str,
        activation: str,
        batch_norm: bool,
        conv_dropout: float,
        bidirectional: bool,
        hidden_sizes: Sequence[int],
        dropout: float,
        pooling: str,
        attention_size: int,
        output_dropout: float,
        head_sizes: Sequence[int],
        head_dropout: float,
        name: str = "time_distributed",
        rngs: nnx.Rngs,
    ):
        positive(
            name, num_features=num_features, num_classes=num_classes, chunk_frames=chunk_frames
        )
        one_of("padding", padding, PADDINGS, owner=name)
        one_of("activation", activation, tuple(ACTIVATIONS), owner=name)
        filters, kernels, pools = normalize_blocks(name, 2, filters, kernel_sizes, pool_sizes)
        validate_recurrent(
            name,
            hidden_sizes=hidden_sizes,
            pooling=pooling,
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
        self.blocks = build_blocks(
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
        self.build_tail(
            steps * bands * filters[-1],
            num_classes,
            cell="lstm",
            bidirectional=bidirectional,
            hidden_sizes=hidden_sizes,
            dropout=dropout,
            pooling=pooling,
            attention_size=attention_size,
            output_dropout=output_dropout,
            head_sizes=head_sizes,
            head_dropout=head_dropout,
            rngs=rngs,
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
        row_lengths = jnp.where(dsp.frame_mask(chunk_lengths, n), self.chunk_frames, 0).reshape(-1)
        for block in self.blocks:
            chunks, row_lengths = block(chunks, row_lengths)
        return self.classify(chunks.reshape(b, n, -1), chunk_lengths)


class ConvClassifier(nnx.Module):
    """2D CNN on a feature map, then a dense head (S3's CNN on MFCC maps).

    Blocks: conv -> [BN] -> pool -> act -> dropout (pooling before the activation, as S3
    describes). ``time_pooling="flatten"`` flattens the whole ``[T', F', C]`` map of a
    ``num_frames``-frame input (shorter inputs are zero-padded up to it, as S3 pads every
    map to the longest file; positions past an utterance's valid length are zero in the
    flattened vector); ``"mean"`` averages the valid steps instead and accepts any length;
    ``"stats"`` concatenates their mean and standard deviation
    (:func:`~serjax.models.layers.statistics_pooling`).
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        *,
        filters: Sequence[int],
        kernel_sizes: Sequence[int | Sequence[int]],
        pool_sizes: Sequence[int | Sequence[int]],
        padding: str,
        activation: str,
        batch_norm: bool,
        conv_dropout: float,
        pool_kind: str,
        time_pooling: str,
        num_frames: int,
        head_sizes: Sequence[int],
        head_dropout: float,
        name: str = "cnn",
        rngs: nnx.Rngs,
    ):
        positive(name, num_features=num_features, num_classes=num_classes)
        one_of("padding", padding, PADDINGS, owner=name)
        one_of("activation", activation, tuple(ACTIVATIONS), owner=name)
        one_of("pool_kind", pool_kind, POOL_KINDS, owner=name)
        one_of("time_pooling", time_pooling, TIME_POOLINGS, owner=name)
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
        if time_pooling == "flatten":
            positive(name, num_frames=num_frames)
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
            head_in = 2 * step_features if time_pooling == "stats" else step_features
        self.model_name = name
        self.num_features = num_features
        self.num_frames = num_frames
        self.time_pooling = time_pooling
        self.blocks = build_blocks(
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

        With ``time_pooling="flatten"``, ``T`` must be at most ``num_frames``.
        """
        check_input(x, self.num_features, self.model_name)
        b, t, _ = x.shape
        lengths = normalize_lengths(lengths, b, t)
        if self.time_pooling == "flatten":
            if t > self.num_frames:
                raise ValueError(
                    f"{self.model_name}: input has {t} frames but the flattened head was built "
                    f"for num_frames={self.num_frames}; build the model with "
                    f"num_frames>={t} or time_pooling='mean'"
                )
            x = jnp.pad(x, [(0, 0), (0, self.num_frames - t), (0, 0)])
        h = x[..., None]
        for block in self.blocks:
            h, lengths = block(h, lengths)
        h = h.reshape(b, h.shape[1], -1)
        if self.time_pooling == "flatten":
            return self.head(h.reshape(b, -1))
        if self.time_pooling == "stats":
            return self.head(statistics_pooling(h, lengths))
        return self.head(masked_mean(h, lengths))
