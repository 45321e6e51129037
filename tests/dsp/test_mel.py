"""Mel scales, the mel filterbank, power_to_db and log-mel spectrograms against librosa."""

from __future__ import annotations

import itertools
import warnings

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsp


@pytest.mark.parametrize("htk", [False, True])
def test_mel_scales_match_librosa(htk):
    freqs = np.array([0.0, 20.0, 500.0, 999.9, 1000.0, 1000.1, 4000.0, 8000.0, 22050.0])
    np.testing.assert_allclose(
        dsp.hz_to_mel(freqs, htk=htk), librosa.hz_to_mel(freqs, htk=htk), rtol=1e-12
    )
    mels = librosa.hz_to_mel(freqs, htk=htk)
    np.testing.assert_allclose(
        dsp.mel_to_hz(mels, htk=htk), librosa.mel_to_hz(mels, htk=htk), rtol=1e-12
    )
    # Scalars and JAX arrays go through the same formulas.
    assert float(dsp.hz_to_mel(1500.0, htk=htk)) == pytest.approx(
        librosa.hz_to_mel(1500.0, htk=htk), rel=1e-12
    )
    np.testing.assert_allclose(
        dsp.hz_to_mel(jnp.asarray(freqs, jnp.float32), htk=htk),
        librosa.hz_to_mel(freqs, htk=htk),
        rtol=1e-6,
    )


def test_mel_scale_anchor_points():
    # Slaney: linear at 200/3 Hz per mel up to 1 kHz = 15 mels. HTK: 1000 Hz ~ 1000 mels.
    assert dsp.hz_to_mel(1000.0) == pytest.approx(15.0)
    assert dsp.hz_to_mel(200.0 / 3.0) == pytest.approx(1.0)
    assert dsp.hz_to_mel(1000.0, htk=True) == pytest.approx(999.9855, abs=1e-4)


@settings(max_examples=60, deadline=None)
@given(
    freqs=st.lists(st.floats(0.0, 48000.0, allow_nan=False), min_size=1, max_size=8),
    htk=st.booleans(),
)
def test_hz_mel_hz_round_trip(freqs, htk):
    freqs = np.asarray(freqs)
    back = dsp.mel_to_hz(dsp.hz_to_mel(freqs, htk=htk), htk=htk)
    np.testing.assert_allclose(back, freqs, rtol=1e-10, atol=1e-9)


def test_mel_scale_gradient_is_finite_on_both_sides_of_the_knee(fast_jit):
    grad = fast_jit(jax.grad(lambda f: jnp.sum(dsp.hz_to_mel(f))))(jnp.array([0.0, 500.0, 4000.0]))
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad[:2], 3.0 / 200.0, rtol=1e-6)


# Sample rate -> FFT size that gives every band at least one bin for most of the grid.
FILTERBANK_N_FFT = {16000: 512, 22050: 2048, 44100: 2048, 48000: 4096}
FILTERBANK_GRID = list(
    itertools.product(
        FILTERBANK_N_FFT,
        [False, True],  # htk
        ["slaney", None],  # norm
        [20, 40, 128],  # n_mels
        [(0.0, None), (80.0, 7600.0), (300.0, 4000.0)],  # (fmin, fmax)
    )
)


@pytest.mark.parametrize(("sample_rate", "htk", "norm", "n_mels", "band"), FILTERBANK_GRID)
def test_filterbank_matches_librosa(sample_rate, htk, norm, n_mels, band):
    fmin, fmax = band
    n_fft = FILTERBANK_N_FFT[sample_rate]
    with warnings.catch_warnings(record=True) as librosa_warnings:
        warnings.simplefilter("always")
        expected = librosa.filters.mel(
            sr=sample_rate,
            n_fft=n_fft,
            n_mels=n_mels,
            fmin=fmin,
            fmax=fmax,
            htk=htk,
            norm=norm,
            dtype=np.float64,
        )
    with warnings.catch_warnings(record=True) as our_warnings:
        warnings.simplefilter("always")
        basis = dsp.mel_filterbank(
            sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk,
            norm=norm,
        )  # fmt: skip
    # Empty filters are announced whenever librosa announces them, and also when the only empty
    # filter starts at 0 Hz (which librosa lets pass, though its channel is just as empty).
    librosa_warned = any("Empty filters" in str(w.message) for w in librosa_warnings)
    assert bool(our_warnings) == bool(np.any(~expected.any(axis=1)))
    assert bool(our_warnings) or not librosa_warned
    assert all(issubclass(w.category, UserWarning) for w in our_warnings)
    assert basis.shape == (n_fft // 2 + 1, n_mels) and basis.dtype == np.float64
    np.testing.assert_allclose(basis, expected.T, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


def test_empty_filters_are_counted_in_a_warning():
    # 256 bands on a 512-point FFT at 16 kHz: the lowest bands are narrower than one FFT bin.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = librosa.filters.mel(sr=16000, n_fft=512, n_mels=256, dtype=np.float64)
    n_empty = int(np.sum(~expected.any(axis=1)))
    assert n_empty == 24
    with pytest.warns(UserWarning, match=f"{n_empty} of 256 mel filters are empty") as record:
        basis = dsp.mel_filterbank(sample_rate=16000, n_fft=512, n_mels=256)
    assert len(record) == 1
    assert "n_mels" in str(record[0].message)
    np.testing.assert_array_equal(~basis.any(axis=0), ~expected.any(axis=1))
    # A filterbank without empty filters says nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dsp.mel_filterbank(sample_rate=16000, n_fft=512, n_mels=40)


def test_filterbank_is_cached_and_read_only():
    basis = dsp.mel_filterbank(sample_rate=16000, n_fft=512, n_mels=40)
    assert basis is dsp.mel_filterbank(sample_rate=16000, n_fft=512, n_mels=40)
    with pytest.raises(ValueError):
        basis[0, 0] = 1.0


def test_slaney_norm_gives_equal_area_triangles():
    # Each Slaney-normalised triangle has unit area in Hz, up to sampling on the FFT grid.
    sample_rate, n_fft = 16000, 4096
    basis = dsp.mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=40)
    areas = basis.sum(axis=0) * sample_rate / n_fft
    np.testing.assert_allclose(areas, 1.0, rtol=0.02)


def test_pure_tone_peaks_in_its_mel_band(fast_jit):
    sample_rate, n_fft = 16000, 512
    edges = dsp.mel_frequencies(40 + 2, fmin=0.0, fmax=sample_rate / 2)
    bands = [3, 17, 33]
    t = np.arange(sample_rate // 4) / sample_rate
    freqs = edges[np.array(bands) + 1]  # the bands' centre frequencies
    x = np.sin(2 * np.pi * freqs[:, None] * t).astype(np.float32)

    @fast_jit
    def mel_spectrogram(x):
        power = dsp.power_spectrogram(x, n_fft=n_fft, hop_length=160, win_length=400)
        return dsp.mel_spectrogram(power, sample_rate=sample_rate, n_fft=n_fft, n_mels=40)

    mel = mel_spectrogram(x)
    np.testing.assert_array_equal(jnp.argmax(mel[:, mel.shape[1] // 2], axis=-1), bands)


@pytest.mark.parametrize(
    ("ref", "amin", "top_db"), [(1.0, 1e-10, None), (1.0, 1e-10, 80.0), (0.3, 1e-5, 40.0)]
)
def test_power_to_db_matches_librosa(ref, amin, top_db):
    power = np.random.default_rng(0).exponential(size=(50, 40)) ** 4
    power[3, :5] = 0.0
    expected = librosa.power_to_db(power, ref=ref, amin=amin, top_db=top_db)
    np.testing.assert_allclose(
        dsp.power_to_db(power.astype(np.float32), ref=ref, amin=amin, top_db=top_db),
        expected,
        rtol=1e-5,
        atol=1e-4,
    )


def test_power_to_db_top_db_uses_each_examples_valid_peak():
    power = np.full((2, 6, 3), 1e-3)
    power[0, 5] = 1e6  # a loud padded frame must not raise example 0's floor
    power[1, 1] = 10.0
    n_frames = np.array([4, 6])
    db = dsp.power_to_db(power, top_db=20.0, n_frames=n_frames)
    np.testing.assert_allclose(db[0, :4], -30.0, rtol=1e-5)  # its own peak is -30 dB
    np.testing.assert_allclose(db[1, 0], 10.0 - 20.0, rtol=1e-5)


LOG_MEL_CASES = [
    dict(n_fft=512, win_length=400, hop_length=160, n_mels=40, htk=False, norm="slaney"),
    dict(n_fft=1024, win_length=1024, hop_length=256, n_mels=64, htk=True, norm=None),
]


def _librosa_log_mel(x, sample_rate, case, top_db):
    mel = librosa.feature.melspectrogram(
        y=x,
        sr=sample_rate,
        n_fft=case["n_fft"],
        win_length=case["win_length"],
        hop_length=case["hop_length"],
        n_mels=case["n_mels"],
        htk=case["htk"],
        norm=case["norm"],
        dtype=np.float64,
    )
    return librosa.power_to_db(mel, top_db=top_db).T


def _dsp_log_mel(x, sample_rate, case, top_db):
    power = dsp.power_spectrogram(
        x, n_fft=case["n_fft"], win_length=case["win_length"], hop_length=case["hop_length"]
    )
    return dsp.log_mel_spectrogram(
        power,
        sample_rate=sample_rate,
        n_fft=case["n_fft"],
        n_mels=case["n_mels"],
        htk=case["htk"],
        norm=case["norm"],
        top_db=top_db,
    )


@pytest.mark.parametrize(("case", "top_db"), [(LOG_MEL_CASES[0], None), (LOG_MEL_CASES[1], 80.0)])
def test_log_mel_matches_librosa(x64, fast_jit, tones_and_noise, assert_close, case, top_db):
    log_mel = fast_jit(lambda x: _dsp_log_mel(x, 16000, case, top_db))
    x = tones_and_noise(8000, sample_rate=16000, seed=3)
    expected = _librosa_log_mel(x, 16000, case, top_db)
    ours64 = log_mel(jnp.asarray(x))
    assert ours64.dtype == jnp.float64
    assert_close(ours64, expected, rtol=1e-9)
    x32 = x.astype(np.float32)
    expected32 = _librosa_log_mel(x32.astype(np.float64), 16000, case, top_db)
    ours32 = log_mel(jnp.asarray(x32))
    assert ours32.dtype == jnp.float32
    assert_close(ours32, expected32, rtol=1e-4)
