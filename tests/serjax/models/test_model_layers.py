"""Length-aware pooling, conv blocks, attention and masked batch norm against references."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from serjax.models.layers import (
    AdditiveAttention,
    ConvBlock,
    masked_mean,
    pool,
    statistics_pooling,
)

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


@nnx.jit
def _run(module, *args):
    return module(*args)


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


def _conv_block_reference(block: ConvBlock, x: np.ndarray) -> np.ndarray:
    """NumPy conv (XLA's SAME/VALID) -> eval batch norm -> ELU -> max pool on one example."""
    w = np.asarray(block.conv.kernel[...])
    kt, kf = w.shape[:2]
    if block.padding == "SAME":
        x = np.pad(x, [((kt - 1) // 2, kt // 2), ((kf - 1) // 2, kf // 2), (0, 0)])
    n_t, n_f = x.shape[0] - kt + 1, x.shape[1] - kf + 1
    y = np.zeros((n_t, n_f, w.shape[-1]), np.float32)
    for t in range(n_t):
        for f in range(n_f):
            y[t, f] = np.einsum("abc,abcd->d", x[t : t + kt, f : f + kf], w)
    y = y + np.asarray(block.conv.bias[...])
    norm = block.norm
    y = (y - np.asarray(norm.mean[...])) / np.sqrt(np.asarray(norm.var[...]) + norm.epsilon)
    y = y * np.asarray(norm.scale[...]) + np.asarray(norm.bias[...])
    y = np.where(y > 0, y, np.expm1(np.minimum(y, 0)))
    return _pool_reference(y, n_t, block.pool_size, "max")


@pytest.mark.parametrize(
    ("padding", "kernel"), [("SAME", (3, 3)), ("VALID", (3, 2)), ("SAME", (2, 2))]
)
def test_conv_block_on_padded_batch_equals_unpadded_examples(padding, kernel):
    """Each row of a padded batch equals the block applied to exactly its valid frames."""
    block = ConvBlock(
        1, 3, kernel, pool_size=(2, 2), padding=padding, activation="elu", rngs=nnx.Rngs(0)
    )
    # Non-trivial running statistics, so eval-mode batch norm is not the identity.
    rng = np.random.default_rng(1)
    block.norm.mean[...] = jnp.asarray(rng.normal(size=3), jnp.float32)
    block.norm.var[...] = jnp.asarray(1.0 + rng.uniform(size=3), jnp.float32)
    block.eval()
    lengths = np.array([9, 7, 4, 3])
    x = rng.normal(size=(4, 9, 6, 1)).astype(np.float32)
    x_garbage = np.where(np.arange(9)[None, :, None, None] < lengths[:, None, None, None], x, 9.0)
    y, out_lengths = _run(block, jnp.asarray(x_garbage), jnp.asarray(lengths))
    for b, length in enumerate(lengths):
        ref = _conv_block_reference(block, x[b, :length])
        assert int(out_lengths[b]) == ref.shape[0]
        np.testing.assert_allclose(y[b, : ref.shape[0]], ref, rtol=1e-4, atol=1e-5)
        assert np.all(np.asarray(y[b, ref.shape[0] :]) == 0.0)


def test_conv_block_batch_statistics_ignore_padding():
    block = ConvBlock(1, 4, (3,), pool_size=(2,), rngs=nnx.Rngs(0))
    block.train()
    rng = np.random.default_rng(2)
    lengths = np.array([8, 5, 2])
    valid = np.arange(8)[None, :, None] < lengths[:, None, None]
    x = np.where(valid, rng.normal(size=(3, 8, 1)), 50.0).astype(np.float32)
    more = np.concatenate([x, np.full((3, 6, 1), -50.0, np.float32)], axis=1)
    y1, _ = _run(block, jnp.asarray(x), jnp.asarray(lengths))
    mean1 = np.asarray(block.norm.mean[...])
    y2, _ = _run(block, jnp.asarray(more), jnp.asarray(lengths))
    np.testing.assert_allclose(y1, y2[:, : y1.shape[1]], atol=1e-5)
    # The batch mean of the SAME convolution over the valid frames only.
    w = np.asarray(block.conv.kernel[...])[:, 0, :]  # [3, 4]
    xs = np.pad(np.where(valid, x, 0.0)[..., 0], ((0, 0), (1, 1)))
    conv = sum(xs[:, k : k + 8, None] * w[k] for k in range(3)) + np.asarray(block.conv.bias)
    valid_mean = conv[valid[..., 0]].mean(axis=0)
    # Running mean after one and after two identical updates from zero.
    np.testing.assert_allclose(mean1, 0.01 * valid_mean, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(block.norm.mean[...], (1 - 0.99**2) * valid_mean, rtol=1e-4)


def test_additive_attention_matches_hand_computation():
    att = AdditiveAttention(8, 4, rngs=nnx.Rngs(0))
    h = np.random.default_rng(4).normal(size=(2, 5, 8)).astype(np.float32)
    lengths = [5, 2]
    out = _run(att, jnp.asarray(h), jnp.asarray(lengths))
    w, b = np.asarray(att.proj.kernel[...]), np.asarray(att.proj.bias[...])
    v = np.asarray(att.score.kernel[...])[:, 0]
    for i, length in enumerate(lengths):
        hv = h[i, :length]
        scores = np.tanh(hv @ w + b) @ v
        alpha = np.exp(scores - scores.max())
        alpha /= alpha.sum()
        np.testing.assert_allclose(out[i], alpha @ hv, rtol=1e-5, atol=1e-6)


def test_masked_mean_and_empty_rows():
    h = jnp.arange(12.0).reshape(2, 3, 2)
    out = masked_mean(h, jnp.asarray([2, 0]))
    np.testing.assert_allclose(out, [[1.0, 2.0], [0.0, 0.0]])


def test_statistics_pooling_is_mean_and_deviation_of_the_valid_steps():
    rng = np.random.default_rng(5)
    h = rng.normal(size=(4, 9, 3)).astype(np.float32)
    # Garbage past each length must not reach the statistics.
    h = np.where(np.arange(9)[None, :, None] >= LENGTHS[:, None, None], 1e3, h)
    out = np.asarray(statistics_pooling(jnp.asarray(h), jnp.asarray(LENGTHS)))
    assert out.shape == (4, 6)
    for b, length in enumerate(LENGTHS[:3]):
        valid = h[b, :length]
        np.testing.assert_allclose(out[b, :3], valid.mean(0), rtol=1e-5, atol=1e-6)
        # Population deviation (ddof 0), as numpy's default; 1e-4 is the epsilon's sqrt.
        np.testing.assert_allclose(out[b, 3:], valid.std(0), rtol=1e-4, atol=2e-4)
    np.testing.assert_allclose(out[3], [0, 0, 0, 1e-4, 1e-4, 1e-4], atol=1e-7)
