"""Spectral centroid, bandwidth, rolloff, flatness and flux against librosa and known answers."""

from __future__ import annotations

import jax.numpy as jnp
import librosa
import numpy as np
import pytest

import dsp

SR = 16000
STFT = dict(n_fft=512, hop_length=160, win_length=400)


def _magnitudes(tones_and_noise) -> np.ndarray:
    """float64 [frames, 257]: |STFT| of tones and noise with a silent stretch (all-zero frames)."""
    y = tones_and_noise(8000, sample_rate=SR, seed=4)
    y[2000:4000] = 0.0
    S = np.abs(librosa.stft(y, **STFT)).T
    assert np.sum(~S.any(axis=-1)) >= 5
    return S


def _librosa_descriptors(S: np.ndarray) -> dict[str, np.ndarray]:
    """librosa's values for ``S`` [frames, freq] (librosa lays it out [freq, frames])."""
    S = S.T
    return {
        "centroid": librosa.feature.spectral_centroid(S=S, sr=SR)[0],
        "bandwidth": librosa.feature.spectral_bandwidth(S=S, sr=SR)[0],
        "rolloff": librosa.feature.spectral_rolloff(S=S, sr=SR, roll_percent=0.85)[0],
        "flatness": librosa.feature.spectral_flatness(S=S)[0],
        "flux": librosa.onset.onset_strength(S=S, lag=1, max_size=1, center=False),
    }


def _dsp_descriptors(S) -> dict[str, jnp.ndarray]:
    return {
        "centroid": dsp.spectral_centroid(S, sample_rate=SR),
        "bandwidth": dsp.spectral_bandwidth(S, sample_rate=SR),
        "rolloff": dsp.spectral_rolloff(S, sample_rate=SR),
        "flatness": dsp.spectral_flatness(S),
        "flux": dsp.spectral_flux(S),
    }


def test_descriptors_match_librosa_float64(x64, fast_jit, tones_and_noise, assert_close):
    S = _magnitudes(tones_and_noise)
    expected = _librosa_descriptors(S)
    actual = fast_jit(_dsp_descriptors)(jnp.asarray(S))
    for name in dsp.SPECTRAL_DESCRIPTORS:
        assert actual[name].dtype == jnp.float64
        assert_close(actual[name], expected[name], rtol=1e-12, err_msg=name)
    silent = ~S.any(axis=-1)
    np.testing.assert_array_equal(actual["centroid"][silent], 0.0)
    np.testing.assert_allclose(actual["flatness"][silent], 1.0, rtol=1e-12)


def test_descriptors_match_librosa_float32(fast_jit, tones_and_noise, assert_close):
    S = _magnitudes(tones_and_noise).astype(np.float32)
    expected = _librosa_descriptors(S.astype(np.float64))
    actual = fast_jit(_dsp_descriptors)(jnp.asarray(S))
    for name in ("centroid", "bandwidth", "flatness", "flux"):
        assert actual[name].dtype == jnp.float32
        assert_close(actual[name], expected[name], rtol=1e-5, err_msg=name)
    # A float32 cumulative sum can reach the 85 % mark one bin earlier or later.
    bin_width = SR / 512
    rolloff_error = np.abs(np.asarray(actual["rolloff"]) - expected["rolloff"])
    assert rolloff_error.max() <= bin_width and np.mean(rolloff_error == 0) >= 0.95


def test_spectral_descriptors_stack_the_five_and_batch(fast_jit, tones_and_noise):
    S = np.stack([_magnitudes(tones_and_noise), 0.5 + np.zeros((51, 257))]).astype(np.float32)
    stacked = fast_jit(lambda S: dsp.spectral_descriptors(S, sample_rate=SR))(S)
    assert stacked.shape == (2, 51, 5)
    singles = fast_jit(_dsp_descriptors)(S[0])
    for column, name in enumerate(dsp.SPECTRAL_DESCRIPTORS):
        np.testing.assert_allclose(stacked[0, :, column], singles[name], rtol=1e-6, err_msg=name)
    # A flat spectrum: centroid in the middle, flatness 1, no flux.
    np.testing.assert_allclose(stacked[1, :, 0], SR / 4, rtol=1e-6)
    np.testing.assert_allclose(stacked[1, :, 3], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(stacked[1, :, 4], 0.0)


def test_centroid_from_waveform_matches_librosa(fast_jit, tones_and_noise, assert_close):
    """The descriptors of ``dsp.magnitude_spectrogram`` equal librosa's computed from y."""
    y = tones_and_noise(6000, sample_rate=SR, seed=5).astype(np.float32)
    S = fast_jit(lambda y: dsp.magnitude_spectrogram(y, **STFT))(y)
    yd = y.astype(np.float64)
    assert_close(
        dsp.spectral_centroid(S, sample_rate=SR),
        librosa.feature.spectral_centroid(y=yd, sr=SR, **STFT)[0],
        rtol=1e-5,
    )
    assert_close(
        dsp.spectral_bandwidth(S, sample_rate=SR),
        librosa.feature.spectral_bandwidth(y=yd, sr=SR, **STFT)[0],
        rtol=1e-5,
    )


def test_known_answers(fast_jit):
    """A tone at a bin centre: centroid, rolloff there, narrow, not flat; white noise is flat."""
    t = np.arange(SR // 2) / SR
    tone_bin = 64  # 2 kHz
    tone = np.sin(2 * np.pi * tone_bin * SR / 512 * t)
    noise = np.random.default_rng(6).standard_normal(t.size)
    S = fast_jit(lambda y: dsp.magnitude_spectrogram(y, **STFT))(np.stack([tone, noise]))
    stacked = np.asarray(fast_jit(lambda S: dsp.spectral_descriptors(S, sample_rate=SR))(S))
    middle = slice(5, -5)
    centroid, bandwidth, rolloff, flatness, flux = np.moveaxis(stacked[0, middle], -1, 0)
    np.testing.assert_allclose(centroid, 2000.0, rtol=1e-3)
    np.testing.assert_allclose(rolloff, 2000.0 + SR / 512, rtol=1e-6)  # the main lobe's edge
    assert bandwidth.max() < 2 * SR / 512 and flatness.max() < 1e-3
    np.testing.assert_allclose(flux, 0.0, atol=1e-3 * S[0].max())  # steady: no rise
    # Periodogram bins of white noise are exponential: flatness exp(-Euler's gamma) = 0.56.
    np.testing.assert_allclose(np.median(stacked[1, middle, 3]), np.exp(-np.euler_gamma), rtol=0.1)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda S: dsp.spectral_rolloff(S, sample_rate=SR, roll_percent=1.0), "roll_percent"),
        (lambda S: dsp.spectral_rolloff(S, sample_rate=SR, roll_percent=0.0), "roll_percent"),
        (lambda S: dsp.spectral_descriptors(S, sample_rate=SR, roll_percent=1.5), "roll_percent"),
        (lambda S: dsp.spectral_bandwidth(S, sample_rate=SR, p=0.0), "p"),
        (lambda S: dsp.spectral_flatness(S, amin=0.0), "amin"),
        (lambda S: dsp.spectral_flatness(S, power=-1.0), "power"),
        (lambda S: dsp.spectral_centroid(S, sample_rate=0), "sample_rate"),
        (lambda S: dsp.spectral_centroid(S[..., :1], sample_rate=SR), "S"),
        (lambda S: dsp.spectral_flux(S[0]), "S"),
        (lambda S: dsp.spectral_centroid(S.astype(np.int32), sample_rate=SR), "S"),
    ],
)
def test_descriptors_name_the_bad_argument(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call(np.ones((3, 257), np.float32))
