"""S2's offline copies against librosa's time stretch and pitch shift."""

import numpy as np
import pytest
from augment_testlib import SR, snr_db

from serjax.augment import AugmentConfig, offline


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
    ours = offline.stretch_waveform(y, rate)
    assert len(ours) == round(len(y) / rate)
    np.testing.assert_allclose(ours, librosa.effects.time_stretch(y, rate=rate), atol=1e-9)


@pytest.mark.parametrize("semitones", [-2.0, 3.5])
def test_offline_pitch_shift_is_librosas_pitch_shift(semitones):
    librosa = pytest.importorskip("librosa")
    y = _speech_like()
    ours = offline.shift_waveform(y, SR, semitones)
    assert len(ours) == len(y)
    expected = librosa.effects.pitch_shift(y, sr=SR, n_steps=semitones)
    np.testing.assert_allclose(ours, expected, atol=1e-7)


def test_offline_expansion_makes_three_copies_per_file_reproducibly():
    waves = [_speech_like(0.5).astype(np.float32), _speech_like(0.7).astype(np.float32)]
    aug = AugmentConfig(snr_db=(10.0, 10.0), semitones=(2.0, 2.0), stretch=(1.25, 1.25))
    out, source = offline.expand_offline(waves, sample_rate=SR, aug=aug, seed=0)
    assert len(out) == 8
    np.testing.assert_array_equal(source, [0, 1, 0, 0, 0, 1, 1, 1])
    assert out[0] is waves[0] and all(w.dtype == np.float32 for w in out)
    noisy, shifted, stretched = out[2:5]
    assert abs(snr_db(waves[0], noisy, len(noisy)) - 10.0) < 0.01
    assert len(shifted) == len(waves[0]) and len(stretched) == round(len(waves[0]) / 1.25)
    # A file's copies depend on the seed and its index only, not on the other files.
    alone, _ = offline.expand_offline(waves[:1], sample_rate=SR, aug=aug, seed=0)
    np.testing.assert_array_equal(alone[1], noisy)
    other, _ = offline.expand_offline(waves[:1], sample_rate=SR, aug=aug, seed=1)
    assert not np.array_equal(other[1], noisy)
