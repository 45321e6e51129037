import os
import pathlib

import numpy as np
import pytest
import soundfile as sf
from data_testlib import real_folder, tone, write_audio

from serjax.data import (
    AudioCache,
    AudioError,
    Preprocessing,
    Utterance,
    decode,
    load_audio,
    trim_bounds,
)
from serjax.data import audio as audio_lib

# 16-bit files carry quantisation noise of half an LSB.
LSB = 1.0 / 32768


def _sines(freqs_amps, seconds, sample_rate):
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return sum(a * np.sin(2 * np.pi * f * t) for f, a in freqs_amps)


# --- decoding, down-mixing, resampling --------------------------------------------------------


def test_stereo_is_averaged_and_resampled(tmp_path):
    left = _sines([(300.0, 0.6)], 1.0, 48000)
    right = _sines([(1100.0, 0.2)], 1.0, 48000)
    path = write_audio(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 48000)
    x = load_audio(path, 16000)
    assert x.dtype == np.float32 and x.shape == (16000,)
    expected = _sines([(300.0, 0.3), (1100.0, 0.1)], 1.0, 16000)
    # Away from the edges, where the resampling filter sees zeros beyond the signal.
    np.testing.assert_allclose(x[200:-200], expected[200:-200], atol=5 * LSB)


def test_resampling_removes_content_above_the_new_nyquist(tmp_path):
    # 12 kHz cannot exist at 16 kHz; without an anti-aliasing filter it would fold to 4 kHz.
    x96 = _sines([(1000.0, 0.4), (12000.0, 0.4)], 0.5, 96000)
    path = write_audio(tmp_path / "hi.wav", x96, 96000)
    x = load_audio(path, 16000)
    expected = _sines([(1000.0, 0.4)], 0.5, 16000)
    np.testing.assert_allclose(x[200:-200], expected[200:-200], atol=1e-3)


def test_format_is_read_from_the_content_not_the_name(tmp_path):
    x = tone(0.25, 8000)
    path = write_audio(tmp_path / "really_aiff.wav", x, 8000, audio_format="AIFF")
    assert sf.info(path).format == "AIFF"
    np.testing.assert_allclose(load_audio(path, 8000), x, atol=LSB)


def test_native_rate_is_left_alone(tmp_path):
    x = tone(0.1, 16000)
    path = write_audio(tmp_path / "a.flac", x, 16000, audio_format="FLAC")
    np.testing.assert_allclose(load_audio(path, 16000), x, atol=LSB)


def test_tess_fixture_quirks(fixtures_dir):
    aiff = fixtures_dir / "tess/YAF_angry/YAF_germ_angry.wav"
    hi_rate = fixtures_dir / "tess/OAF_Fear/OAF_food_fear.wav"
    for path in (aiff, hi_rate):
        info = sf.info(path)
        x = load_audio(path, 16000)
        assert x.dtype == np.float32
        assert abs(x.shape[0] - info.frames * 16000 / info.samplerate) <= 1
    assert sf.info(hi_rate).samplerate == 96000


def test_ravdess_originals_match_the_16k_copy(fixtures_dir):
    # The 16 kHz FLAC copy was made independently (soxr, very high quality, down-mixed), so
    # decoding the 48 kHz originals must reproduce it up to its 16-bit quantisation.
    copy = real_folder("ravdess")
    originals = sorted((fixtures_dir / "ravdess48k").rglob("*.wav"))
    assert len(originals) == 3
    assert any(sf.info(p).channels == 2 for p in originals)
    for path in originals:
        reference, rate = sf.read(copy / path.parent.name / f"{path.stem}.flac", dtype="float32")
        assert rate == 16000
        x = load_audio(path, 16000)
        assert x.shape == reference.shape
        np.testing.assert_allclose(x, reference, atol=LSB)


# --- optional processing ---------------------------------------------------------------------


def test_peak_normalisation(tmp_path):
    path = write_audio(tmp_path / "quiet.wav", tone(0.2, 16000, amplitude=0.1), 16000)
    x = load_audio(path, 16000, peak_normalize=True)
    assert np.abs(x).max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(x, load_audio(path, 16000) / np.abs(load_audio(path, 16000)).max())


def test_trim_matches_librosa():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    sr = 16000
    speech = tone(0.7, sr, 220.0) * np.hanning(round(0.7 * sr)).astype(np.float32)
    for lead, tail, top_db in [(0.4, 0.9, 60.0), (0.0, 0.3, 20.0), (1.1, 0.0, 30.0)]:
        x = np.concatenate([np.zeros(round(lead * sr)), speech, np.zeros(round(tail * sr))])
        x = (x + 1e-4 * rng.standard_normal(x.shape)).astype(np.float32)
        _, (start, end) = librosa.effects.trim(x, top_db=top_db)
        assert trim_bounds(x, top_db=top_db) == (start, end)


def test_trim_silence_and_fixed_length(tmp_path):
    sr = 16000
    speech = tone(0.5, sr, 300.0)
    x = np.concatenate([np.zeros(sr), speech, np.zeros(sr)])
    path = write_audio(tmp_path / "padded.wav", x, sr)
    trimmed = load_audio(path, sr, trim_silence=True)
    # Frame granularity (512-sample hops, 2048-sample frames) bounds the error.
    assert 0.5 * sr <= trimmed.shape[0] <= 0.5 * sr + 2 * 2048
    fixed = load_audio(path, sr, trim_silence=True, fixed_seconds=2.5)
    assert fixed.shape == (40000,)
    np.testing.assert_array_equal(fixed[: trimmed.shape[0]], trimmed)
    assert not fixed[trimmed.shape[0] :].any()
    cut = load_audio(path, sr, fixed_seconds=0.75)
    np.testing.assert_array_equal(cut, load_audio(path, sr)[:12000])


# --- broken files ----------------------------------------------------------------------------


def _broken_files(folder: pathlib.Path) -> dict[str, pathlib.Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good = write_audio(folder / "good.wav", tone(0.2, 16000), 16000)
    truncated = folder / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:20])
    empty = folder / "empty.wav"
    empty.touch()
    text = folder / "text.wav"
    text.write_text("this is not audio\n")
    silent = write_audio(folder / "silent.wav", np.zeros(16000), 16000)
    no_samples = write_audio(folder / "no_samples.wav", np.zeros(0), 16000)
    return dict(
        good=good,
        truncated=truncated,
        empty=empty,
        text=text,
        silent=silent,
        no_samples=no_samples,
        missing=folder / "missing.wav",
    )


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("truncated", "cannot decode"),
        ("empty", "empty file"),
        ("text", "cannot decode"),
        ("silent", "silent"),
        ("no_samples", "no audio samples"),
        ("missing", "no such file"),
    ],
)
def test_unusable_files_raise_audio_error(tmp_path, kind, reason):
    path = _broken_files(tmp_path)[kind]
    with pytest.raises(AudioError, match=reason) as info:
        load_audio(path, 16000)
    assert info.value.path == path
    assert str(path) in str(info.value)


def test_load_many_skips_and_counts(tmp_path, caplog):
    files = _broken_files(tmp_path)
    utts = [Utterance(p, "emodb", "03", "anger", "male", {}) for p in files.values()]
    caplog.set_level("INFO")
    kept, waves = AudioCache().load_many(utts, Preprocessing(sample_rate=16000))
    assert [u.path for u in kept] == [files["good"]]
    assert len(waves) == 1 and waves[0].shape == (3200,)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 6
    for kind, path in files.items():
        if kind != "good":
            assert sum(str(path) in w for w in warnings) == 1
    assert "skipped 6" in caplog.text


def test_load_many_with_nothing_usable_is_an_error(tmp_path):
    files = _broken_files(tmp_path)
    with pytest.raises(ValueError, match="None of the 2 audio files"):
        AudioCache().load_many([files["empty"], files["text"]], Preprocessing(sample_rate=16000))


# --- caching ---------------------------------------------------------------------------------


def test_memory_cache_decodes_once(tmp_path):
    path = write_audio(tmp_path / "a.wav", tone(0.2, 22050), 22050)
    cache = AudioCache()
    first = Preprocessing(sample_rate=16000).load(path, cache)
    second = Preprocessing(sample_rate=16000, peak_normalize=True).load(path, cache)
    assert cache.stats["decoded"] == 1 and cache.stats["memory_hits"] == 1
    np.testing.assert_allclose(second, first / np.abs(first).max(), rtol=1e-6)
    assert not first.flags.writeable
    Preprocessing(sample_rate=8000).load(path, cache)
    assert cache.stats["decoded"] == 2  # another rate is another entry


def test_disk_cache_survives_a_new_process_and_tracks_changes(tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    path = write_audio(tmp_path / "a.wav", tone(0.2, 44100), 44100)
    expected = AudioCache(cache_dir).decoded(path, 16000)
    assert [p.suffix for p in cache_dir.iterdir()] == [".npy"]  # no temporary files left

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(audio_lib, "decode", no_decoding)
    fresh = AudioCache(cache_dir)
    np.testing.assert_array_equal(fresh.decoded(path, 16000), expected)
    assert fresh.stats["disk_hits"] == 1
    monkeypatch.undo()

    # A rewritten file (new size and time) is decoded again.
    write_audio(path, tone(0.3, 44100, 880.0), 44100)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    again = AudioCache(cache_dir)
    assert again.decoded(path, 16000).shape == (4800,)
    assert again.stats["decoded"] == 1


def test_corrupt_disk_entry_is_replaced(tmp_path, caplog):
    cache_dir = tmp_path / "cache"
    path = write_audio(tmp_path / "a.wav", tone(0.2, 16000), 16000)
    AudioCache(cache_dir).decoded(path, 16000)
    (entry,) = cache_dir.iterdir()
    entry.write_bytes(b"garbage")
    cache = AudioCache(cache_dir)
    assert Preprocessing(sample_rate=16000).load(path, cache).shape == (3200,)
    assert cache.stats["decoded"] == 1
    assert "unreadable cache entry" in caplog.text
    assert np.load(entry).shape == (3200,)


def test_decode_rejects_a_bad_rate(tmp_path):
    path = write_audio(tmp_path / "a.wav", tone(0.1, 16000), 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        decode(path, 0)
