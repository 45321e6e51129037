"""Tests of the synthetic corpus: layout, determinism, and that simple features separate it."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from serjax.data.synthetic import (
    SYNTHETIC_CLASSES,
    SYNTHETIC_CODES,
    make_synthetic_corpus,
    synthesize_utterance,
)

SR = 16000


def autocorrelation_f0(x: np.ndarray, sample_rate: int) -> float:
    """f0 as the lag of the autocorrelation peak between 2 ms (500 Hz) and 14 ms (70 Hz)."""
    x = x - x.mean()
    spectrum = np.fft.rfft(x, 2 * len(x))
    acf = np.fft.irfft(np.abs(spectrum) ** 2)[: len(x)]
    lo, hi = sample_rate // 500, sample_rate // 70
    return sample_rate / (lo + int(np.argmax(acf[lo:hi])))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return root, make_synthetic_corpus(root, num_speakers=4, per_class_per_speaker=4, seed=3)


def test_files_labels_and_records(corpus):
    root, utts = corpus
    assert len(utts) == 4 * 3 * 4
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == sorted(
        f"synthetic/spk{s:02d}/{label}_{i:03d}.wav"
        for s in range(1, 5)
        for label in SYNTHETIC_CLASSES
        for i in range(4)
    )
    # Ordered by speaker, then class in SYNTHETIC_CLASSES order, then index.
    assert [u.extra["id"] for u in utts] == [
        f"spk{s:02d}_{label}_{i:03d}"
        for s in range(1, 5)
        for label in SYNTHETIC_CLASSES
        for i in range(4)
    ]
    first = utts[0]
    assert first.path == root / "synthetic" / "spk01" / f"{SYNTHETIC_CLASSES[0]}_000.wav"
    assert (first.corpus, first.speaker, first.label, first.gender) == (
        "synthetic",
        "spk01",
        SYNTHETIC_CLASSES[0],
        "female",
    )
    assert dict(first.extra) == {
        "id": f"spk01_{SYNTHETIC_CLASSES[0]}_000",
        "code": SYNTHETIC_CODES[0],
        "index": "000",
    }
    assert {u.gender for u in utts if u.speaker == "spk02"} == {"male"}
    assert len({u.extra["id"] for u in utts}) == len(utts)
    for label, code in zip(SYNTHETIC_CLASSES, SYNTHETIC_CODES, strict=True):
        mine = [u for u in utts if u.label == label]
        assert len(mine) == 16
        assert {u.extra["code"] for u in mine} == {code}


def test_wav_format_and_durations(corpus):
    _, utts = corpus
    for utt in utts[:: len(SYNTHETIC_CLASSES)]:
        info = sf.info(utt.path)
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
        assert 0.6 <= info.duration <= 1.6
        audio, _ = sf.read(utt.path, dtype="float32")
        assert 0.0 < np.max(np.abs(audio)) < 1.0


def test_same_seed_same_bytes_and_no_rewrite(tmp_path, corpus):
    root, utts = corpus
    again = make_synthetic_corpus(tmp_path, num_speakers=4, per_class_per_speaker=4, seed=3)
    for a, b in zip(utts, again, strict=True):
        assert a.path.read_bytes() == b.path.read_bytes()

    # A second call on the same folder leaves every file as it is (same inode, same mtime).
    before = {u.path: os.stat(u.path) for u in again}
    make_synthetic_corpus(tmp_path, num_speakers=4, per_class_per_speaker=4, seed=3)
    for path, st in before.items():
        now = os.stat(path)
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)

    # A damaged file is rewritten with the right content.
    damaged = again[5].path
    damaged.write_bytes(b"RIFF")
    make_synthetic_corpus(tmp_path, num_speakers=4, per_class_per_speaker=4, seed=3)
    assert damaged.read_bytes() == utts[5].path.read_bytes()
    assert [p.name for p in damaged.parent.iterdir() if p.name.startswith(".")] == []


def test_other_seed_other_audio(tmp_path, corpus):
    _, utts = corpus
    other = make_synthetic_corpus(tmp_path, num_speakers=1, per_class_per_speaker=1, seed=4)
    assert other[0].path.read_bytes() != utts[0].path.read_bytes()


def test_smaller_corpus_is_a_subset(tmp_path, corpus):
    _, utts = corpus
    small = make_synthetic_corpus(tmp_path, num_speakers=2, per_class_per_speaker=2, seed=3)
    big = {u.extra["id"]: u for u in utts}
    for u in small:
        assert u.path.read_bytes() == big[u.extra["id"]].path.read_bytes()


def test_pitch_alone_separates_the_classes(corpus):
    _, utts = corpus
    f0 = {label: [] for label in SYNTHETIC_CLASSES}
    for utt in utts:
        audio, sr = sf.read(utt.path)
        f0[utt.label].append(autocorrelation_f0(audio, sr))
    lows, mids, highs = (np.array(f0[label]) for label in SYNTHETIC_CLASSES)
    # Every utterance on the right side of fixed thresholds: a one-feature classifier is
    # perfect, so the task is learnable without any speaker-specific knowledge.
    assert lows.max() < 140 < mids.min()
    assert mids.max() < 250 < highs.min()


def test_level_rises_with_arousal(corpus):
    _, utts = corpus
    rms = {label: [] for label in SYNTHETIC_CLASSES}
    for utt in utts:
        audio, _ = sf.read(utt.path)
        rms[utt.label].append(20 * np.log10(np.sqrt(np.mean(audio**2))))
    means = [np.mean(rms[label]) for label in SYNTHETIC_CLASSES]
    # Peak levels 0.08 / 0.2 / 0.5 are 8 dB apart; the envelopes differ too, so allow slack.
    assert means[0] + 4 < means[1] < means[2] - 4


def test_synthesize_utterance_shape_and_determinism():
    a = synthesize_utterance(
        2, speaker=0, sample_rate=8000, seconds=0.5, rng=np.random.default_rng(1)
    )
    b = synthesize_utterance(
        2, speaker=0, sample_rate=8000, seconds=0.5, rng=np.random.default_rng(1)
    )
    assert a.dtype == np.float32 and a.shape == (4000,)
    np.testing.assert_array_equal(a, b)
    assert autocorrelation_f0(a, 8000) > 250


def test_synthesize_utterance_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="label_index must be in"):
        synthesize_utterance(3, speaker=0, sample_rate=SR, seconds=1.0, rng=rng)
    with pytest.raises(ValueError, match="sample_rate"):
        synthesize_utterance(0, speaker=0, sample_rate=4000, seconds=1.0, rng=rng)
    with pytest.raises(ValueError, match="seconds"):
        synthesize_utterance(0, speaker=0, sample_rate=SR, seconds=0.0, rng=rng)
    with pytest.raises(ValueError, match="min_seconds"):
        make_synthetic_corpus("/nonexistent", min_seconds=2.0, max_seconds=1.0)
