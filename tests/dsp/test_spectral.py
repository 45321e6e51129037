"""STFT, power and magnitude spectrograms against librosa.stft."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

import dsp

SR = 16000

# (n_fft, win_length, hop_length, window, center, pad_mode): librosa's defaults, a short window
# padded centrally (odd difference too), a Hamming window, and no centring.
GRID = [
    (512, 400, 160, "hann", True, "constant"),
    (512, 401, 128, "hann", True, "reflect"),
    (256, 256, 100, "hamming", True, "constant"),
    (512, 320, 160, "hamming", False, "constant"),
]


def _librosa_stft(x, n_fft, win_length, hop_length, window, center, pad_mode):
    spectrum = librosa.stft(
        x,
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    return np.swapaxes(spectrum, -1, -2)


@pytest.mark.parametrize(
    ("n_fft", "win_length", "hop_length", "window", "center", "pad_mode"), GRID
)
def test_stft_matches_librosa_float64(
    x64,
    fast_jit,
    tones_and_noise,
    assert_close,
    n_fft,
    win_length,
    hop_length,
    window,
    center,
    pad_mode,
):
    x = tones_and_noise(4000, sample_rate=SR, seed=0)
    kwargs = dict(
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    spectrum = dsp.stft(jnp.asarray(x), **kwargs)
    assert spectrum.dtype == jnp.complex128
    assert_close(spectrum, _librosa_stft(x, **kwargs), rtol=1e-9)
    power = dsp.power_spectrogram(jnp.asarray(x), **kwargs)
    expected_power = np.abs(_librosa_stft(x, **kwargs)) ** 2
    assert_close(power, expected_power, rtol=1e-9)
    assert_close(
        dsp.magnitude_spectrogram(jnp.asarray(x), **kwargs), expected_power**0.5, rtol=1e-9
    )


@pytest.mark.parametrize(
    ("n_fft", "win_length", "hop_length", "window", "center", "pad_mode"), GRID
)
def test_stft_matches_librosa_float32(
    fast_jit, tones_and_noise, assert_close, n_fft, win_length, hop_length, window, center, pad_mode
):
    x = tones_and_noise(4000, sample_rate=SR, seed=1).astype(np.float32)
    kwargs = dict(
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    spectrum = fast_jit(lambda x: dsp.stft(x, **kwargs))(x)
    assert spectrum.dtype == jnp.complex64
    # The reference is computed in float64 from the same float32 samples.
    assert_close(spectrum, _librosa_stft(x.astype(np.float64), **kwargs), rtol=1e-5)


def test_pure_tone_peaks_in_its_bin(fast_jit):
    n_fft, bins = 512, np.array([5, 40, 200])
    t = np.arange(SR // 2) / SR
    x = np.sin(2 * np.pi * (bins[:, None] * SR / n_fft) * t).astype(np.float32)
    power = fast_jit(
        lambda x: dsp.power_spectrogram(x, n_fft=n_fft, hop_length=160, win_length=400)
    )(x)
    middle = np.asarray(power[:, power.shape[1] // 2])
    np.testing.assert_array_equal(np.argmax(middle, axis=-1), bins)
    for row, k in zip(middle, bins, strict=True):
        # The 400-point Hann main lobe spans about +-2.6 bins of a 512-point FFT.
        assert row[k - 3 : k + 4].sum() / row.sum() > 0.999


def test_stft_batches_over_leading_axes_and_vmaps(fast_jit, assert_close):
    x = np.random.default_rng(2).standard_normal((2, 3, 1600)).astype(np.float32)
    stft = lambda v: dsp.power_spectrogram(v, n_fft=256, hop_length=80, win_length=200)
    batched = fast_jit(stft)(x)
    assert batched.shape == (2, 3, 1 + 1600 // 80, 129)
    assert_close(batched[1, 2], fast_jit(stft)(x[1, 2]), rtol=1e-6)
    assert_close(fast_jit(jax.vmap(jax.vmap(stft)))(x), batched, rtol=1e-6)
