"""Length-aware pooling, conv blocks, attention and masked batch norm against references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from serjax.models.layers import AdditiveAttention, ConvBlock, masked_mean, pool

LENGTHS = np.array([9, 5, 1, 0], np.int32)


def _pool_reference(x: np.ndarray, length: int, window: tuple[int, int], kind: str) -> np.ndarray:
    """One unpadded example ``[L, F, C]``: ceil windows along time, floor along features."""
    pt, pf = window
    n_t, n_f = -(-length // pt), x.shape[1] // pf
    out = np.zeros((n_t, n_f, x.shape[2]), np.float32)
    for t in range(n_t):
        for f in range(n_f):
            win = x[t * pt : min((t + 1) * pt, length), f * pf : (f + 1) * pf]
            out[t, f] = win.max(axis=(0, 1)) if kind == "max" else win.mean(axis=(0, 1))
    return out


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_matches_per_example_reference(kind):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 9, 7, 2)).astype(np.float32)
    y, new_lengths = pool(jnp.asarray(x), jnp.asarray(LENGTHS), (2, 3), kind)
    assert y.shape == (4, 5, 2, 2)
    np.testing.assert_array_equal(new_lengths, [5, 3, 1, 0])
    for b, length in enumerate(LENGTHS):
        ref = _pool_reference(x[b, :length], int(length), (2, 3), kind)
        np.testing.assert_allclose(y[b, : len(ref)], ref, rtol=1e-6)
        assert np.all(np.asarray(y[b, len(ref) :]) == 0.0)


@pytest.mark.parametrize(
    ("padding", "kernel"), [("SAME", (3, 3)), ("VALID", (3, 2)), ("SAME", (2, 2))]
)
def test_conv_block_on_padded_batch_equals_unpadded_examples(padding, kernel):
    """Each row of a padded batch equals the block run alone on exactly its valid frames."""
    block = ConvBlock(
        1, 3, kernel, pool_size=(2, 2), padding=padding, activation="elu", rngs=nnx.Rngs(0)
    )
    block.eval()
    x = jax.random.normal(jax.random.key(1), (4, 9, 6, 1))
    lengths = jnp.asarray([9, 7, 4, 3])
    y, out_lengths = block(x, lengths)
    for b in range(4):
        length = int(lengths[b])
        y_alone, n = block(x[b : b + 1, :length], jnp.asarray([length]))
        assert int(out_lengths[b]) == int(n[0]) == y_alone.shape[1]
        np.testing.assert_allclose(y[b, : int(n[0])], y_alone[0], atol=1e-5)
        assert np.all(np.asarray(y[b, int(n[0]) :]) == 0.0)


def test_conv_block_batch_statistics_ignore_padding():
    block = ConvBlock(2, 3, (3,), pool_size=(2,), rngs=nnx.Rngs(0))
    block.train()
    x = jax.random.normal(jax.random.key(2), (3, 8, 2))
    lengths = jnp.asarray([8, 5, 2])
    more = jnp.concatenate([x, 50.0 + jax.random.normal(jax.random.key(3), (3, 6, 2))], axis=1)
    y1, _ = block(x, lengths)
    mean1 = block.norm.mean[...]
    y2, _ = block(more, lengths)
    np.testing.assert_allclose(y1, y2[:, : y1.shape[1]], atol=1e-5)
    # Running mean after two identical updates from zero: (1 - 0.99^2) * batch mean.
    conv = block.conv(jnp.where((jnp.arange(8) < lengths[:, None])[..., None], x, 0.0))
    mask = (jnp.arange(8)[None, :] < lengths[:, None])[..., None]
    valid_mean = np.asarray(jnp.sum(conv * mask, axis=(0, 1)) / jnp.sum(lengths))
    np.testing.assert_allclose(mean1, 0.01 * valid_mean, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(block.norm.mean[...], (1 - 0.99**2) * valid_mean, rtol=1e-4)


def test_additive_attention_matches_hand_computation():
    att = AdditiveAttention(4, 3, rngs=nnx.Rngs(0))
    h = jax.random.normal(jax.random.key(4), (2, 5, 4))
    lengths = jnp.asarray([5, 2])
    out = att(h, lengths)
    w, b = np.asarray(att.proj.kernel[...]), np.asarray(att.proj.bias[...])
    v = np.asarray(att.score.kernel[...])[:, 0]
    for i, length in enumerate([5, 2]):
        hv = np.asarray(h[i, :length])
        scores = np.tanh(hv @ w + b) @ v
        alpha = np.exp(scores - scores.max())
        alpha /= alpha.sum()
        np.testing.assert_allclose(out[i], alpha @ hv, rtol=1e-5, atol=1e-6)


def test_masked_mean_and_empty_rows():
    h = jnp.arange(12.0).reshape(2, 3, 2)
    out = masked_mean(h, jnp.asarray([2, 0]))
    np.testing.assert_allclose(out, [[1.0, 2.0], [0.0, 0.0]])
