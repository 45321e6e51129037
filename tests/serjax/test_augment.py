"""On-device augmentation and S2's offline copies, each checked against what it claims."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import dsp
from serjax import augment
from serjax.augment import AugmentConfig
from serjax.features import FeatureSpec, model_inputs

SR = 16000
FRONTEND = dsp.FeatureConfig(deltas=2, cmvn="meanvar")
SPEC = FeatureSpec(FRONTEND)
# Every transform on, each example picked by each one.
ALL_ON = AugmentConfig(
    noise_prob=1.0,
    gain_prob=1.0,
    speed_prob=1.0,
    pitch_prob=1.0,
    stretch_prob=1.0,
    vtlp_prob=1.0,
    time_masks=2,
    time_mask_frames=10,
    freq_masks=2,
    freq_mask_bins=6,
)


def _batch(lengths, total, seed=0):
    """Noise-like 'speech' zero-padded to ``total`` samples, with its lengths."""
    rng = np.random.default_rng(seed)
    x = 0.1 * rng.standard_normal((len(lengths), total)).astype(np.float32)
    x[np.arange(total)[None, :] >= np.asarray(lengths)[:, None]] = 0
    return jnp.asarray(x), jnp.asarray(lengths, jnp.int32)


def _tone(freq, seconds=1.0, sr=SR):
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def _snr_db(clean, noisy, length):
    clean, noisy = np.asarray(clean[:length], np.float64), np.asarray(noisy[:length], np.float64)
    return 10 * np.log10(np.sum(clean**2) / np.sum((noisy - clean) ** 2))


# Jitted once per shape: op-by-op dispatch would compile every small op on its own.
_inputs = jax.jit(augment.augmented_inputs, static_argnums=(3, 4))
_waveforms = jax.jit(augment.augment_waveforms, static_argnums=3)
_features = jax.jit(augment.augment_features, static_argnums=(3, 4))
_add_noise = jax.jit(augment.add_noise)
_change_speed = jax.jit(augment.change_speed)
_shift_pitch = jax.jit(augment.shift_pitch)
_stretch_time = jax.jit(augment.stretch_time)
_vtlp_filterbank = jax.jit(augment.vtlp_filterbank, static_argnums=0)
_mask_time = jax.jit(augment.mask_time)
_mask_features = jax.jit(augment.mask_features, static_argnames="block")
_random_spans = jax.jit(augment.random_spans, static_argnums=(2, 3))
_mixup = jax.jit(augment.mixup, static_argnums=4)
_mixup_targets = jax.jit(augment.mixup_targets, static_argnums=1)
_power_stage = jax.jit(dsp.power_stage, static_argnums=2)
_plain = jax.jit(model_inputs, static_argnums=2)


# --- configuration -----------------------------------------------------------------------------


def test_defaults_are_off_and_hashable():
    aug = AugmentConfig()
    assert not aug.enabled and not aug.transforms_inputs
    hash(ALL_ON)
    assert ALL_ON.enabled and ALL_ON.waveform_transforms and ALL_ON.spectral_transforms
    assert AugmentConfig(mixup_alpha=0.2).enabled
    assert not AugmentConfig(mixup_alpha=0.2).transforms_inputs


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("noise_prob", 1.5),
        ("snr_db", (30.0, 10.0)),
        ("speed", (0.0, 1.1)),
        ("noise_colors", ("blue",)),
        ("time_masks", -1),
        ("mixup_alpha", -0.1),
    ],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**{field: value})


def test_from_config_reads_fields_and_honours_enabled():
    cfg = ml_collections.ConfigDict(
        {"enabled": True, "noise_prob": 0.5, "snr_db": [5.0, 15.0], "offline": True}
    )
    aug = AugmentConfig.from_config(cfg)
    assert aug.noise_prob == 0.5 and aug.snr_db == (5.0, 15.0) and aug.offline
    cfg.enabled = False
    off = AugmentConfig.from_config(cfg)
    assert not off.enabled and off.offline and off.snr_db == (5.0, 15.0)


# --- the whole input path ----------------------------------------------------------------------


def test_off_is_exactly_model_inputs():
    # The same program, not merely the same numbers: augmentation off costs nothing.
    x, lengths = _batch([8000, 5000, 6400], 8000)
    key = jax.random.key(1)
    expected = str(jax.make_jaxpr(lambda k, x, n: model_inputs(x, n, SPEC))(key, x, lengths))
    for aug in (AugmentConfig(), AugmentConfig(mixup_alpha=0.4, offline=True), None):
        program = jax.make_jaxpr(
            lambda k, x, n, aug=aug: augment.augmented_inputs(k, x, n, SPEC, aug)
        )
        assert str(program(key, x, lengths)) == expected


def test_power_stage_transforms_at_their_identity_give_the_plain_features():
    # Picked with probability 1 but with parameters that change nothing: the split front end
    # (power stage, transforms, features from power with a per-example filterbank) must then
    # give dsp.features.
    identity = AugmentConfig(
        pitch_prob=1.0,
        semitones=(0.0, 0.0),
        stretch_prob=1.0,
        stretch=(1.0, 1.0),
        vtlp_prob=1.0,
        vtlp_alpha=(1.0, 1.0),
    )
    x, lengths = _batch([8000, 5000, 6400, 3000], 8000)
    plain, steps = _plain(x, lengths, SPEC)
    got, got_steps = _inputs(jax.random.key(0), x, lengths, SPEC, identity)
    np.testing.assert_array_equal(got_steps, steps)
    np.testing.assert_allclose(got, plain, atol=1e-3)


def test_same_key_same_output_other_key_other_output_shapes_kept():
    x, lengths = _batch([8000, 6000, 7000, 3000], 8000)
    a = _inputs(jax.random.key(3), x, lengths, SPEC, ALL_ON)
    b = _inputs(jax.random.key(3), x, lengths, SPEC, ALL_ON)
    c = _inputs(jax.random.key(4), x, lengths, SPEC, ALL_ON)
    plain = _plain(x, lengths, SPEC)
    assert a[0].shape == plain[0].shape and a[1].shape == plain[1].shape
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[0], c[0])
    assert np.all(np.isfinite(a[0]))
    # Padded frames stay zero: the valid counts the model receives are the truth.
    frames = np.arange(a[0].shape[1])
    for row, n in zip(np.asarray(a[0]), np.asarray(a[1]), strict=True):
        assert np.all(row[frames >= n] == 0)
        assert np.any(row[n - 1] != 0)


def test_waveform_frontend_allows_only_waveform_transforms():
    spec = FeatureSpec(None)
    x, lengths = _batch([4000, 3000], 4000)
    with pytest.raises(ValueError, match="spectral features"):
        _inputs(jax.random.key(0), x, lengths, spec, ALL_ON)
    aug = AugmentConfig(gain_prob=1.0, gain_db=(6.0, 6.0))
    y, steps = _inputs(jax.random.key(0), x, lengths, spec, aug)
    np.testing.assert_allclose(y[..., 0], x * 10 ** (6 / 20), rtol=1e-6)
    np.testing.assert_array_equal(steps, [4000, 3000])


# --- waveform stage ----------------------------------------------------------------------------


def test_noise_reaches_the_drawn_snr_over_valid_samples():
    lengths = [8000, 6000, 3000, 7777] * 4
    x, lens = _batch(lengths, 8000)
    aug = AugmentConfig(noise_prob=1.0, snr_db=(5.0, 25.0), noise_colors=("white", "pink"))
    y, new_lengths = _waveforms(jax.random.key(7), x, lens, aug)
    np.testing.assert_array_equal(new_lengths, lengths)
    snrs = [_snr_db(x[i], y[i], n) for i, n in enumerate(lengths)]
    assert all(5.0 - 0.5 <= s <= 25.0 + 0.5 for s in snrs), snrs
    assert np.ptp(snrs) > 5.0  # each example draws its own SNR
    for i, n in enumerate(lengths):
        assert np.all(np.asarray(y[i, n:]) == 0)


def test_noise_has_the_requested_snr_and_color():
    from scipy import signal

    total = 2**16
    x, lens = _batch([total, 30000], total)
    snr = jnp.array([0.0, 17.5])
    y = _add_noise(jax.random.key(0), x, lens, snr, jnp.array([False, True]))
    measured = [_snr_db(x[0], y[0], total), _snr_db(x[1], y[1], 30000)]
    np.testing.assert_allclose(measured, snr, atol=0.5)
    assert np.all(np.asarray(y[1, 30000:]) == 0)
    # White noise has a flat spectrum; pink noise falls by 3 dB an octave (slope -1 in log-log).
    for row, length, slope in ((0, total, 0.0), (1, 30000, -1.0)):
        noise = np.asarray(y[row, :length]) - np.asarray(x[row, :length])
        freqs, psd = signal.welch(noise, fs=SR, nperseg=2048)
        band = (freqs > 100) & (freqs < 6000)
        fitted = np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0]
        assert abs(fitted - slope) < 0.1


def test_gain_picks_examples_by_probability_and_scales_them_by_the_drawn_decibels():
    x, lens = _batch([8000, 5000, 8000, 7000] * 16, 8000)
    aug = AugmentConfig(gain_prob=0.5, gain_db=(-6.0, 6.0))
    y, new_lengths = _waveforms(jax.random.key(0), x, lens, aug)
    np.testing.assert_array_equal(new_lengths, lens)
    untouched = [bool(np.array_equal(y[i], x[i])) for i in range(64)]
    assert 20 <= sum(untouched) <= 44  # half expected; the others bit for bit as they were
    picked = [i for i in range(64) if not untouched[i]]
    gains = [20 * np.log10(np.linalg.norm(y[i]) / np.linalg.norm(x[i])) for i in picked]
    assert all(-6.0 <= g <= 6.0 for g in gains) and np.ptp(gains) > 5.0
    # Each picked example is scaled as a whole, by exactly its own gain.
    for i, gain in zip(picked, gains, strict=True):
        np.testing.assert_allclose(y[i], x[i] * 10 ** (gain / 20), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("factor", [0.9, 1.1, 1.25])
def test_speed_matches_exact_band_limited_resampling(factor):
    # Tones spread over the band, read at n * factor: the exact answer is known in closed form.
    rng = np.random.default_rng(0)
    freqs = rng.uniform(50, 0.9 * SR / 2 / max(factor, 1.0), 30)
    amps, phases = rng.uniform(0.1, 1, 30), rng.uniform(0, 2 * np.pi, 30)

    def tones(t):
        return np.sum(
            amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t / SR + phases[:, None]), 0
        )

    length, total = 12000, 16000
    x = np.zeros((1, total), np.float32)
    x[0, :length] = tones(np.arange(length))
    y, new_lengths = _change_speed(jnp.asarray(x), jnp.array([length]), jnp.array([factor]))
    expected_length = int(np.floor(length / factor + 0.5))
    assert int(new_lengths[0]) == expected_length
    assert np.all(np.asarray(y[0, expected_length:]) == 0)
    n = np.arange(1000, expected_length - 1000)  # away from the signal's abrupt ends
    exact = tones(n * factor)
    error = np.asarray(y[0, n], np.float64) - exact
    assert 10 * np.log10(np.sum(exact**2) / np.sum(error**2)) > 40


def test_read_positions_keep_the_fraction_on_long_signals():
    step = np.array([0.9, 1.1, 2.2, 1.7999], np.float32)
    low, frac = jax.jit(augment.read_positions, static_argnums=0)(300_000, jnp.asarray(step))
    exact = np.arange(300_000)[None, :] * step.astype(np.float64)[:, None]
    np.testing.assert_array_equal(low, np.floor(exact))
    np.testing.assert_allclose(frac, exact - np.floor(exact), atol=2e-5)


def test_speed_moves_a_tone_by_the_factor_and_cuts_at_the_padded_length():
    x = jnp.asarray(_tone(1000.0, 0.5))[None]
    y, n = _change_speed(x, jnp.array([8000]), jnp.array([1.2]))
    spectrum = np.abs(np.fft.rfft(np.asarray(y[0, : int(n[0])]), n=SR))
    assert abs(np.argmax(spectrum) - 1200) <= 1
    slow, n_slow = _change_speed(x, jnp.array([8000]), jnp.array([0.8]))
    assert int(n_slow[0]) == 8000  # 10000 samples do not fit in T = 8000
    np.testing.assert_allclose(_change_speed(x, jnp.array([8000]), jnp.ones(1))[0], x, atol=1e-5)


# --- power stage -------------------------------------------------------------------------------


def _power(y):
    power, n_frames = _power_stage(jnp.asarray(y)[None], jnp.array([len(y)]), FRONTEND)
    return power, n_frames


def _peak_bin(power, n_frames):
    return int(np.argmax(np.asarray(power[0, : int(n_frames[0])]).mean(0)))


@pytest.mark.parametrize(("semitones", "bin_"), [(12.0, 64), (-12.0, 16), (7.0, 48), (0.0, 32)])
def test_pitch_shift_moves_a_tone_by_the_factor(semitones, bin_):
    power, n_frames = _power(_tone(1000.0))  # 1 kHz is bin 32 of a 512-point FFT at 16 kHz
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
    power, n_frames = _power(_tone(1000.0))  # 101 frames, padded below to 141
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
    power, _ = _power(_tone(1000.0))
    warped = _vtlp_filterbank(FRONTEND, jnp.array([1.25]))[0]
    band = int(np.argmax(np.asarray(power[0, 10]) @ np.asarray(warped)))
    target, _ = _power(_tone(1250.0))
    assert band == int(np.argmax(np.asarray(target[0, 10]) @ basis))
    assert band > int(np.argmax(np.asarray(power[0, 10]) @ basis))


# --- SpecAugment -------------------------------------------------------------------------------


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


def test_random_masks_stay_inside_the_valid_region_and_requested_widths():
    x, lens = _batch([8000, 3000, 1200, 6500], 8000)
    feats, n_frames = _plain(x, lens, SPEC)
    aug = AugmentConfig(time_masks=2, time_mask_frames=12, freq_masks=2, freq_mask_bins=7)
    widths_seen = set()
    for seed in range(6):
        out = np.asarray(_features(jax.random.key(seed), feats, n_frames, FRONTEND, aug))
        changed = out != np.asarray(feats)
        for b, n in enumerate(np.asarray(n_frames)):
            assert not changed[b, n:].any()  # never past the valid frames
            rows = changed[b, :n]
            timed = rows.all(axis=1)  # a time mask fills every feature of a frame
            frames = np.flatnonzero(timed)
            runs = np.split(frames, np.flatnonzero(np.diff(frames) > 1) + 1) if frames.size else []
            # Two masks of up to 12 frames: at most two runs (one if they touch), 24 frames.
            assert len(runs) <= 2 and frames.size <= 2 * 12
            widths_seen.update(len(r) for r in runs)
            if timed.all():
                continue
            # A frequency mask fills the same bands in the static, delta and delta-delta
            # blocks on every frame; nothing else changes.
            bands = rows[~timed].reshape(-1, 3, 40).all(axis=0)
            np.testing.assert_array_equal(bands[0], bands[1])
            np.testing.assert_array_equal(bands[0], bands[2])
            assert bands[0].sum() <= 2 * 7
            assert not rows[~timed][:, ~np.tile(bands[0], 3)].any()
    assert max(widths_seen) >= 8  # the spans do reach the requested width (up to 12 merged)


def test_random_spans_cover_zero_to_max_width_inside_the_limit():
    limit = jnp.array([100, 5, 0, 30] * 64)
    starts, widths = _random_spans(jax.random.key(0), limit, 3, 10)
    starts, widths, limit = np.asarray(starts), np.asarray(widths), np.asarray(limit)[:, None]
    assert np.all(widths >= 0) and np.all(widths <= np.minimum(10, limit))
    assert np.all(starts >= 0) and np.all(starts + widths <= limit)
    assert set(np.unique(widths[limit[:, 0] == 100])) == set(range(11))


# --- mixup -------------------------------------------------------------------------------------


@functools.cache
def _mixed_batch():
    """A mixup of 2048 rows, the last 48 of them padding, and its inputs."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2048, 6, 3)).astype(np.float32)
    steps = rng.integers(1, 7, 2048).astype(np.int32)
    mask = np.arange(2048) < 2000
    labels = rng.integers(0, 4, 2048).astype(np.int32)
    mixed, new_steps, pairing = _mixup(jax.random.key(0), x, steps, mask, 0.4)
    targets = _mixup_targets(labels, 4, pairing)
    outputs = [np.asarray(a) for a in (mixed, new_steps, *pairing, targets)]
    return (x, steps, mask, labels), outputs


def test_mixup_pairs_real_rows_and_mixes_inputs_and_labels_alike():
    (x, steps, mask, labels), (mixed, new_steps, partner, weight, targets) = _mixed_batch()
    assert sorted(partner[:2000]) == list(range(2000))  # a permutation of the real rows
    np.testing.assert_array_equal(partner[2000:], np.arange(2000, 2048))
    np.testing.assert_array_equal(weight[2000:], 1.0)
    assert np.all((weight >= 0) & (weight <= 1))
    w = weight[:, None, None]
    np.testing.assert_allclose(mixed, w * x + (1 - w) * x[partner], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        new_steps, np.where(mask, np.maximum(steps, steps[partner]), steps)
    )
    want = np.zeros((2048, 4))
    np.add.at(want, (np.arange(2048), labels), weight)
    np.add.at(want, (np.arange(2048), labels[partner]), 1 - weight)
    np.testing.assert_allclose(targets, want, rtol=1e-6, atol=1e-6)


def test_mixup_weights_follow_beta_alpha_alpha():
    _, (_, _, partner, weight, _) = _mixed_batch()
    weight = weight[:2000]
    # Beta(0.4, 0.4): mean 1/2, variance 1 / (4 (2 alpha + 1)) = 0.139, mass near 0 and 1.
    assert abs(weight.mean() - 0.5) < 0.03
    assert abs(weight.var() - 1 / (4 * 1.8)) < 0.01
    assert np.mean(partner[:2000] == np.arange(2000)) < 0.01  # rows really are mixed


def test_training_inputs_add_mixup_only_when_enabled():
    x, lengths = _batch([8000, 5000, 6400, 3000], 8000)
    mask = jnp.array([True, True, True, False])
    plain = _plain(x, lengths, SPEC)
    inputs = jax.jit(augment.training_inputs, static_argnums=(4, 5))
    got_x, got_steps, pairing = inputs(jax.random.key(0), x, lengths, mask, SPEC, AugmentConfig())
    assert pairing is None
    np.testing.assert_array_equal(got_x, plain[0])
    np.testing.assert_array_equal(got_steps, plain[1])
    aug = AugmentConfig(mixup_alpha=0.2)
    shapes = jax.eval_shape(
        lambda k: augment.training_inputs(k, x, lengths, mask, SPEC, aug), jax.random.key(0)
    )
    assert isinstance(shapes[2], augment.MixupPairing) and shapes[2].weight.shape == (4,)
    assert shapes[0].shape == plain[0].shape


# --- offline copies (S2) -----------------------------------------------------------------------


def _speech_like(seconds=1.3):
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 150 + 30 * np.sin(2 * np.pi * 2 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(h * phase) / h for h in range(1, 12))
    return 0.2 * voiced * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(
        len(t)
    )


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_offline_stretch_is_librosas_time_stretch(rate):
    librosa = pytest.importorskip("librosa")
    y = _speech_like()
    ours = augment.stretch_waveform(y, rate)
    assert len(ours) == round(len(y) / rate)
    np.testing.assert_allclose(ours, librosa.effects.time_stretch(y, rate=rate), atol=1e-9)


@pytest.mark.parametrize("semitones", [-2.0, 3.5])
def test_offline_pitch_shift_is_librosas_pitch_shift(semitones):
    librosa = pytest.importorskip("librosa")
    y = _speech_like()
    ours = augment.shift_waveform(y, SR, semitones)
    assert len(ours) == len(y)
    expected = librosa.effects.pitch_shift(y, sr=SR, n_steps=semitones)
    np.testing.assert_allclose(ours, expected, atol=1e-7)


def test_offline_expansion_makes_three_copies_per_file_reproducibly():
    waves = [_speech_like(0.5).astype(np.float32), _speech_like(0.7).astype(np.float32)]
    aug = AugmentConfig(snr_db=(10.0, 10.0), semitones=(2.0, 2.0), stretch=(1.25, 1.25))
    out, source = augment.expand_offline(waves, sample_rate=SR, aug=aug, seed=0)
    assert len(out) == 8
    np.testing.assert_array_equal(source, [0, 1, 0, 0, 0, 1, 1, 1])
    assert out[0] is waves[0] and all(w.dtype == np.float32 for w in out)
    noisy, shifted, stretched = out[2:5]
    assert abs(_snr_db(waves[0], noisy, len(noisy)) - 10.0) < 0.01
    assert len(shifted) == len(waves[0]) and len(stretched) == round(len(waves[0]) / 1.25)
    # A file's copies depend on the seed and its index only, not on the other files.
    alone, _ = augment.expand_offline(waves[:1], sample_rate=SR, aug=aug, seed=0)
    np.testing.assert_array_equal(alone[1], noisy)
    other, _ = augment.expand_offline(waves[:1], sample_rate=SR, aug=aug, seed=1)
    assert not np.array_equal(other[1], noisy)
