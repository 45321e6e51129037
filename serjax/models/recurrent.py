"""Recurrent layers over padded batches, and the recurrent stack classifiers (S1, S2, S3).

The layers are written directly on ``jax.lax.scan`` rather than through ``nnx.RNN`` for two
reasons: the input projection of all time steps is one large matmul outside the loop, which
leaves only the ``h @ U`` product inside the sequential part, and the carry is frozen past
each sequence's length, so the final carry *is* the last valid output. Parameters follow
Keras exactly (one bias per gate, gate order i, f, g, o, Glorot-uniform input kernel,
orthogonal recurrent kernel, forget-gate bias 1), so the parameter counts of the reference
systems are reproduced; the same weights loaded into ``nnx.OptimizedLSTMCell`` give the
same outputs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

import dsp
from serjax.models.layers import (
    KERNEL_INIT,
    POOLINGS,
    RECURRENT_INIT,
    AdditiveAttention,
    MLPHead,
    check_input,
    masked_mean,
    normalize_lengths,
    statistics_pooling,
)
from serjax.validation import one_of, positive

CELLS = ("rnn", "lstm")

Carry = tuple[jax.Array, ...]
Step = Callable[[Carry, jax.Array], tuple[Carry, jax.Array]]


def reverse_within_lengths(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Reverses ``x: [B, T, ...]`` along time inside each row's valid prefix.

    Padded steps stay where they are, so the reversed sequence still starts with a valid
    step and the backward direction never reads padding before real frames. The map is
    its own inverse.
    """
    t = jnp.arange(x.shape[1])[None, :]
    idx = jnp.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    idx = idx.reshape(idx.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, idx, axis=1)


def _masked_scan(
    step: Step,
    carry: Carry,
    inputs: jax.Array,
    lengths: jax.Array,
) -> tuple[jax.Array, Carry]:
    """Runs ``step`` over time-major ``inputs: [T, B, G]``; returns outputs ``[T, B, H]`` and
    the carry.

    Past a row's length the carry is frozen and the output is zero.
    """
    mask = dsp.frame_mask(lengths, inputs.shape[0]).T

    def body(carry: Carry, inputs: tuple[jax.Array, jax.Array]) -> tuple[Carry, jax.Array]:
        x_t, valid = inputs
        valid = valid[:, None]
        new_carry, h = step(carry, x_t)
        carry = tuple(jnp.where(valid, n, o) for n, o in zip(new_carry, carry, strict=True))
        return carry, jnp.where(valid, h, 0.0)

    carry, ys = jax.lax.scan(body, carry, (inputs, mask))
    return ys, carry


def _lstm_step(u: jax.Array, b: jax.Array, carry: Carry, xw: jax.Array) -> tuple[Carry, jax.Array]:
    c, h = carry
    i, f, g, o = jnp.split(xw + b + h @ u, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h


def _rnn_step(u: jax.Array, b: jax.Array, carry: Carry, xw: jax.Array) -> tuple[Carry, jax.Array]:
    h = jnp.tanh(xw + b + carry[0] @ u)
    return (h,), h


_STEPS = {"lstm": (_lstm_step, 2), "rnn": (_rnn_step, 1)}


@functools.partial(jax.jit, static_argnames=("cell", "reverse"))
def recurrent_layer(
    x: jax.Array,
    lengths: jax.Array,
    kernel: jax.Array,
    recurrent_kernel: jax.Array,
    bias: jax.Array,
    *,
    cell: str,
    reverse: bool,
) -> tuple[jax.Array, jax.Array]:
    """One recurrent direction as a pure function (compiled as a unit even when run eagerly).

    Args:
      x: ``[B, T, D]`` inputs; lengths: ``[B]`` valid steps.
      kernel: ``[D, G]``; recurrent_kernel: ``[H, G]``; bias: ``[G]``, with ``G = 4H`` for
        "lstm" (gates i, f, g, o) and ``G = H`` for "rnn".

    Returns:
      Outputs ``[B, T, H]`` (zero on padded steps, input order) and the last valid output
      ``[B, H]`` (for ``reverse=True`` the state after reading back to step 0).
    """
    step, carries = _STEPS[cell]
    if reverse:  # permuting the steps of x permutes their projections alike
        x = reverse_within_lengths(x, lengths)
    # The input projection of every step is one matmul outside the sequential loop, made
    # time-major by transposing x (D wide) rather than the projection (G wide), and the bias
    # is added inside the loop, where it fuses with the gates instead of costing a pass over
    # [T, B, G]; the sums are the same, in the same order, as x @ kernel + bias + h @ U.
    xw = jnp.swapaxes(x, 0, 1) @ kernel
    zeros = jnp.zeros((x.shape[0], recurrent_kernel.shape[0]), xw.dtype)
    ys, carry = _masked_scan(
        functools.partial(step, recurrent_kernel, bias), (zeros,) * carries, xw, lengths
    )
    ys = jnp.swapaxes(ys, 0, 1)
    if reverse:
        ys = reverse_within_lengths(ys, lengths)
    return ys, carry[-1]


def cudnn_lstm_weights(
    kernel: jax.Array, recurrent_kernel: jax.Array, bias: jax.Array
) -> jax.Array:
    """Packs one LSTM direction into cuDNN's flat weight vector (``jax.experimental.rnn``).

    cuDNN (like ``torch.nn.LSTM``) keeps ``W_ih [4H, D]``, ``W_hh [4H, H]``, then ``b_ih`` and
    ``b_hh [4H]``, gates in the order i, f, g, o as here; serjax's single bias goes in ``b_ih``
    and ``b_hh`` is zero. Returns ``[4H (D + H + 2)]``.
    """
    return jnp.concatenate(
        [kernel.T.ravel(), recurrent_kernel.T.ravel(), bias, jnp.zeros_like(bias)]
    )


@functools.partial(jax.jit, static_argnames=("reverse",))
def cudnn_lstm_layer(
    x: jax.Array,
    lengths: jax.Array,
    kernel: jax.Array,
    recurrent_kernel: jax.Array,
    bias: jax.Array,
    *,
    reverse: bool,
) -> tuple[jax.Array, jax.Array]:
    """:func:`recurrent_layer` for ``cell="lstm"`` through cuDNN (NVIDIA GPUs only).

    Same arguments, results and padding convention; ``jax.experimental.rnn.lstm`` runs the
    whole sequence in cuDNN's fused kernels instead of one ``lax.scan`` step per frame. On
    other backends XLA has no lowering for it and compilation fails.
    """
    from jax.experimental import rnn  # imported here: only GPU runs need it

    if reverse:
        x = reverse_within_lengths(x, lengths)
    hidden = recurrent_kernel.shape[0]
    zeros = jnp.zeros((1, x.shape[0], hidden), x.dtype)
    ys, h_n, _ = rnn.lstm(
        x,
        zeros,
        zeros,
        cudnn_lstm_weights(kernel, recurrent_kernel, bias),
        lengths.astype(jnp.int32),
        input_size=x.shape[-1],
        hidden_size=hidden,
        num_layers=1,
        dropout=0.0,
        bidirectional=False,
    )
    ys = jnp.where(dsp.frame_mask(lengths, x.shape[1])[..., None], ys, 0.0)
    if reverse:
        ys = reverse_within_lengths(ys, lengths)
    return ys, h_n[0]


class LSTMLayer(nnx.Module):
    """One LSTM direction over a padded batch.

    ``z = x W + h U + b`` split into gates (i, f, g, o); ``c' = s(f) c + s(i) tanh(g)``,
    ``h' = s(o) tanh(c')``. ``4 * H * (D + H + 1)`` parameters, as in Keras.

    Attributes:
      kernel: ``[D, 4H]`` input kernel (``nnx.OptimizedLSTMCell.dense_i.kernel``).
      recurrent_kernel: ``[H, 4H]`` (``dense_h.kernel``).
      bias: ``[4H]`` (``dense_h.bias``).
    """

    def __init__(
        self, in_features: int, hidden_size: int, *, reverse: bool = False, rngs: nnx.Rngs
    ):
        self.hidden_size = hidden_size
        self.reverse = reverse
        self.kernel = nnx.Param(KERNEL_INIT(rngs.params(), (in_features, 4 * hidden_size)))
        self.recurrent_kernel = nnx.Param(
            RECURRENT_INIT(rngs.params(), (hidden_size, 4 * hidden_size))
        )
        # Forget-gate bias 1 (Keras' unit_forget_bias): gradients flow through c early on.
        bias = jnp.zeros((4 * hidden_size,)).at[hidden_size : 2 * hidden_size].set(1.0)
        self.bias = nnx.Param(bias)

    def __call__(self, x: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``x: [B, T, D]``, ``lengths: [B]`` -> (outputs ``[B, T, H]``, last valid ``[B, H]``).

        Outputs are zero on padded steps. For ``reverse=True`` the outputs are in input
        order and the "last" output is the one at step 0 (Keras' convention).
        """
        return recurrent_layer(
            x,
            lengths,
            self.kernel[...],
            self.recurrent_kernel[...],
            self.bias[...],
            cell="lstm",
            reverse=self.reverse,
        )


class SimpleRNNLayer(nnx.Module):
    """One vanilla (Elman) RNN direction: ``h' = tanh(x W + h U + b)``; ``H (D + H + 1)`` params.

    Attributes match ``nnx.SimpleCell``: ``kernel [D, H]`` (``dense_i.kernel``),
    ``recurrent_kernel [H, H]`` (``dense_h.kernel``), ``bias [H]`` (``dense_i.bias``).
    """

    def __init__(
        self, in_features: int, hidden_size: int, *, reverse: bool = False, rngs: nnx.Rngs
    ):
        self.hidden_size = hidden_size
        self.reverse = reverse
        self.kernel = nnx.Param(KERNEL_INIT(rngs.params(), (in_features, hidden_size)))
        self.recurrent_kernel = nnx.Param(RECURRENT_INIT(rngs.params(), (hidden_size, hidden_size)))
        self.bias = nnx.Param(jnp.zeros((hidden_size,)))

    def __call__(self, x: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``x: [B, T, D]``, ``lengths: [B]`` -> (outputs ``[B, T, H]``, last valid ``[B, H]``)."""
        return recurrent_layer(
            x,
            lengths,
            self.kernel[...],
            self.recurrent_kernel[...],
            self.bias[...],
            cell="rnn",
            reverse=self.reverse,
        )


_LAYERS = {"rnn": SimpleRNNLayer, "lstm": LSTMLayer}


class Bidirectional(nnx.Module):
    """Forward and backward layers of the same cell, outputs concatenated: ``[B, T, 2H]``.

    The backward layer reverses each sequence within its own length. Its "last" output is
    the state after reading the whole utterance backwards, as Keras' ``Bidirectional``.
    """

    def __init__(self, cell: str, in_features: int, hidden_size: int, *, rngs: nnx.Rngs):
        self.forward = _LAYERS[cell](in_features, hidden_size, rngs=rngs)
        self.backward = _LAYERS[cell](in_features, hidden_size, reverse=True, rngs=rngs)

    def __call__(self, x: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``x: [B, T, D]`` -> (outputs ``[B, T, 2H]``, last ``[B, 2H]`` = [fwd last, bwd last])."""
        yf, hf = self.forward(x, lengths)
        yb, hb = self.backward(x, lengths)
        return jnp.concatenate([yf, yb], -1), jnp.concatenate([hf, hb], -1)


class RecurrentEncoder(nnx.Module):
    """A stack of recurrent layers with dropout between them, then pooling over time.

    ``pooling``: "last" (last valid output; for a bidirectional top layer the forward
    last and the backward last, as Keras), "mean" (masked mean over time), "stats" (masked
    mean and standard deviation, :func:`~serjax.models.layers.statistics_pooling`; twice the
    width) or "attention" (additive attention over the valid steps).
    """

    def __init__(
        self,
        in_features: int,
        *,
        cell: str,
        hidden_sizes: Sequence[int],
        bidirectional: bool,
        dropout: float,
        pooling: str,
        attention_size: int,
        rngs: nnx.Rngs,
    ):
        self.pooling = pooling
        layers = []
        size = in_features
        for hidden in hidden_sizes:
            if bidirectional:
                layers.append(Bidirectional(cell, size, hidden, rngs=rngs))
                size = 2 * hidden
            else:
                layers.append(_LAYERS[cell](size, hidden, rngs=rngs))
                size = hidden
        self.layers = nnx.List(layers)
        self.dropouts = nnx.List([nnx.Dropout(dropout, rngs=rngs) for _ in hidden_sizes[1:]])
        self.out_features = 2 * size if pooling == "stats" else size
        self.attention = (
            AdditiveAttention(size, attention_size, rngs=rngs) if pooling == "attention" else None
        )

    def __call__(self, x: jax.Array, lengths: jax.Array) -> jax.Array:
        """``x: [B, T, D]``, ``lengths: [B]`` -> ``[B, out_features]``."""
        y, last = self.layers[0](x, lengths)
        for drop, layer in zip(self.dropouts, self.layers[1:], strict=True):
            y, last = layer(drop(y), lengths)
        if self.pooling == "last":
            return last
        if self.pooling == "mean":
            return masked_mean(y, lengths)
        if self.pooling == "stats":
            return statistics_pooling(y, lengths)
        return self.attention(y, lengths)


def validate_recurrent(
    model: str,
    *,
    hidden_sizes: Sequence[int],
    pooling: str,
    attention_size: int,
    head_sizes: Sequence[int],
    dropouts: dict[str, float],
) -> None:
    """Construction-time checks shared by every model with a recurrent part."""
    if len(hidden_sizes) == 0 or any(int(h) < 1 for h in hidden_sizes):
        raise ValueError(
            f"{model}: hidden_sizes must be a non-empty tuple of positive layer sizes, e.g. "
            f"(128, 128); got {tuple(hidden_sizes)}"
        )
    one_of("pooling", pooling, POOLINGS, owner=model)
    positive(model, attention_size=attention_size)
    validate_sizes(model, "head_sizes", head_sizes)
    validate_dropouts(model, dropouts)


def validate_sizes(model: str, name: str, sizes: Sequence[int]) -> None:
    """Every entry of a layer-size tuple is a positive integer."""
    if any(int(s) < 1 for s in sizes):
        raise ValueError(f"{model}: {name} must hold positive sizes, got {tuple(sizes)}")


def validate_dropouts(model: str, dropouts: dict[str, float]) -> None:
    """Dropout rates lie in [0, 1)."""
    for name, rate in dropouts.items():
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"{model}: {name} must be in [0, 1), got {rate}")


class RecurrentTail(nnx.Module):
    """Base of the models that end in recurrent stack -> pooling -> output dropout -> MLP head.

    :class:`RecurrentClassifier`, :class:`~serjax.models.convolutional.ConvRecurrent` and
    :class:`~serjax.models.convolutional.TimeDistributedConvRecurrent` differ only in what
    they feed this tail. Its parts are attributes of the model itself (``encoder``,
    ``output_dropout``, ``head``), not of a nested module, so every family's parameter
    paths read ``encoder/...`` and ``head/hidden/i/...``, ``head/out/...`` alike.
    """

    def build_tail(
        self,
        in_features: int,
        num_classes: int,
        *,
        cell: str,
        bidirectional: bool,
        hidden_sizes: Sequence[int],
        dropout: float,
        pooling: str,
        attention_size: int,
        output_dropout: float,
        head_sizes: Sequence[int],
        head_dropout: float,
        rngs: nnx.Rngs,
    ) -> None:
        """Creates the encoder, the output dropout and the head, in that order.

        nnx draws parameter keys in creation order, so a subclass calls this after
        creating everything that comes before the tail in its forward pass.
        """
        self.encoder = RecurrentEncoder(
            in_features,
            cell=cell,
            hidden_sizes=tuple(hidden_sizes),
            bidirectional=bidirectional,
            dropout=dropout,
            pooling=pooling,
            attention_size=attention_size,
            rngs=rngs,
        )
        self.output_dropout = nnx.Dropout(output_dropout, rngs=rngs)
        self.head = MLPHead(
            self.encoder.out_features, head_sizes, num_classes, dropout=head_dropout, rngs=rngs
        )

    def classify(self, steps: jax.Array, lengths: jax.Array) -> jax.Array:
        """``steps: [B, T, D]`` (``D = in_features``), ``lengths: [B]`` -> logits ``[B, K]``."""
        return self.head(self.output_dropout(self.encoder(steps, lengths)))


class RecurrentClassifier(RecurrentTail):
    """Recurrent stack -> pooling -> MLP head (S1, S2, S3's LSTM).

    input dropout -> layer 1 -> dropout -> layer 2 ... -> pooling -> output dropout -> head.
    ``x: [B, T, num_features]``, ``lengths: [B]`` -> logits ``[B, num_classes]``. The
    hyper-parameters have no defaults here: the registry
    (:func:`serjax.models.hparam_defaults`) holds each model's reference values.
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        *,
        cell: str,
        bidirectional: bool,
        hidden_sizes: Sequence[int],
        input_dropout: float,
        dropout: float,
        pooling: str,
        attention_size: int,
        output_dropout: float,
        head_sizes: Sequence[int],
        head_dropout: float,
        name: str = "recurrent",
        rngs: nnx.Rngs,
    ):
        one_of("cell", cell, CELLS, owner=name)
        positive(name, num_features=num_features, num_classes=num_classes)
        validate_recurrent(
            name,
            hidden_sizes=hidden_sizes,
            pooling=pooling,
            attention_size=attention_size,
            head_sizes=head_sizes,
            dropouts={
                "input_dropout": input_dropout,
                "dropout": dropout,
                "output_dropout": output_dropout,
                "head_dropout": head_dropout,
            },
        )
        self.model_name = name
        self.num_features = num_features
        self.input_dropout = nnx.Dropout(input_dropout, rngs=rngs)
        self.build_tail(
            num_features,
            num_classes,
            cell=cell,
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
        """``x: [B, T, D]`` features, ``lengths: [B]`` valid frames -> logits ``[B, K]``."""
        check_input(x, self.num_features, self.model_name)
        lengths = normalize_lengths(lengths, x.shape[0], x.shape[1])
        return self.classify(self.input_dropout(x), lengths)
