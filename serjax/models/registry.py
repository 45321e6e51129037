"""Registry: one :class:`ModelSpec` row per model name, the single home of its defaults.

A row names the model class, the class arguments that make the name what it is (``fixed``:
the cell, the convolution dimensions, the pool kind) and every other argument with its
reference value (``defaults``, the hyper-parameters a config may override). The model
classes themselves have no hyper-parameter defaults. :func:`create_model` checks the name
and the hyper-parameter names before building anything, so a typo in a config fails with
the list of valid choices. The model list in :mod:`serjax.models`' docstring is
:func:`describe_models`' rendering of these rows.
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from flax import nnx

from serjax.models.convolutional import (
    ConvClassifier,
    ConvRecurrent,
    TimeDistributedConvRecurrent,
)
from serjax.models.functionals import FunctionalsClassifier
from serjax.models.recurrent import RecurrentClassifier

# Keyword arguments of every model class that are not hyper-parameters.
_BUILD_ARGUMENTS = ("name", "rngs")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    Attributes:
      cls: the model class, called as
        ``cls(num_features, num_classes, **fixed, **hparams, name=..., rngs=...)``.
      fixed: the keyword arguments of ``cls`` that define this name; not overridable.
      defaults: every other keyword argument of ``cls`` with its reference value, in the
        order of ``cls``'s signature (read-only).
      reproduces: the reference system (and variant) the defaults come from.
      doc: the architecture in a sentence or two, where a field ``{hparam}`` stands for the
        hyper-parameter and its default (see :meth:`describe`).

    Raises:
      ValueError: at construction, when ``fixed`` and ``defaults`` overlap or do not cover
        the keyword arguments of ``cls`` exactly (so a class and its row cannot drift apart).
    """

    cls: type[nnx.Module]
    fixed: Mapping[str, Any]
    defaults: Mapping[str, Any]
    reproduces: str
    doc: str

    def __post_init__(self) -> None:
        keywords = [
            p.name
            for p in inspect.signature(self.cls.__init__).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _BUILD_ARGUMENTS
        ]
        given = [*self.fixed, *self.defaults]
        if sorted(given) != sorted(keywords):
            raise ValueError(
                f"{self.cls.__name__} takes the keyword arguments {', '.join(keywords)}; "
                f"fixed and defaults must give each exactly once, got {', '.join(given)}"
            )
        ordered = {k: self.defaults[k] for k in keywords if k in self.defaults}
        object.__setattr__(self, "fixed", MappingProxyType(dict(self.fixed)))
        object.__setattr__(self, "defaults", MappingProxyType(ordered))

    def describe(self, space: str = " ") -> str:
        """``doc`` with each ``{hparam}`` written as ````hparam=default````.

        ``space`` replaces the spaces inside those literals (to keep them on one line when
        the text is wrapped).

        Raises:
          KeyError: ``doc`` names something that is not a hyper-parameter of this model.
        """
        literals = {k: f"``{k}={v!r}``".replace(" ", space) for k, v in self.defaults.items()}
        return self.doc.format_map(literals)


# Every recurrent model ends, by default, in its last valid output -> Dense(num_classes)
# (S1, S4); S2, S3 and S5 add hidden layers to the head.
_HEAD = {"head_sizes": (), "head_dropout": 0.0}
_TAIL = {"pooling": "last", "attention_size": 128, "output_dropout": 0.0, **_HEAD}
# S1: two layers, one dropout rate on the input frames and between the layers.
_S1_DROPOUT = 0.2
_S1 = {
    "hidden_sizes": (128, 128),
    "input_dropout": _S1_DROPOUT,
    "dropout": _S1_DROPOUT,
    **_TAIL,
}
# S4: four local feature learning blocks (LFLBs), then one LSTM.
_S4 = {
    "filters": (64, 64, 128, 128),
    "padding": "SAME",
    "activation": "elu",
    "batch_norm": True,
    "conv_dropout": 0.0,
    "bidirectional": False,
    "hidden_sizes": (256,),
    "dropout": 0.0,
    **_TAIL,
}
# S5 uses one dropout rate after the convolutions, between the BiLSTMs and in the head.
_S5_DROPOUT = 0.3

_RECURRENT_DOC = (
    "dropout {input_dropout} on the frames and {dropout} between the layers; utterance "
    "pooling {pooling}; head {head_sizes} -> Dense K."
)
_LFLB_DOC = (
    "blocks [conv -> batch norm -> activation -> max pool] with {filters}, {kernel_sizes}, "
    "{pool_sizes}, {padding}, {batch_norm}, {activation}"
)

MODEL_SPECS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        "rnn": ModelSpec(
            RecurrentClassifier,
            fixed={"cell": "rnn", "bidirectional": False},
            defaults=_S1,
            reproduces="S1, vanilla-cell variant",
            doc="Stacked tanh RNN layers {hidden_sizes}, " + _RECURRENT_DOC,
        ),
        "lstm": ModelSpec(
            RecurrentClassifier,
            fixed={"cell": "lstm", "bidirectional": False},
            defaults=_S1,
            reproduces="S1; S2 and S3 by overrides, below",
            doc="Stacked LSTM layers {hidden_sizes}, " + _RECURRENT_DOC,
        ),
        "bilstm": ModelSpec(
            RecurrentClassifier,
            fixed={"cell": "lstm", "bidirectional": True},
            defaults={**_S1, "hidden_sizes": (64, 64)},
            reproduces="S1, bidirectional variant",
            doc="Stacked BiLSTM layers {hidden_sizes} (units per direction; the last output "
            "is [forward last, backward last]), " + _RECURRENT_DOC,
        ),
        "cnn_lstm_2d": ModelSpec(
            ConvRecurrent,
            fixed={"conv_dims": 2, "pool_kind": "max"},
            defaults={
                **_S4,
                "kernel_sizes": ((3, 3), (3, 3), (3, 3), (3, 3)),
                "pool_sizes": ((2, 2), (4, 4), (4, 4), (4, 4)),
            },
            reproduces="S4, Zhao et al.'s 2D CNN-LSTM on the log-mel image",
            doc="2D " + _LFLB_DOC + "; LSTM {hidden_sizes}, {bidirectional}, pooling over time "
            "{pooling}; head {head_sizes} -> Dense K.",
        ),
        "cnn_lstm_2d_td": ModelSpec(
            TimeDistributedConvRecurrent,
            fixed={},
            defaults={
                **_S4,
                "chunk_frames": 5,
                "filters": (128, 128, 128, 128),
                "kernel_sizes": ((2, 2), (2, 2), (1, 2), (1, 2)),
                "pool_sizes": ((2, 2), (1, 2), (1, 2), (1, 2)),
                "padding": "VALID",
                "bidirectional": True,
                "hidden_sizes": (32,),
            },
            reproduces="S4, time-distributed 2D CNN-BiLSTM",
            doc="The frames cut into chunks of {chunk_frames}; on each chunk 2D "
            + _LFLB_DOC
            + "; over the chunks LSTM {hidden_sizes}, {bidirectional}, pooling over time "
            "{pooling}; head {head_sizes} -> Dense K. The defaults are read off the report's "
            "printed model summary (372,423 parameters, batch statistics included, on 128 mel "
            "bands and 7 classes).",
        ),
        "cnn_lstm_1d": ModelSpec(
            ConvRecurrent,
            fixed={"conv_dims": 1, "pool_kind": "max"},
            defaults={**_S4, "kernel_sizes": (3, 3, 3, 3), "pool_sizes": (4, 4, 4, 4)},
            reproduces="S4, 1D CNN-LSTM on the raw waveform, ``num_features=1``",
            doc="1D " + _LFLB_DOC + "; LSTM {hidden_sizes}, {bidirectional}, pooling over time "
            "{pooling}; head {head_sizes} -> Dense K.",
        ),
        "crnn": ModelSpec(
            ConvRecurrent,
            fixed={"conv_dims": 2, "pool_kind": "max"},
            defaults={
                **_TAIL,
                "filters": (32, 64),
                "kernel_sizes": ((3, 3), (3, 3)),
                "pool_sizes": ((2, 2), (2, 2)),
                "padding": "SAME",
                "activation": "relu",
                "batch_norm": True,
                "conv_dropout": _S5_DROPOUT,
                "bidirectional": True,
                "hidden_sizes": (128, 64),
                "dropout": _S5_DROPOUT,
                "pooling": "attention",
                "head_sizes": (64,),
                "head_dropout": _S5_DROPOUT,
            },
            reproduces="S5, CRNN",
            doc="2D blocks [conv -> batch norm -> activation -> dropout -> max pool] with "
            "{filters}, {kernel_sizes}, {pool_sizes}, {padding}, {batch_norm}, {activation}, "
            "{conv_dropout}; LSTM layers {hidden_sizes}, {bidirectional}, with {dropout} "
            "between them; pooling over time {pooling} ({attention_size} units); head "
            "{head_sizes} (ReLU) with {head_dropout} -> Dense K.",
        ),
        "cnn": ModelSpec(
            ConvClassifier,
            fixed={"pool_kind": "avg"},
            defaults={
                "filters": (32, 32, 32),
                "kernel_sizes": ((3, 10), (3, 3), (3, 3)),
                "pool_sizes": ((2, 2), (2, 2), (2, 2)),
                "padding": "VALID",
                "activation": "leaky_relu",
                "batch_norm": False,
                "conv_dropout": 0.5,
                "time_pooling": "flatten",
                "num_frames": 160,
                **_HEAD,
            },
            reproduces="S3, CNN on MFCC maps",
            doc="2D blocks [conv -> average pool -> activation -> dropout] with {filters}, "
            "{kernel_sizes}, {pool_sizes}, {padding}, {activation}, {batch_norm}, "
            "{conv_dropout}; the map of {num_frames} frames flattened ({time_pooling}); head "
            "{head_sizes} -> Dense K.",
        ),
        "functionals": ModelSpec(
            FunctionalsClassifier,
            fixed={},
            defaults={"hidden_sizes": ()},
            reproduces="serjax's own system, on ``features.kind='functionals'``",
            doc="One vector of utterance functionals per utterance, standardised with "
            "statistics the model keeps, then hidden ReLU layers {hidden_sizes} -> Dense K "
            "(without hidden layers: multinomial logistic regression). Fitted full-batch, its "
            "L2 chosen on the training speakers (serjax.fit_functionals).",
        ),
    }
)
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_SPECS)


def _spec(name: str) -> ModelSpec:
    try:
        return MODEL_SPECS[name]
    except KeyError:
        raise ValueError(
            f"unknown model name {name!r}; valid names: {', '.join(MODEL_NAMES)}"
        ) from None


def hparam_defaults(name: str) -> dict[str, Any]:
    """The hyper-parameters of model ``name`` with their default (reference) values.

    Raises:
      ValueError: unknown name (the message lists :data:`MODEL_NAMES`).
    """
    return dict(_spec(name).defaults)


def describe_models() -> str:
    """Every registered model as a reStructuredText definition list, in registry order.

    ``name`` (reproduces) on one line, the rendered :meth:`ModelSpec.describe` indented
    below; :mod:`serjax.models`' docstring holds this text.
    """
    glue = "\0"  # a space that textwrap does not break at
    entries = []
    for name, spec in MODEL_SPECS.items():
        body = textwrap.fill(
            spec.describe(space=glue),
            width=92,
            initial_indent="    ",
            subsequent_indent="    ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        entries.append(f"``{name}`` ({spec.reproduces})\n{body.replace(glue, ' ')}")
    return "\n\n".join(entries)


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
    spec = _spec(name)
    unknown = sorted(set(hparams) - set(spec.defaults))
    if unknown:
        raise ValueError(
            f"unknown hyper-parameter(s) {', '.join(unknown)} for model {name!r}; valid: "
            + ", ".join(f"{k}={v!r}" for k, v in spec.defaults.items())
        )
    hparams = {**spec.defaults, **{k: _freeze(v) for k, v in hparams.items()}}
    return spec.cls(
        int(num_features), int(num_classes), **spec.fixed, **hparams, name=name, rngs=rngs
    )
