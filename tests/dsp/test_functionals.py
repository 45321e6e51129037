"""Masked functionals against numpy and scipy, and the waveform-to-functionals utterance call."""

from __future__ import annotations

import dataclasses

import jax
import librosa
import numpy as np
import pytest
import scipy.stats

import dsp

SR = 16000
N_FUNCTIONALS = len(dsp.FUNCTIONALS)


def _reference(values: np.ndarray, frames: np.ndarray) -> list[float]:
    """numpy/scipy functionals of one descriptor's selected ``values`` at frame indices."""
    if values.size == 0:
        return [0.0] * N_FUNCTIONALS
    flat = values.size < 2 or np.ptp(values) == 0
    return [
        values.mean(),
        values.std(),
        *np.percentile(values, dsp.PERCENTILES),
        np.ptp(values),
        0.0 if flat else scipy.stats.skew(values),
        0.0 if flat else scipy.stats.kurtosis(values),
        scipy.stats.linregress(frames, values).slope if np.ptp(frames) > 0 else 0.0,
    ]


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_functionals_match_numpy_and_scipy(request, fast_jit, precision):
    if precision == "float64":
        request.getfixturevalue("x64")
    rng = np.random.default_rng(0)
    x = (10.0 + 3.0 * rng.gamma(2.0, size=(4, 40, 3))).astype(precision)
    n_frames = np.array([40, 17, 2, 0], dtype=np.int32)
    mask = rng.random((4, 40, 1)) < 0.7
    mask[2, :2, 0] = [True, False]  # one selected frame: no spread, no slope
    padded = x.copy()
    padded[1, 17:] = np.nan  # whatever padding holds must not matter
    padded[2, 2:] = 1e30
    out = fast_jit(lambda x, n, m: dsp.functionals(x, n, mask=m))(padded, n_frames, mask)
    assert out.shape == (4, 3 * N_FUNCTIONALS) and out.dtype == x.dtype
    rtol = 1e-10 if precision == "float64" else 2e-5
    for example, count in enumerate(n_frames):
        frames = np.flatnonzero(mask[example, :count, 0])
        for d in range(3):
            values = x[example, frames, d].astype(np.float64)
            expected = np.array(_reference(values, frames))
            actual = np.asarray(out[example, d * N_FUNCTIONALS : (d + 1) * N_FUNCTIONALS])
            # Skewness, kurtosis and slope are near 0 for some draws: a scaled absolute floor.
            np.testing.assert_allclose(
                actual, expected, rtol=rtol, atol=rtol * 10, err_msg=f"{example} {d}"
            )
    np.testing.assert_array_equal(out[3], 0.0)  # no valid frame: every functional 0


def test_functionals_of_a_constant_and_of_a_line(fast_jit):
    """Constant: zero spread, skewness, kurtosis and slope; a line: its slope, no skewness."""
    x = np.zeros((2, 50, 2), dtype=np.float32)
    x[0] = [3.7, 1e4 + 0.1]  # values whose mean rounds in float32
    x[1, :, 0] = 2.0 + 0.25 * np.arange(50)
    x[1, :, 1] = -1.0
    out = np.asarray(fast_jit(dsp.functionals)(x, np.array([50, 30])))
    out = out.reshape(2, 2, N_FUNCTIONALS)
    named = lambda block: dict(zip(dsp.FUNCTIONALS, block, strict=True))
    for value, block in zip([3.7, 1e4 + 0.1, None, -1.0], out.reshape(4, -1), strict=True):
        stats = named(block)
        if value is None:  # the line 2 + t / 4 over 30 frames
            np.testing.assert_allclose(stats["slope"], 0.25, rtol=1e-5)
            np.testing.assert_allclose(stats["mean"], 2.0 + 0.25 * 14.5, rtol=1e-6)
            np.testing.assert_allclose(stats["range"], 0.25 * 29, rtol=1e-6)
            np.testing.assert_allclose(stats["p50"], stats["mean"], rtol=1e-6)
            np.testing.assert_allclose(stats["skewness"], 0.0, atol=1e-5)
            np.testing.assert_allclose(stats["kurtosis"], -1.2, rtol=1e-2)  # uniform: -6/5
            continue
        for name in ("std", "range", "skewness", "kurtosis", "slope"):
            assert stats[name] == 0.0, (value, name)
        for name in ("mean", "p1", "p25", "p50", "p75", "p99"):
            assert stats[name] == np.float32(value), (value, name)


def test_functional_names():
    names = dsp.functional_names(["f0", "rms"])
    assert len(names) == 2 * N_FUNCTIONALS
    assert names[:3] == ("f0_mean", "f0_std", "f0_p1")
    assert names[N_FUNCTIONALS] == "rms_mean" and names[-1] == "rms_slope"
    assert dsp.FUNCTIONALS == (
        "mean",
        "std",
        "p1",
        "p25",
        "p50",
        "p75",
        "p99",
        "range",
        "skewness",
        "kurtosis",
        "slope",
    )
    with pytest.raises(ValueError, match="descriptor_names"):
        dsp.functional_names("f0")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(n_frames=np.array([3.0, 2.0])), "n_frames"),
        (dict(n_frames=np.array([3])), "n_frames"),
        (dict(mask=np.ones((2, 5, 1), np.float32)), "mask"),
        (dict(mask=np.ones((2, 4, 1), bool)), "mask"),
        (dict(x=np.ones(5, np.float32)), "x"),  # no frame axis
    ],
)
def test_functionals_name_the_bad_argument(kwargs, name):
    arguments = {"x": np.ones((2, 5, 3), np.float32), "n_frames": np.array([5, 2]), **kwargs}
    x = arguments.pop("x")
    n_frames = arguments.pop("n_frames")
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        dsp.functionals(x, n_frames, **arguments)


# ---------------------------------------------------------------------------------------------
# The utterance call: waveform batch -> LLDs -> functionals.


def _voice(num_samples: int, *, f0: float, seed: int) -> np.ndarray:
    """float64: a harmonic complex at ``f0`` with a slow vibrato, plus a little noise."""
    t = np.arange(num_samples) / SR
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 3 * t))) / SR
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    return 0.3 * voice + 0.01 * rng.standard_normal(num_samples)


def test_utterance_config_defaults_names_and_hashing():
    config = dsp.UtteranceConfig()
    names = config.descriptor_names
    assert len(names) == 43 and names[0] == "f0_semitones"
    assert names[1:4] == ("periodicity", "rms_db", "zcr")
    assert names[4:17] == tuple(f"mfcc{i}" for i in range(13))
    assert names[17:22] == tuple(f"spectral_{n}" for n in dsp.SPECTRAL_DESCRIPTORS)
    assert names[22:] == tuple(f"{n}_delta" for n in names[1:22])
    assert config.num_features == 43 * N_FUNCTIONALS == len(config.feature_names)
    assert config.feature_config == dsp.FeatureConfig(kind="mfcc")
    assert hash(dsp.UtteranceConfig(fmin=60)) == hash(config)
    assert dsp.UtteranceConfig(fmin=60) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.fmin = 50.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_fft", 511),
        ("win_length", 401),
        ("f0_frame_length", 1023),
        ("fmin", 10.0),  # a period longer than the YIN frame
        ("fmax", 9000.0),
        ("voicing_threshold", 0.0),
        ("roll_percent", 1.0),
        ("delta_width", 0),
        ("n_mfcc", 0),
        ("hop_length", 0),
        ("log_mel", 1),
    ],
)
def test_utterance_config_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        dsp.UtteranceConfig(**{field: value})


def test_utterance_functionals_of_a_padded_batch_equal_each_alone(fast_jit):
    """Each example's vector equals its own signal's alone; an empty example gives zeros."""
    config = dsp.UtteranceConfig()
    lengths = np.array([9600, 6170, 0], dtype=np.int32)
    signals = [_voice(9600, f0=180.0, seed=0), _voice(6170, f0=120.0, seed=1)]
    batch = np.full((3, 9600), 0.5, dtype=np.float32)  # loud padding: it must not leak
    for row, signal in enumerate(signals):
        batch[row, : signal.size] = signal
    run = fast_jit(dsp.utterance_functionals, static_argnums=2)
    together = np.asarray(run(batch, lengths, config))
    assert together.shape == (3, config.num_features) and np.all(np.isfinite(together))
    np.testing.assert_array_equal(together[2], 0.0)
    alone = np.asarray(run(signals[1].astype(np.float32), np.int32(6170), config))
    np.testing.assert_allclose(together[1], alone, rtol=1e-4, atol=1e-4 * np.abs(alone).max())
    # Known answers: each voice's median F0 in semitones above 27.5 Hz (within 0.2 st: the
    # vibrato spans +-0.5 st), mostly voiced.
    column = {name: i for i, name in enumerate(config.feature_names)}
    for row, f0 in enumerate([180.0, 120.0]):
        median = together[row, column["f0_semitones_p50"]]
        np.testing.assert_allclose(median, 12 * np.log2(f0 / 27.5), atol=0.2)
        assert together[row, column["periodicity_p25"]] > 0.9


def test_utterance_descriptors_match_librosa(x64, fast_jit, assert_close):
    """Every LLD column against its librosa reference on one float64 signal."""
    config = dsp.UtteranceConfig()
    y = _voice(8000, f0=150.0, seed=2)
    y[5000:6500] *= np.linspace(1.0, 0.0, 1500)  # a fade, then silence (unvoiced frames)
    y[6500:] = 0.0
    run = fast_jit(dsp.utterance_descriptors, static_argnums=2)
    llds, n_frames, mask = (np.asarray(a) for a in run(y[None], np.array([8000]), config))
    assert llds.shape == (1, 51, 43) and int(n_frames[0]) == 51 and mask.dtype == bool
    llds, mask = llds[0], mask[0]
    column = {name: i for i, name in enumerate(config.descriptor_names)}
    stft = dict(n_fft=512, hop_length=160, win_length=400)
    f0 = librosa.yin(y, sr=SR, fmin=60.0, fmax=600.0, frame_length=1024, hop_length=160)
    rms = librosa.feature.rms(y=y, frame_length=400, hop_length=160, dtype=np.float64)[0]
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_mels=40, dtype=np.float64, **stft)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=13).T
    expected = {
        "f0_semitones": 12 * np.log2(f0 / 27.5),
        "rms_db": librosa.amplitude_to_db(rms, top_db=None),
        "zcr": librosa.feature.zero_crossing_rate(y, frame_length=400, hop_length=160)[0],
        **{f"mfcc{i}": mfcc[:, i] for i in range(13)},
        "spectral_centroid": librosa.feature.spectral_centroid(y=y, sr=SR, **stft)[0],
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(y=y, sr=SR, **stft)[0],
        "spectral_rolloff": librosa.feature.spectral_rolloff(y=y, sr=SR, **stft)[0],
        "spectral_flatness": librosa.feature.spectral_flatness(y=y, **stft)[0],
        "spectral_flux": librosa.onset.onset_strength(
            S=np.abs(librosa.stft(y, **stft)), lag=1, max_size=1, center=False
        ),
    }
    # Logarithms of the fade's near-silent frames amplify rounding: 1e-7, not 1e-9.
    for name, reference in expected.items():
        assert_close(llds[:, column[name]], reference, rtol=1e-7, err_msg=name)
    # Deltas: librosa's Savitzky-Golay derivative with replicated edges is the regression delta.
    for name in ("rms_db", "mfcc3", "spectral_centroid"):
        reference = librosa.feature.delta(expected[name], width=5, mode="nearest")
        assert_close(llds[:, column[f"{name}_delta"]], reference, rtol=1e-7, err_msg=name)
    # F0's functionals read voiced frames, periodicity > 1 - voicing_threshold; others all.
    periodicity = llds[:, column["periodicity"]]
    np.testing.assert_array_equal(mask[:, 0], periodicity > 1 - config.voicing_threshold)
    assert mask[:, 1:].all() and 0 < mask[:, 0].sum() < 51


def test_utterance_log_mel_bands_match_librosa(x64, fast_jit, assert_close):
    """``log_mel=True`` appends the MFCCs' own log-mel bands (no deltas) after every other
    column, which stay as they were."""
    config = dsp.UtteranceConfig(log_mel=True)
    names = config.descriptor_names
    plain = dsp.UtteranceConfig()
    assert names[:43] == plain.descriptor_names
    assert names[43:] == tuple(f"log_mel{i}" for i in range(40))
    assert config.num_features == (43 + 40) * N_FUNCTIONALS
    y = _voice(6000, f0=200.0, seed=4)
    run = fast_jit(dsp.utterance_descriptors, static_argnums=2)
    llds, _, mask = (np.asarray(a)[0] for a in run(y[None], np.array([6000]), config))
    mel = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=512, hop_length=160, win_length=400, n_mels=40, dtype=np.float64
    )
    assert_close(llds[:, 43:], librosa.power_to_db(mel, top_db=None).T, rtol=1e-7)
    without = np.asarray(run(y[None], np.array([6000]), plain)[0])[0]
    np.testing.assert_array_equal(llds[:, :43], without)
    assert mask[:, 43:].all()


def test_utterance_voiced_columns_describe_voiced_frames_only(fast_jit):
    """``voiced=True`` appends every LLD but F0 again (no deltas), masked to F0's voiced
    frames; their functionals equal those of the same columns over the voiced frames alone."""
    config = dsp.UtteranceConfig(voiced=True)
    plain = dsp.UtteranceConfig()
    base = plain.descriptor_names[1:22]
    assert base[0] == "periodicity" and base[-1] == "spectral_flux"
    assert config.descriptor_names == (*plain.descriptor_names, *(f"voiced_{n}" for n in base))
    assert config.num_features == (43 + 21) * N_FUNCTIONALS
    # Half voice, half noise: both voiced and unvoiced frames.
    noise = 0.05 * np.random.default_rng(6).standard_normal(4000)
    y = np.concatenate([_voice(4000, f0=180.0, seed=5), noise]).astype(np.float32)
    run = fast_jit(dsp.utterance_descriptors, static_argnums=2)
    llds, n, mask = (np.asarray(a)[0] for a in run(y[None], np.array([8000]), config))
    voiced = mask[:, 0]
    assert 0 < voiced.sum() < n
    np.testing.assert_array_equal(llds[:, 43:], llds[:, 1:22])
    np.testing.assert_array_equal(mask[:, 43:], np.repeat(voiced[:, None], 21, axis=1))
    np.testing.assert_array_equal(mask[:, 1:43], True)
    out = np.asarray(fast_jit(dsp.utterance_functionals, static_argnums=2)(y, 8000, config))
    # Slopes are against the frames' own indices, so the unvoiced frames are masked, not cut.
    masked = fast_jit(dsp.functionals)(llds[None, :, 1:22], n[None], mask=voiced[None, :, None])
    np.testing.assert_allclose(
        out[43 * N_FUNCTIONALS :], np.asarray(masked)[0], rtol=1e-4, atol=1e-6
    )


def test_utterance_functionals_leading_axes_and_vmap(fast_jit):
    """Leading axes batch as vmap over examples does."""
    config = dsp.UtteranceConfig(n_mfcc=4, n_mels=20)
    x = np.stack([_voice(4000, f0=200.0, seed=s) for s in range(4)]).astype(np.float32)
    x = x.reshape(2, 2, 4000)
    lengths = np.array([[4000, 3000], [2500, 4000]], dtype=np.int32)
    run = fast_jit(dsp.utterance_functionals, static_argnums=2)
    out = run(x, lengths, config)
    assert out.shape == (2, 2, config.num_features)
    vmapped = fast_jit(jax.vmap(lambda x, n: dsp.utterance_functionals(x, n, config)))
    np.testing.assert_allclose(
        vmapped(x.reshape(4, 4000), lengths.reshape(4)), out.reshape(4, -1), rtol=1e-5, atol=1e-3
    )
