"""The scan-based recurrent layers against flax's own cells run by ``nnx.RNN``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from serjax.models.recurrent import (
    Bidirectional,
    LSTMLayer,
    SimpleRNNLayer,
    cudnn_lstm_weights,
    recurrent_layer,
    reverse_within_lengths,
)

B, T, D, H = 3, 7, 8, 4
LENGTHS = jnp.array([7, 4, 1], jnp.int32)
# The reference cells get the layer's weights copied in; their own init is irrelevant.
_ZERO_INIT = dict(
    kernel_init=nnx.initializers.zeros_init(), recurrent_kernel_init=nnx.initializers.zeros_init()
)


def _inputs() -> jax.Array:
    return jnp.asarray(np.random.default_rng(0).normal(size=(B, T, D)), jnp.float32)


@nnx.jit
def _run(layer, x, lengths):
    return layer(x, lengths)


@nnx.jit
def _run_rnn(rnn, x, lengths):
    return rnn(x, seq_lengths=lengths)


def _lstm_cell_with(layer: LSTMLayer) -> nnx.OptimizedLSTMCell:
    cell = nnx.OptimizedLSTMCell(D, H, **_ZERO_INIT, rngs=nnx.Rngs(1))
    cell.dense_i.kernel[...] = layer.kernel[...]
    cell.dense_h.kernel[...] = layer.recurrent_kernel[...]
    cell.dense_h.bias[...] = layer.bias[...]
    return cell


def _simple_cell_with(layer: SimpleRNNLayer) -> nnx.SimpleCell:
    cell = nnx.SimpleCell(D, H, **_ZERO_INIT, rngs=nnx.Rngs(1))
    cell.dense_i.kernel[...] = layer.kernel[...]
    cell.dense_i.bias[...] = layer.bias[...]
    cell.dense_h.kernel[...] = layer.recurrent_kernel[...]
    return cell


def _valid(y: jax.Array) -> np.ndarray:
    mask = np.arange(T)[None, :] < np.asarray(LENGTHS)[:, None]
    return np.asarray(y)[mask]


@pytest.mark.parametrize("reverse", [False, True])
def test_lstm_layer_matches_nnx_optimized_lstm_cell(reverse):
    layer = LSTMLayer(D, H, reverse=reverse, rngs=nnx.Rngs(0))
    rnn = nnx.RNN(_lstm_cell_with(layer), reverse=reverse, keep_order=True, return_carry=True)
    x = _inputs()
    y, last = _run(layer, x, LENGTHS)
    (_, h_ref), y_ref = _run_rnn(rnn, x, LENGTHS)
    np.testing.assert_allclose(_valid(y), _valid(y_ref), atol=1e-5)
    if reverse:
        # The backward direction ends at step 0 of the input.
        np.testing.assert_allclose(last, y_ref[:, 0], atol=1e-5)
    else:
        np.testing.assert_allclose(last, h_ref, atol=1e-5)
    padded = np.arange(T)[None, :] >= np.asarray(LENGTHS)[:, None]
    assert np.all(np.asarray(y)[padded] == 0.0)


@pytest.mark.parametrize("reverse", [False, True])
def test_simple_rnn_layer_matches_nnx_simple_cell(reverse):
    layer = SimpleRNNLayer(D, H, reverse=reverse, rngs=nnx.Rngs(0))
    rnn = nnx.RNN(_simple_cell_with(layer), reverse=reverse, keep_order=True, return_carry=True)
    x = _inputs()
    y, last = _run(layer, x, LENGTHS)
    h_ref, y_ref = _run_rnn(rnn, x, LENGTHS)
    np.testing.assert_allclose(_valid(y), _valid(y_ref), atol=1e-5)
    np.testing.assert_allclose(last, y_ref[:, 0] if reverse else h_ref, atol=1e-5)


def test_bidirectional_matches_nnx_bidirectional():
    layer = Bidirectional("lstm", D, H, rngs=nnx.Rngs(0))
    ref = nnx.Bidirectional(
        nnx.RNN(_lstm_cell_with(layer.forward)), nnx.RNN(_lstm_cell_with(layer.backward))
    )
    x = _inputs()
    y, last = _run(layer, x, LENGTHS)
    y_ref = _run_rnn(ref, x, LENGTHS)
    np.testing.assert_allclose(_valid(y), _valid(y_ref), atol=1e-5)
    assert last.shape == (B, 2 * H)


def test_lstm_parameter_count_and_forget_bias_are_keras():
    layer = LSTMLayer(D, H, rngs=nnx.Rngs(0))
    n = sum(p.size for p in jax.tree.leaves(nnx.state(layer, nnx.Param)))
    assert n == 4 * H * (D + H + 1)
    np.testing.assert_array_equal(layer.bias[H : 2 * H], 1.0)
    np.testing.assert_array_equal(layer.bias[:H], 0.0)
    np.testing.assert_array_equal(layer.bias[2 * H :], 0.0)


def test_reverse_within_lengths_keeps_padding_in_place():
    x = jnp.array([[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9]])
    out = reverse_within_lengths(x, jnp.array([3, 2, 4]))
    np.testing.assert_array_equal(out, [[3, 2, 1, 0], [5, 4, 0, 0], [9, 8, 7, 6]])


def test_padding_garbage_does_not_reach_the_backward_direction():
    layer = Bidirectional("lstm", D, H, rngs=nnx.Rngs(0))
    x = _inputs()
    garbage = jnp.where(
        (jnp.arange(T)[None, :] >= LENGTHS[:, None])[..., None], 1e3, x
    )  # huge values in the padding only
    y1, last1 = _run(layer, x, LENGTHS)
    y2, last2 = _run(layer, garbage, LENGTHS)
    np.testing.assert_allclose(y1, y2, atol=1e-6)
    np.testing.assert_allclose(last1, last2, atol=1e-6)


def test_cudnn_weight_layout_runs_the_layer_in_jax_reference_lstm():
    # jax.experimental.rnn.lstm_ref is the CPU reference of the cuDNN kernel that
    # cudnn_lstm_layer calls on a GPU: the packed weights must unpack to the same LSTM.
    from jax.experimental import rnn

    layer = LSTMLayer(D, H, rngs=nnx.Rngs(0))
    layer.bias[...] = jax.random.normal(jax.random.key(1), (4 * H,))
    params = (layer.kernel[...], layer.recurrent_kernel[...], layer.bias[...])
    weights = cudnn_lstm_weights(*params)
    assert weights.shape == (rnn.get_num_params_in_lstm(D, H, 1, False),)
    w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, D, H, 1, False)
    np.testing.assert_array_equal(w_ih[0], params[0].T)
    np.testing.assert_array_equal(w_hh[0], params[1].T)

    x, zeros = _inputs(), jnp.zeros((1, B, H))
    ys_ref, h_ref, _ = rnn.lstm_ref(
        x, zeros, zeros, w_ih, w_hh, b_ih, b_hh, LENGTHS, D, H, 1, 0.0, False
    )
    ys, last = recurrent_layer(x, LENGTHS, *params, cell="lstm", reverse=False)
    np.testing.assert_allclose(_valid(ys), _valid(ys_ref), atol=1e-5)
    np.testing.assert_allclose(last, h_ref[0], atol=1e-5)
