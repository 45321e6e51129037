"""Trimming non-speech and removing DC: padding with silence or low noise gives back the clip."""

import numpy as np
import pytest
import soundfile as sf
import soxr
from data_testlib import real_folder, tone, write_audio

from serjax.data import AudioError, Preprocessing, decode, speech_bounds, trim_bounds
from serjax.data.audio import ac_peak
from serjax.data.silence import ACTIVITY_MARGIN_DB, frame_levels, speech_threshold

RATE = 16000
PAD = round(1.5 * RATE)
# -60 dBFS RMS: a quiet room through a cheap microphone.
NOISE_RMS = 1e-3


def _utterance(seconds: float = 2.0) -> np.ndarray:
    """Three "syllables" of a 200 Hz harmonic sound at different levels, with pauses between
    them at the noise level of a studio (-70 dBFS): a speech-like level contour."""
    rng = np.random.default_rng(7)
    t = np.arange(round(seconds * RATE)) / RATE
    voice = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 1.5 * t / seconds * 2), 0, None) ** 0.5
    x = 0.2 * voice * envelope + rng.normal(scale=10 ** (-70 / 20), size=t.size)
    return x.astype(np.float32)


def _padded(x: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pads = [
        np.zeros(PAD) if kind == "zeros" else rng.normal(scale=NOISE_RMS, size=PAD)
        for _ in range(2)
    ]
    return np.concatenate([pads[0], x, pads[1]]).astype(np.float32)


def test_threshold_is_p56_activity_threshold_hand_computed():
    # Two frames at -20 dB, two at -30 dB, one at -60 dB: the two loudest have mean power
    # -20 dB; with the -30 dB frames the mean is 10 log10((2e-2 + 2e-3) / 4) = -22.6 dB, and
    # -30 lies within 15.9 dB of it; the -60 dB frame is not, so the active level is -22.6 dB.
    levels = np.array([-60.0, -20.0, -30.0, -20.0, -30.0])
    active = 10 * np.log10((2 * 10**-2 + 2 * 10**-3) / 4)
    assert speech_threshold(levels) == pytest.approx(active - ACTIVITY_MARGIN_DB)
    # Never lower than librosa's 60 dB under the loudest frame; frames below -80 dBFS (digital
    # silence) never count.
    assert speech_threshold(np.array([-20.0, -95.0, -95.0]), top_db=60) == pytest.approx(-35.9)
    assert speech_threshold(np.array([-20.0, -20.0]), top_db=10) == pytest.approx(-30.0)


@pytest.mark.parametrize("kind", ["zeros", "noise"])
def test_padding_gives_back_the_clip(kind):
    x = _utterance()
    start, end = speech_bounds(x, RATE)
    y = _padded(x, kind)
    pstart, pend = speech_bounds(y, RATE)
    # Digital silence is cut to the sample (keeping one); noise 40 dB under the speech to the
    # nearest short frame (16 ms), plus the 10 ms kept.
    tolerance = 1 if kind == "zeros" else round(0.03 * RATE)
    assert abs(pstart - PAD - start) <= tolerance
    assert abs(pend - PAD - end) <= tolerance
    # librosa's rule keeps the -60 dBFS noise: it is within 60 dB of the loudest frame.
    if kind == "noise":
        assert trim_bounds(y) == (0, y.size)


def test_a_recording_without_pauses_is_kept_whole():
    # A tone whose first and last 0.2 s are 12 dB quieter: all of it is within P.56's margin.
    x = tone(1.0, RATE, 300.0)
    x[: RATE // 5] *= 0.25
    x[-RATE // 5 :] *= 0.25
    assert speech_bounds(x, RATE) == (0, x.size)


def test_the_dc_offset_does_not_move_the_bounds():
    x = _padded(_utterance(), "noise")
    assert speech_bounds(x + np.float32(0.3), RATE) == speech_bounds(x, RATE)


def test_emodb_clip_padded_with_silence_or_noise():
    wav = real_folder("emodb", "wav")
    x, rate = sf.read(wav / "16a01Wb.wav", dtype="float32")
    assert rate == RATE
    prep = Preprocessing(sample_rate=RATE, trim_silence=True, remove_dc=True)
    expected = prep.from_array(x, RATE)
    assert 0.6 * x.size < expected.size < x.size  # some of its own edges are cut
    for kind in ("zeros", "noise"):
        got = prep.from_array(_padded(x, kind), RATE)
        # The 3 s of padding go; what is left is the clip's own samples, give or take a few
        # short frames of its quiet edges (the frame grid moves with the padding).
        assert abs(got.size - expected.size) <= round(0.05 * RATE), kind
        offset = int(np.argmax(np.correlate(got[:4000], expected[:2000], mode="valid")))
        n = min(got.size - offset, expected.size)
        assert n > expected.size - round(0.05 * RATE)
        np.testing.assert_allclose(got[offset : offset + n], expected[:n], atol=2e-3)


# --- DC ------------------------------------------------------------------------------------


def test_ac_peak_ignores_the_offset():
    assert ac_peak(np.full(100, 0.3, np.float32)) == 0.0
    assert ac_peak(np.array([0.5, 0.1, 0.3], np.float32)) == pytest.approx(0.2)


@pytest.mark.parametrize("rate", [RATE, 44100])
def test_a_constant_is_silent(tmp_path, rate):
    path = tmp_path / "dc.wav"
    sf.write(path, np.full(rate, 0.25, np.float32), rate, subtype="FLOAT")
    for remove_dc in (False, True):
        with pytest.raises(AudioError, match="silent") as info:
            decode(path, RATE, remove_dc=remove_dc)
        assert info.value.path == path
    with pytest.raises(AudioError, match="silent"):
        Preprocessing(sample_rate=RATE).from_array(np.full(RATE, -0.1, np.float32), RATE)


@pytest.mark.parametrize("rate", [RATE, 44100])
def test_added_dc_is_removed_before_resampling(tmp_path, rate):
    x = soxr.resample(_utterance(), RATE, rate).astype(np.float32)
    clean = write_audio(tmp_path / "clean.wav", x, rate)
    shifted = tmp_path / "shifted.wav"
    sf.write(shifted, sf.read(clean, dtype="float32")[0] + 0.3, rate, subtype="FLOAT")
    prep = Preprocessing(sample_rate=RATE, remove_dc=True, trim_silence=True)
    reference = prep.load(clean)
    assert abs(reference.mean()) < 1e-6
    # float32 rounding of samples shifted by 0.3 (2**-25 relative), through the resampler.
    np.testing.assert_allclose(prep.load(shifted), reference, atol=1e-6)
    # Without removal, the offset stays (and, resampled, rings at both ends).
    kept = Preprocessing(sample_rate=RATE).load(shifted)
    assert kept.mean() == pytest.approx(0.3 + float(x.mean()), abs=1e-3)


def test_frame_levels_match_librosa():
    librosa = pytest.importorskip("librosa")
    x = _padded(_utterance(0.5), "noise")
    rms = librosa.feature.rms(y=x, frame_length=2048, hop_length=512, pad_mode="constant")[0]
    np.testing.assert_allclose(frame_levels(x), 20 * np.log10(np.maximum(rms, 1e-5)), atol=1e-4)
