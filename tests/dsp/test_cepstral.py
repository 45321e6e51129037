"""DCT-II and MFCCs against scipy and librosa."""

from __future__ import annotations

import jax.numpy as jnp
import librosa
import numpy as np
import pytest
import scipy.fft

import dsp


@pytest.mark.parametrize(("n_in", "n_out"), [(40, 13), (40, 40), (7, 3), (128, 20)])
def test_dct_matrix_is_scipys_orthonormal_dct2(n_in, n_out):
    x = np.random.default_rng(0).standard_normal((5, n_in))
    expected = scipy.fft.dct(x, type=2, norm="ortho", axis=-1)[:, :n_out]
    np.testing.assert_allclose(x @ dsp.dct_matrix(n_in, n_out), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [1, 13, 40])
def test_dct_matrix_is_orthonormal(n):
    basis = dsp.dct_matrix(n)
    np.testing.assert_allclose(basis.T @ basis, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(basis @ basis.T, np.eye(n), atol=1e-12)


def test_dct_of_a_constant_is_its_scaled_mean():
    coefficients = np.full(40, 3.0) @ dsp.dct_matrix(40, 13)
    np.testing.assert_allclose(coefficients, [3.0 * np.sqrt(40)] + [0.0] * 12, atol=1e-12)


def test_lifter_weights_follow_librosa():
    # librosa scales coefficient i (from 0) by 1 + (L/2) sin(pi (i + 1) / L).
    np.testing.assert_allclose(
        dsp.lifter_weights(4, 22), 1 + 11 * np.sin(np.pi * np.arange(1, 5) / 22)
    )
    np.testing.assert_array_equal(dsp.lifter_weights(13, 0), np.ones(13))


@pytest.mark.parametrize("lifter", [0, 22])
@pytest.mark.parametrize("n_mfcc", [13, 20])
def test_mfcc_from_log_mel_matches_librosa(x64, assert_close, lifter, n_mfcc):
    log_mel = 20 * np.random.default_rng(1).standard_normal((30, 40))
    expected = librosa.feature.mfcc(S=log_mel.T, n_mfcc=n_mfcc, lifter=lifter).T
    ours = dsp.mfcc_from_log_mel(jnp.asarray(log_mel), n_mfcc=n_mfcc, lifter=lifter)
    assert_close(ours, expected, rtol=1e-9)
    ours32 = dsp.mfcc_from_log_mel(jnp.asarray(log_mel, jnp.float32), n_mfcc=n_mfcc, lifter=lifter)
    assert ours32.dtype == jnp.float32
    assert_close(ours32, expected, rtol=1e-5)
