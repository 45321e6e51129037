"""STFT, power and magnitude spectrograms against librosa.stft."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

import dsp

SR = 16000

# STFT keyword sets: librosa's defaults, a short window padded centrally (odd difference too),
# a Hamming window, and no centring.
_FIELDS = ("n_fft", "win_length", "hop_length", "window", "center", "pad_mode")
GRID = [
    dict(zip(_FIELDS, row, strict=True))
    for row in [
        (512, 400, 160, "hann", True, "constant"),
        (512, 401, 128, "hann", True, "reflect"),
        (256, 256, 100, "hamming", True, "constant"),
        (512, 320, 160, "hamming", False, "constant"),
    ]
]
_GRID_IDS = ["-".join(map(str, kw.values())) for kw in GRID]


def _librosa_stft(x, **kwargs):
    return np.swapaxes(librosa.stft(x, **kwargs), -1, -2)


@pytest.mark.parametrize("kwargs", GRID, ids=_GRID_IDS)
def test_stft_matches_librosa_float64(x64, fast_jit, tones_and_noise, assert_close, kwargs):
    x = tones_and_noise(4000, sample_rate=SR, seed=0)
    spectrum = dsp.stft(jnp.asarray(x), **kwargs)
    assert spectrum.dtype == jnp.complex128
    assert_close(spectrum, _librosa_stft(x, **kwargs), rtol=1e-9)
    power = dsp.power_spectrogram(jnp.asarray(x), **kwargs)
    expected_power = np.abs(_librosa_stft(x, **kwargs)) ** 2
    assert_close(power, expected_power, rtol=1e-9)
    assert_close(
        dsp.magnitude_spectrogram(jnp.asarray(x), **kwargs), expected_power**0.5, rtol=1e-9
    )


@pytest.mark.parametrize("kwargs", GRID, ids=_GRID_IDS)
def test_stft_matches_librosa_float32(fast_jit, tones_and_noise, assert_close, kwargs):
    x = tones_and_noise(4000, sample_rate=SR, seed=1).astype(np.float32)
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


def _numpy_rfft_frames(x, n_fft, win_length, hop_length, window, center, pad_mode):
    """``np.fft.rfft`` of librosa's frames, windowed: framing by NumPy alone."""
    if center:
        x = np.pad(x, n_fft // 2, mode=pad_mode)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop_length]
    taper = np.asarray(dsp.padded_window(window, win_length=win_length, n_fft=n_fft))
    return np.fft.rfft(frames * taper, axis=-1)


@pytest.mark.parametrize("kwargs", GRID, ids=_GRID_IDS)
def test_matmul_dft_matches_numpy_rfft(x64, fast_jit, tones_and_noise, assert_close, kwargs):
    x = tones_and_noise(4000, sample_rate=SR, seed=3)
    expected = _numpy_rfft_frames(x, **kwargs)
    spectrum = fast_jit(lambda v: dsp.stft(v, dft="matmul", **kwargs))(x)
    assert spectrum.dtype == jnp.complex128
    assert_close(spectrum, expected, rtol=1e-12)
    power = fast_jit(lambda v: dsp.power_spectrogram(v, dft="matmul", **kwargs))(x)
    assert_close(power, np.abs(expected) ** 2, rtol=1e-12)
    # float32 input: float32 products, within float32 rounding of the float64 reference.
    x32 = x.astype(np.float32)
    spectrum32 = fast_jit(lambda v: dsp.stft(v, dft="matmul", **kwargs))(x32)
    assert spectrum32.dtype == jnp.complex64
    assert_close(spectrum32, _numpy_rfft_frames(x32.astype(np.float64), **kwargs), rtol=1e-5)


def test_dft_basis_is_the_windowed_real_dft():
    basis = dsp.dft_basis(8, win_length=6, window="hann")
    assert basis.shape == (6, 10) and not basis.flags.writeable
    # Row n is the DFT of a unit impulse at n + 1 (the window starts at (8 - 6) // 2 = 1),
    # scaled by the window there.
    taper = dsp.padded_window("hann", win_length=6, n_fft=8)
    impulses = np.eye(8)[1:7] * taper[1:7, None]
    expected = np.fft.rfft(impulses, axis=-1)
    np.testing.assert_allclose(basis[:, :5], expected.real, atol=1e-15)
    np.testing.assert_allclose(basis[:, 5:], expected.imag, atol=1e-15)
    with pytest.raises(ValueError, match="dft"):
        dsp.stft(np.zeros(64, np.float32), n_fft=16, hop_length=4, dft="dct")
