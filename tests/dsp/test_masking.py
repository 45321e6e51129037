"""Frame counts, masks and masked CMVN."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

import dsp


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize(("n_fft", "hop_length"), [(512, 160), (400, 160), (511, 128), (64, 100)])
def test_num_frames_matches_librosa_stft(center, n_fft, hop_length):
    lengths = np.array([n_fft, n_fft + 1, 1000, 1599, 1600, 1601, 4321])
    counts = dsp.num_frames(lengths, n_fft=n_fft, hop_length=hop_length, center=center)
    assert counts.dtype == jnp.int32
    for length, count in zip(lengths, np.asarray(counts), strict=True):
        frames = librosa.stft(np.ones(length), n_fft=n_fft, hop_length=hop_length, center=center)
        assert frames.shape[-1] == count, (length, count)


def test_num_frames_of_short_and_empty_signals_is_zero():
    counts = dsp.num_frames(np.array([0, 1, 511, 512]), n_fft=512, hop_length=160, center=False)
    np.testing.assert_array_equal(counts, [0, 0, 0, 1])
    counts = dsp.num_frames(np.array([0, 1]), n_fft=512, hop_length=160, center=True)
    np.testing.assert_array_equal(counts, [0, 1])


def test_frame_mask():
    mask = dsp.frame_mask(np.array([[0, 2], [5, 3]]), 4)
    assert mask.shape == (2, 2, 4) and mask.dtype == jnp.bool_
    np.testing.assert_array_equal(mask[0, 1], [True, True, False, False])
    np.testing.assert_array_equal(mask[1, 0], [True] * 4)
    assert not np.any(mask[0, 0])


@pytest.mark.parametrize("kind", ["none", "mean", "meanvar"])
def test_cmvn_uses_valid_frames_only(kind):
    rng = np.random.default_rng(0)
    x = (5.0 + 3.0 * rng.standard_normal((3, 30, 4))).astype(np.float32)
    n_frames = np.array([30, 12, 2], dtype=np.int32)
    x_padded = x.copy()
    x_padded[1, 12:] = 1e4  # garbage in padded frames must not reach the statistics
    out = np.asarray(dsp.cmvn(x_padded, n_frames, kind=kind))
    for i, n in enumerate(n_frames):
        valid = x[i, :n].astype(np.float64)
        expected = valid
        if kind != "none":
            expected = valid - valid.mean(axis=0)
        if kind == "meanvar":
            expected = expected / np.sqrt(valid.var(axis=0) + 1e-10)
        np.testing.assert_allclose(out[i, :n], expected, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(out[i, n:], 0.0)


@pytest.mark.parametrize("kind", ["mean", "meanvar"])
def test_cmvn_centres_constant_features_to_zero(kind):
    # Constant columns (a value whose float32 mean is not exact, a log floor, a tiny value) next
    # to varying ones; example 1 is constant only over its valid frames.
    rng = np.random.default_rng(3)
    x = (5.0 + 3.0 * rng.standard_normal((2, 40, 5))).astype(np.float32)
    x[0, :, 0] = 47.3
    x[0, :, 1] = -80.0
    x[0, :, 2] = 1e-3
    x[1, :25, 3] = 0.1
    n_frames = np.array([40, 25], dtype=np.int32)
    out = np.asarray(dsp.cmvn(x, n_frames, kind=kind))
    np.testing.assert_array_equal(out[0, :, :3], 0.0)
    np.testing.assert_array_equal(out[1, :, 3], 0.0)
    # The varying features are normalised by the formula, to the last bit.
    mean, var = dsp.masked_mean_var(x, n_frames)
    y = x - mean
    if kind == "meanvar":
        y = y * jax.lax.rsqrt(var + 1e-10)
    np.testing.assert_array_equal(out[0, :, 3:], np.asarray(y)[0, :, 3:])
    np.testing.assert_array_equal(out[1, :25, [0, 1, 2, 4]], np.asarray(y)[1, :25, [0, 1, 2, 4]])
    valid = x[0, :, 3:].astype(np.float64)
    expected = valid - valid.mean(axis=0)
    if kind == "meanvar":
        expected /= np.sqrt(valid.var(axis=0) + 1e-10)
    np.testing.assert_allclose(out[0, :, 3:], expected, rtol=1e-4, atol=1e-4)


def test_masked_mean_var_and_empty_examples():
    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    mean, var = dsp.masked_mean_var(x, np.array([2, 0]))
    np.testing.assert_allclose(mean[0, 0], [1.0, 2.0])
    np.testing.assert_allclose(var[0, 0], [1.0, 1.0])
    np.testing.assert_array_equal(mean[1], 0.0)
    assert np.all(np.isfinite(dsp.cmvn(x, np.array([2, 0]))))
