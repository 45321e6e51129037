"""The spectral transforms against librosa, a written-out VTLP and hand-computed masks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from augment_testlib import FRONTEND, SR, tone

import dsp
from serjax.augment import spectral

_shift_pitch = jax.jit(spectral.shift_pitch)
_stretch_time = jax.jit(spectral.stretch_time)
_vtlp_filterbank = jax.jit(spectral.vtlp_filterbank, static_argnums=0)
_mask_time = jax.jit(spectral.mask_time)
_mask_features = jax.jit(spectral.mask_features, static_argnames="block")
_random_spans = jax.jit(spectral.random_spans, static_argnums=(2, 3))
_power_stage = jax.jit(dsp.power_stage, static_argnums=2)


def _power(y):
    power, n_frames = _power_stage(jnp.asarray(y)[None], jnp.array([len(y)]), FRONTEND)
    return power, n_frames


def _peak_bin(power, n_frames):
    return int(np.argmax(np.asarray(power[0, : int(n_frames[0])]).mean(0)))


@pytest.mark.parametrize(("semitones", "bin_"), [(12.0, 64), (-12.0, 16), (7.0, 48), (0.0, 32)])
def test_pitch_shift_moves_a_tone_by_the_factor(semitones, bin_):
    power, n_frames = _power(tone(1000.0))  # 1 kHz is bin 32 of a 512-point FFT at 16 kHz
    assert _peak_bin(power, n_frames) == 32
    shifted = _shift_pitch(power, jnp.array([semitones]))
    assert _peak_bin(shifted, n_frames) == bin_
    # The tone keeps its level, as after a real pitch shift.
    np.testing.assert_allclose(np.max(shifted[0, 5]), np.max(power[0, 5]), rtol=0.05)


def test_pitch_shift_sees_what_a_phase_vocoder_shift_gives():
    librosa = pytest.importorskip("librosa")
    t = np.arange(SR) / SR
    y = 0.3 * sum(np.sin(2 * np.pi * 200 * h * t) / h for h in range(1, 8)).astype(np.float32)
    basis = dsp.mel_filterbank(sample_rate=SR, n_fft=512, n_mels=40)
    for semitones in (-3.0, 3.0):
        reference, _ = _power(librosa.effects.pitch_shift(y, sr=SR, n_steps=semitones))
        power, _ = _power(y)
        ours = _shift_pitch(power, jnp.array([semitones]))
        mel_ref = 10 * np.log10(np.asarray(reference[0, 10:-10]).mean(0) @ basis + 1e-10)
        mel_ours = 10 * np.log10(np.asarray(ours[0, 10:-10]).mean(0) @ basis + 1e-10)
        assert np.corrcoef(mel_ref, mel_ours)[0, 1] > 0.97
        assert np.median(np.abs(mel_ref - mel_ours)) < 2.0


@pytest.mark.parametrize("rate", [0.8, 1.0, 1.25, 2.0])
def test_time_stretch_scales_valid_frames_by_one_over_rate_and_keeps_pitch(rate):
    power, n_frames = _power(tone(1000.0))  # 101 frames, padded below to 141
    power = jnp.pad(power, ((0, 0), (0, 40), (0, 0)))
    stretched, new_frames = _stretch_time(power, n_frames, jnp.array([rate]))
    assert int(new_frames[0]) == int(np.floor(int(n_frames[0]) / rate + 0.5))
    assert stretched.shape == power.shape
    assert np.all(np.asarray(stretched[0, int(new_frames[0]) :]) == 0)
    assert _peak_bin(stretched, new_frames) == 32


def test_time_stretch_reads_frame_t_times_rate():
    rng = np.random.default_rng(0)
    power = jnp.asarray(rng.uniform(0.1, 1, (2, 20, 5)), jnp.float32)
    n_frames = jnp.array([20, 12])
    fast, n_fast = _stretch_time(power, n_frames, jnp.array([2.0, 2.0]))
    np.testing.assert_array_equal(n_fast, [10, 6])
    np.testing.assert_allclose(fast[0, :10], power[0, ::2], rtol=1e-6)
    np.testing.assert_allclose(fast[1, :6], power[1, :12:2], rtol=1e-6)
    slow, n_slow = _stretch_time(power, n_frames, jnp.array([0.5, 0.5]))
    np.testing.assert_array_equal(n_slow, [20, 20])  # 40 and 24 frames, cut at F = 20
    np.testing.assert_allclose(slow[1, 0:20:2], power[1, :10], rtol=1e-6)
    # Odd output frames sit halfway: their magnitude is the mean of the neighbours'.
    mid = (np.sqrt(power[1, :9]) + np.sqrt(power[1, 1:10])) / 2
    np.testing.assert_allclose(slow[1, 1:19:2], mid**2, rtol=1e-5)


def _reference_vtlp(alpha, config):
    # Jaitly & Hinton's warp written out, and librosa's triangles evaluated at warped bins.
    librosa = pytest.importorskip("librosa")
    nyquist = config.sample_rate / 2
    freqs = np.fft.rfftfreq(config.n_fft, 1 / config.sample_rate)
    f_hi = 0.6 * nyquist
    cut = f_hi * min(alpha, 1) / alpha
    upper = nyquist - (nyquist - f_hi * min(alpha, 1)) / (nyquist - cut) * (nyquist - freqs)
    warped = np.where(freqs <= cut, alpha * freqs, upper)
    edges = librosa.mel_frequencies(config.n_mels + 2, fmin=config.fmin, fmax=nyquist)
    lower = (warped[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    falling = (edges[None, 2:] - warped[:, None]) / (edges[2:] - edges[1:-1])
    weights = np.maximum(0, np.minimum(lower, falling))
    return weights * 2.0 / (edges[2:] - edges[:-2])


@pytest.mark.parametrize("alpha", [0.9, 1.0, 1.15])
def test_vtlp_filterbank_is_the_warped_mel_filterbank(alpha):
    basis = np.asarray(_vtlp_filterbank(FRONTEND, jnp.array([alpha]))[0])
    reference = _reference_vtlp(alpha, FRONTEND)
    np.testing.assert_allclose(basis, reference, atol=0.02 * reference.max())
    if alpha == 1.0:
        plain = dsp.mel_filterbank(sample_rate=SR, n_fft=512, n_mels=40)
        np.testing.assert_allclose(basis, plain, rtol=1e-4, atol=1e-6 * plain.max())


def test_vtlp_moves_a_tone_to_the_bands_of_alpha_times_its_frequency():
    basis = dsp.mel_filterbank(sample_rate=SR, n_fft=512, n_mels=40)
    power, _ = _power(tone(1000.0))
    warped = _vtlp_filterbank(FRONTEND, jnp.array([1.25]))[0]
    band = int(np.argmax(np.asarray(power[0, 10]) @ np.asarray(warped)))
    target, _ = _power(tone(1250.0))
    assert band == int(np.argmax(np.asarray(target[0, 10]) @ basis))
    assert band > int(np.argmax(np.asarray(power[0, 10]) @ basis))


def test_time_mask_fills_exactly_the_requested_frames_with_the_valid_mean():
    rng = np.random.default_rng(0)
    feats = jnp.asarray(rng.standard_normal((2, 30, 4)), jnp.float32)
    feats = feats.at[1, 20:].set(0)
    n_frames = jnp.array([30, 20])
    starts, widths = jnp.array([[3, 25], [5, 18]]), jnp.array([[4, 5], [2, 2]])
    out = np.asarray(_mask_time(feats, n_frames, starts, widths))
    expected = np.asarray(feats).copy()
    expected[0, 3:7] = expected[0].mean(0)
    expected[0, 25:30] = np.asarray(feats[0]).mean(0)
    expected[1, 5:7] = np.asarray(feats[1, :20]).mean(0)
    expected[1, 18:20] = np.asarray(feats[1, :20]).mean(0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_feature_mask_fills_the_same_bands_of_every_block_on_valid_frames():
    rng = np.random.default_rng(1)
    feats = jnp.asarray(rng.standard_normal((2, 10, 12)), jnp.float32)  # 3 blocks of 4 bands
    feats = feats.at[1, 6:].set(0)
    n_frames = jnp.array([10, 6])
    starts, widths = jnp.array([[1], [3]]), jnp.array([[2], [1]])
    out = np.asarray(_mask_features(feats, n_frames, starts, widths, block=4))
    expected = np.asarray(feats).copy()
    for band in (1, 2, 5, 6, 9, 10):
        expected[0, :, band] = np.asarray(feats[0, :, band]).mean()
    for band in (3, 7, 11):
        expected[1, :6, band] = np.asarray(feats[1, :6, band]).mean()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_masks_write_a_given_fill_on_valid_frames_only():
    # The train step fills both kinds of mask with the mean of the unmasked features: a fill
    # passed in is written as it is, wherever a mask falls on a valid frame.
    rng = np.random.default_rng(2)
    feats = jnp.asarray(rng.standard_normal((2, 8, 6)), jnp.float32)  # 2 blocks of 3 bands
    fill = jnp.asarray(rng.standard_normal((2, 1, 6)), jnp.float32)
    n_frames = jnp.array([8, 5])
    out = _mask_time(feats, n_frames, jnp.array([[2], [3]]), jnp.array([[2], [4]]), fill=fill)
    out = _mask_features(
        out, n_frames, jnp.array([[0], [2]]), jnp.array([[1], [1]]), block=3, fill=fill
    )
    expected = np.asarray(feats).copy()
    fill = np.asarray(fill)
    expected[0, 2:4] = fill[0, 0]
    expected[0, :, [0, 3]] = fill[0, 0, [0, 3]][:, None]
    expected[1, 3:5] = fill[1, 0]  # frames 5 and 6 are padding
    expected[1, :5, [2, 5]] = fill[1, 0, [2, 5]][:, None]
    np.testing.assert_array_equal(out, expected)


def test_random_spans_cover_zero_to_max_width_inside_the_limit():
    limit = jnp.array([100, 5, 0, 30] * 64)
    starts, widths = _random_spans(jax.random.key(0), limit, 3, 10)
    starts, widths, limit = np.asarray(starts), np.asarray(widths), np.asarray(limit)[:, None]
    assert np.all(widths >= 0) and np.all(widths <= np.minimum(10, limit))
    assert np.all(starts >= 0) and np.all(starts + widths <= limit)
    assert set(np.unique(widths[limit[:, 0] == 100])) == set(range(11))
