"""Registry: one constructor per model name, its keyword defaults = the reference system's values.

Every constructor takes ``num_features``, ``num_classes`` and ``rngs`` plus its own
hyper-parameters; :func:`create_model` checks the name and the hyper-parameter names before
building anything, so a typo in a config fails with the list of valid choices.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from flax import nnx

from serjax.models.convolutional import (
    ConvClassifier,
    ConvRecurrent,
    TimeDistributedConvRecurrent,
)
from serjax.models.recurrent import RecurrentClassifier

Sizes = Sequence[int]
Pairs = Sequence[int | Sequence[int]]


def rnn(
    *,
    num_features: int,
    num_classes: int,
    rngs: nnx.Rngs,
    hidden_sizes: Sizes = (128, 128),
    input_dropout: float = 0.2,
    dropout: float = 0.2,
    summary: str = "last",
    attention_size: int = 128,
    output_dropout: float = 0.0,
    head_sizes: Sizes = (),
    head_dropout: float = 0.0,
) -> RecurrentClassifier:
    """Vanilla tanh RNN stack (S1's "vanilla cells": 2 x 128, dropout 0.2, dense on last)."""
    return RecurrentClassifier(
        num_features,
        num_classes,
        cell="rnn",
        hidden_sizes=hidden_sizes,
        input_dropout=input_dropout,
        dropout=dropout,
        summary=summary,
        attention_size=attention_size,
        output_dropout=output_dropout,
        head_sizes=head_sizes,
        head_dropout=head_dropout,
        name="rnn",
        rngs=rngs,
    )


def lstm(
    *,
    num_features: int,
    num_classes: int,
    rngs: nnx.Rngs,
    hidden_sizes: Sizes = (128, 128),
    input_dropout: float = 0.2,
    dropout: float = 0.2,
    summary: str = "last",
    attention_size: int = 128,
    output_dropout: float = 0.0,
    head_sizes: Sizes = (),
    head_dropout: float = 0.0,
) -> RecurrentClassifier:
    """LSTM stack (S1: 2 x 128, dropout 0.2 on the input and between layers, dense on last)."""
    return RecurrentClassifier(
        num_features,
        num_classes,
        cell="lstm",
        hidden_sizes=hidden_sizes,
        input_dropout=input_dropout,
        dropout=dropout,
        summary=summary,
        attention_size=attention_size,
        output_dropout=output_dropout,
        head_sizes=head_sizes,
        head_dropout=head_dropout,
        name="lstm",
        rngs=rngs,
    )


def bilstm(
    *,
    num_features: int,
    num_classes: int,
    rngs: nnx.Rngs,
    hidden_sizes: Sizes = (64, 64),
    input_dropout: float = 0.2,
    dropout: float = 0.2,
    summary: str = "last",
    attention_size: int = 128,
    output_dropout: float = 0.0,
    head_sizes: Sizes = (),
    head_dropout: float = 0.0,
) -> RecurrentClassifier:
    """Bidirectional LSTM stack, sizes per direction (S1: 2 x 64)."""
    return RecurrentClassifier(
        num_features,
        num_classes,
        cell="lstm",
        bidirectional=True,
        hidden_sizes=hidden_sizes,
        input_dropout=input_dropout,
        dropout=dropout,
        summary=summary,
        attention_size=attention_size,
        output_dropout=output_dropout,
        head_sizes=head_sizes,
        head_dropout=head_dropout,
        name="bilstm",
        rngs=rngs,
    )


def cnn_lstm_2d(
    *,
    num_features: int,
    num_classes: int,
    rngs: nnx.Rngs,
    filters: Sizes = (64, 64, 128, 128),
    kernel_sizes: Pairs = ((3, 3), (3, 3), (3, 3), (3, 3)),
    pool_sizes: Pairs = ((2, 2), (4, 4), (4, 4), (4, 4)),
    padding: str = "SAME",
    activation: str = "elu",
    batch_norm: bool = True,
    conv_dropout: float = 0.0,
    bidirectional: bool = False,
    hidden_sizes: Sizes = (256,),
    dropout: float = 0.0,
    summary: str = "last",
    attention_size: int = 128,
    output_dropout: float = 0.0,
    head_sizes: Sizes = (),
    head_dropout: float = 0.0,
) -> ConvRecurrent:
    """S4's 2D CNN-LSTM after Zhao et al.: four LFLBs on the log-mel image, LSTM 256, dense."""
    return ConvRecurrent(
        num_features,
        num_classes,
        conv_dims=2,
        filters=filters,
        kernel_sizes=kernel_sizes,
        pool_sizes=pool_sizes,
        padding=padding,
        activation=activation,
        batch_norm=batch_norm,
        conv_dropout=conv_dropout,
        bidirectional=bidirectional,
        hidden_sizes=hidden_sizes,
        dropout=dropout,
        summary=summary,
        attention_size=attention_size,
        output_dropout=output_dropout,
        head_sizes=head_sizes,
        head_dropout=head_dropout,
        name="cnn_lstm_2d",
        rngs=rngs,
    )


def cnn_lstm_2d_td(
    *,
    num_features: int,
    num_classes: int,
    rngs: nnx.Rngs,
    chunk_frames: int = 5,
    filters: Sizes = (128, 128, 128, 128),
    kernel_sizes: Pairs = ((2, 2), (2, 2), (1, 2), (1, 2)),
    pool_sizes: Pairs = ((2, 2), (1, 2), (1, 2), (1, 2)),
    padding: str = "VALID",
    activation: str = "elu",
    batch_norm: bool = True,
    conv_dropout: float = 0.0,
    bidirectional: bool = True,
    hidden_sizes: Sizes = (32,),
    dropout: float = 0.0,
    summary: str = "last",
    attention_size: int = 128,
    output_dropout: float = 0.0,
    head_sizes: Sizes = (),
    head_dropout: float = 0.0,
) -> TimeDistributedConvRecurrent:
    """S4's time-distributed 2D CNN-BiLSTM: a CNN per 5-frame chunk, BiLSTM 32 per direction.

    The defaults are read off the report's printed model summary (372,423 parameters on 128
    mel bands and 7 classes); ``bidirectional=False`` gives its LSTM variant.
    """
    return TimeDistributedConvRecurrent(
        num_features,
        num_classes,
        chunk_frames=chunk_frames,
        filters=filters,
        kernel_sizes=kernel_sizes,
        pool_sizes=pool_sizes,
        padding=padding,
        activation=activation,
        batch_norm=batch_norm,
        conv_dropout=conv_dropout,
        bidirectional=bidirectional,
        hidden_sizes=hidden_sizes,
        dropout=dropout,
        summary=summary,
        attention_size=attention_size,
        output_dropout=output_dropout,
        head_sizes=head_sizes,
        head_dropout=head_dropout,
        name="cnn_lstm_2d_td",
        rngs=rngs,
    )


def cnn_lstm_1d(
    *,
    num_features: int,
    num_classes: int,
    rngs: nnx.Rngs,
    filters: Sizes = (64, 64, 128, 128),
    kernel_sizes: Pairs = (3, 3, 3, 3),
    pool_sizes: Pairs = (4, 4, 4, 4),
    padding: str = "SAME",
    activation: str = "elu",
    batch_norm: bool = True,
    conv_dropout: float = 0.0,
    bidirectional: bool = False,
    hidden_sizes: Sizes = (256,),
    dropout: float = 0.0,
    summary: str = "last",
    attention_size: int = 128,
    output_dropout: float = 0.0,
    head_sizes: Sizes = (),
    head_dropout: float = 0.0,
) -> ConvRecurrent:
    """S4's 1D CNN-LSTM on the raw waveform (``num_features=1``): four 1D LFLBs, LSTM 256."""
    return ConvRecurrent(
        num_features,
        num_classes,
        conv_dims=1,
        filters=filters,
        kernel_sizes=kernel_sizes,
        pool_sizes=pool_sizes,
        padding=padding,
        activation=activation,
        batch_norm=batch_norm,
        conv_dropout=conv_dropout,
        bidirectional=bidirectional,
        hidden_sizes=hidden_sizes,
        dropout=dropout,
        summary=summary,
        attention_size=attention_size,
        output_dropout=output_dropout,
        head_sizes=head_sizes,
        head_dropout=head_dropout,
        name="cnn_lstm_1d",
        rngs=rngs,
    )


def crnn(
    *,
    num_features: int,
    num_classes: int,
    rngs: nnx.Rngs,
    filters: Sizes = (32, 64),
    kernel_sizes: Pairs = ((3, 3), (3, 3)),
    pool_sizes: Pairs = ((2, 2), (2, 2)),
    padding: str = "SAME",
    activation: str = "relu",
    batch_norm: bool = True,
    conv_dropout: float = 0.3,
    bidirectional: bool = True,
    hidden_sizes: Sizes = (128, 64),
    dropout: float = 0.3,
    summary: str = "attention",
    attention_size: int = 128,
    output_dropout: float = 0.0,
    head_sizes: Sizes = (64,),
    head_dropout: float = 0.3,
) -> ConvRecurrent:
    """S5's CRNN: 2 conv blocks, BiLSTM 128 -> BiLSTM 64, attention, Dense 64, Dense K."""
    return ConvRecurrent(
        num_features,
        num_classes,
        conv_dims=2,
        filters=filters,
        kernel_sizes=kernel_sizes,
        pool_sizes=pool_sizes,
        padding=padding,
        activation=activation,
        batch_norm=batch_norm,
        conv_dropout=conv_dropout,
        bidirectional=bidirectional,
        hidden_sizes=hidden_sizes,
        dropout=dropout,
        summary=summary,
        attention_size=attention_size,
        output_dropout=output_dropout,
        head_sizes=head_sizes,
        head_dropout=head_dropout,
        name="crnn",
        rngs=rngs,
    )


def cnn(
    *,
    num_features: int,
    num_classes: int,
    rngs: nnx.Rngs,
    filters: Sizes = (32, 32, 32),
    kernel_sizes: Pairs = ((3, 10), (3, 3), (3, 3)),
    pool_sizes: Pairs = ((2, 2), (2, 2), (2, 2)),
    padding: str = "VALID",
    activation: str = "leaky_relu",
    batch_norm: bool = False,
    conv_dropout: float = 0.5,
    time_summary: str = "flatten",
    num_frames: int = 160,
    head_sizes: Sizes = (),
    head_dropout: float = 0.0,
) -> ConvClassifier:
    """S3's CNN on a 40 x 160 MFCC map: 3 conv (first 10 coefficients x 3 frames), avg pool."""
    return ConvClassifier(
        num_features,
        num_classes,
        filters=filters,
        kernel_sizes=kernel_sizes,
        pool_sizes=pool_sizes,
        padding=padding,
        activation=activation,
        batch_norm=batch_norm,
        conv_dropout=conv_dropout,
        pool_kind="avg",
        time_summary=time_summary,
        num_frames=num_frames,
        head_sizes=head_sizes,
        head_dropout=head_dropout,
        name="cnn",
        rngs=rngs,
    )


_REGISTRY: dict[str, Callable[..., nnx.Module]] = {
    "rnn": rnn,
    "lstm": lstm,
    "bilstm": bilstm,
    "cnn_lstm_2d": cnn_lstm_2d,
    "cnn_lstm_2d_td": cnn_lstm_2d_td,
    "cnn_lstm_1d": cnn_lstm_1d,
    "crnn": crnn,
    "cnn": cnn,
}
MODEL_NAMES: tuple[str, ...] = tuple(_REGISTRY)
_REQUIRED = ("num_features", "num_classes", "rngs")


def _constructor(name: str) -> Callable[..., nnx.Module]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model name {name!r}; valid names: {', '.join(MODEL_NAMES)}"
        ) from None


def hparam_defaults(name: str) -> dict[str, Any]:
    """The hyper-parameters of model ``name`` with their default (reference) values."""
    params = inspect.signature(_constructor(name)).parameters.values()
    return {p.name: p.default for p in params if p.name not in _REQUIRED}


def _freeze(value: Any) -> Any:
    """Lists (as configs give them) -> tuples, recursively, so every size is hashable."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def create_model(
    name: str, *, num_features: int, num_classes: int, rngs: nnx.Rngs, **hparams: Any
) -> nnx.Module:
    """Builds model ``name`` (one of :data:`MODEL_NAMES`).

    Args:
      name: registry name.
      num_features: ``D`` of the input ``x: [B, T, D]`` (1 for the raw-waveform 1D CNN).
      num_classes: ``K`` of the logits ``[B, K]``.
      rngs: parameter initialisation and the "dropout" stream used in training mode.
      **hparams: overrides of :func:`hparam_defaults` ``(name)``.

    Raises:
      ValueError: unknown name, unknown hyper-parameter, or sizes that cannot work.
    """
    constructor = _constructor(name)
    valid = hparam_defaults(name)
    unknown = sorted(set(hparams) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown hyper-parameter(s) {', '.join(unknown)} for model {name!r}; valid: "
            + ", ".join(f"{k}={v!r}" for k, v in valid.items())
        )
    hparams = {k: _freeze(v) for k, v in hparams.items()}
    return constructor(
        num_features=int(num_features), num_classes=int(num_classes), rngs=rngs, **hparams
    )
