"""Regression deltas against an independent NumPy regression and librosa.feature.delta."""

from __future__ import annotations

import jax.numpy as jnp
import librosa
import numpy as np
import pytest

import dsp


def _regression_delta(c: np.ndarray, n_width: int) -> np.ndarray:
    """HTK / torchaudio compute_deltas(mode="replicate"), frame by frame, frames on axis 0."""
    frames = c.shape[0]
    denominator = 2 * sum(n * n for n in range(1, n_width + 1))
    out = np.zeros_like(c)
    for t in range(frames):
        for n in range(1, n_width + 1):
            ahead = c[min(t + n, frames - 1)]
            behind = c[max(t - n, 0)]
            out[t] += n * (ahead - behind)
    return out / denominator


@pytest.mark.parametrize("width", [1, 3])
@pytest.mark.parametrize("frames", [1, 2, 40])  # fewer frames than the half-width, too
def test_delta_matches_replicate_edge_regression(x64, fast_jit, width, frames):
    c = np.random.default_rng(width).standard_normal((frames, 6))
    ours = fast_jit(lambda c: dsp.delta(c, width=width))(jnp.asarray(c))
    np.testing.assert_allclose(ours, _regression_delta(c, width), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("width", [1, 2, 4])
def test_delta_matches_librosa(x64, fast_jit, width):
    c = np.random.default_rng(0).standard_normal((50, 13))
    ours = np.asarray(fast_jit(lambda c: dsp.delta(c, width=width))(jnp.asarray(c)))
    # A first-order Savitzky-Golay derivative is the regression formula away from the edges...
    interp = librosa.feature.delta(c, width=2 * width + 1, axis=0, mode="interp")
    np.testing.assert_allclose(ours[width:-width], interp[width:-width], rtol=1e-9, atol=1e-12)
    # ...and with "nearest" extension librosa replicates the edges as well.
    nearest = librosa.feature.delta(c, width=2 * width + 1, axis=0, mode="nearest")
    np.testing.assert_allclose(ours, nearest, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("width", [1, 2, 3])
def test_delta_of_a_ramp_is_its_slope(width):
    ramp = 0.25 * np.arange(30, dtype=np.float32)[:, None] * np.array([1.0, -2.0], np.float32)
    d = dsp.delta(ramp, width=width)
    np.testing.assert_allclose(d[width:-width], np.broadcast_to([0.25, -0.5], (30 - 2 * width, 2)))
    # Replicated edges flatten the ramp there, so the slope shrinks at both ends.
    assert np.all(np.abs(d[0]) < np.array([0.25, 0.5]))


def test_delta_delta_is_the_delta_of_the_delta_with_its_own_width():
    c = np.random.default_rng(1).standard_normal((2, 20, 4)).astype(np.float32)
    stacked = dsp.stack_deltas(c, order=2, delta_width=1, delta_delta_width=2)
    assert stacked.shape == (2, 20, 12)
    first = np.stack([_regression_delta(example, 1) for example in c])
    second = np.stack([_regression_delta(example, 2) for example in first])
    np.testing.assert_allclose(stacked[..., :4], c)
    np.testing.assert_allclose(stacked[..., 4:8], first, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stacked[..., 8:], second, rtol=1e-5, atol=1e-6)
    assert dsp.stack_deltas(c, order=1).shape == (2, 20, 8)
    np.testing.assert_array_equal(dsp.stack_deltas(c, order=0), c)


def test_masked_delta_replicates_each_examples_last_valid_frame(fast_jit):
    rng = np.random.default_rng(2)
    c = rng.standard_normal((3, 25, 5)).astype(np.float32)
    n_frames = np.array([25, 11, 1], dtype=np.int32)
    stacked = fast_jit(
        lambda c, n: dsp.stack_deltas(c, order=2, delta_width=2, delta_delta_width=1, n_frames=n)
    )(c, n_frames)
    for i, n in enumerate(n_frames):
        valid = c[i, :n]
        first = _regression_delta(valid, 2)
        expected = np.concatenate([valid, first, _regression_delta(first, 1)], axis=-1)
        np.testing.assert_allclose(stacked[i, :n], expected, rtol=1e-5, atol=1e-6)
