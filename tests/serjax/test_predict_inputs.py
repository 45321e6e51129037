"""Inference on recordings as people make them: silence around speech, DC offset, long files,
short segment tails and low sample rates. Uses the session's smoke model (``conftest.py``)."""

from __future__ import annotations

import csv
import json
import os
import sys
import threading
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from serjax import predict
from serjax.data import AudioError, synthetic
from serjax.predict import LowSampleRateWarning, Predictor, Segment
from serjax.predict.results import duration_weighted

pytestmark = pytest.mark.trains
RATE = 16000
# Results are stored rounded to 6 decimals; padding to other lengths and batch sizes changes
# the float32 sums in the last bits.
ATOL = 2e-5


def _utterance(label: int, k: int = 0, seconds: float = 2.0) -> np.ndarray:
    """A synthetic utterance of the test speaker (spk06, unseen in training)."""
    rng = np.random.default_rng([3, label, k])
    return synthetic.synthesize_utterance(
        label, speaker=5, sample_rate=RATE, seconds=seconds, rng=rng
    )


def _write(path: Path, x: np.ndarray, rate: int = RATE) -> str:
    sf.write(path, x, rate, subtype="FLOAT")
    return str(path)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------
# 1. Silence around speech


def _pad(x: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """1.5 s of digital silence, or of noise at -60 dBFS RMS, before and after ``x``."""
    rng = np.random.default_rng(seed)
    n = round(1.5 * RATE)
    before, after = (
        (np.zeros(n), np.zeros(n))
        if kind == "zeros"
        else (rng.normal(scale=1e-3, size=n), rng.normal(scale=1e-3, size=n))
    )
    return np.concatenate([before, x, after]).astype(np.float32)


def test_silence_around_an_utterance_does_not_decide_the_class(workdir, predictor, tmp_path):
    clips = [_utterance(label, k) for label in range(3) for k in range(2)]
    plain = predictor.predict_batch(clips, RATE)
    zeros = predictor.predict_batch([_pad(x, "zeros", i) for i, x in enumerate(clips)], RATE)
    noise = predictor.predict_batch([_pad(x, "noise", i) for i, x in enumerate(clips)], RATE)
    # Digital silence is cut to the sample: the same prediction. -60 dBFS noise is cut to the
    # nearest 16 ms frame, plus 10 ms kept: the smoke model, which never saw a pause, moves by
    # at most 0.15 (measured: 0.13 at most) and keeps its class.
    np.testing.assert_allclose(zeros, plain, atol=1e-3)
    np.testing.assert_allclose(noise, plain, atol=0.15)
    np.testing.assert_array_equal(noise.argmax(1), plain.argmax(1))
    # Without trimming, the padding decides: every clip goes to one class.
    untrimmed = Predictor.from_workdir(workdir, trim_silence=False)
    padded = untrimmed.predict_batch([_pad(x, "zeros", i) for i, x in enumerate(clips)], RATE)
    assert len(set(padded.argmax(1))) == 1 and len(set(plain.argmax(1))) == 3
    # The command line's --no-trim is the same switch.
    path = _write(tmp_path / "padded.wav", _pad(clips[0], "zeros", 0))
    out = tmp_path / "no_trim.jsonl"
    assert predict.main(["--workdir", str(workdir), "--no-trim", "--output", str(out), path]) == 0
    (row,) = _read_jsonl(out)
    probs = [row["probabilities"][c] for c in untrimmed.class_names]
    np.testing.assert_allclose(probs, padded[0], atol=ATOL)


# ---------------------------------------------------------------------------------------------
# 2. DC offset


def test_a_constant_is_reported_silent(workdir, predictor, tmp_path, capsys):
    path = _write(tmp_path / "dc.wav", np.full(RATE, 0.3, np.float32))
    out = tmp_path / "dc.jsonl"
    assert predict.main(["--workdir", str(workdir), "--output", str(out), path]) == 1
    (row,) = _read_jsonl(out)
    assert row["status"] == "error" and "silent" in row["reason"]
    assert "silent" in capsys.readouterr().out
    for segment in (None, 0.5):
        with pytest.raises(AudioError, match="silent"):
            predictor.predict_file(path, segment=segment)


@pytest.mark.parametrize("rate", [RATE, 44100])
def test_added_dc_does_not_move_the_probabilities(predictor, tmp_path, rate):
    clips = [soxr.resample(_utterance(label), RATE, rate) for label in range(3)]
    clean = [_write(tmp_path / f"clean{i}.wav", x, rate) for i, x in enumerate(clips)]
    shifted = [_write(tmp_path / f"dc{i}.wav", x + 0.3, rate) for i, x in enumerate(clips)]
    expected = [r.probabilities for r in predictor.predict_files(clean)]
    got = [r.probabilities for r in predictor.predict_files(shifted)]
    np.testing.assert_allclose(got, expected, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# 3. Long files without --segment


@pytest.fixture(scope="module")
def blocked(workdir) -> Predictor:
    """The smoke model, classifying whole files longer than 2 s in blocks of 2 s."""
    return Predictor.from_workdir(workdir, block_seconds=2.0)


def _long(tmp_path: Path, seconds: int, name: str = "long.wav") -> tuple[str, np.ndarray]:
    x = np.concatenate([_utterance(k % 3, k) for k in range(seconds // 2)])
    return _write(tmp_path / name, x), x


def test_a_long_file_is_classified_in_blocks(blocked, tmp_path):
    path, x = _long(tmp_path, 20)
    result = blocked.predict_file(path)
    assert result.seconds == pytest.approx(20.0)
    timeline = blocked.predict_file(path, segment=2.0)
    assert [(s.start, s.end) for s in result.segments] == [
        (s.start, s.end) for s in timeline.segments
    ]
    np.testing.assert_allclose(result.probabilities, timeline.probabilities, atol=ATOL)
    # Each block is classified as the file of its samples would be.
    np.testing.assert_allclose(
        result.segments[3].probabilities, blocked.predict(x[6 * RATE : 8 * RATE], RATE), atol=ATOL
    )


def test_memory_of_a_long_file_is_bounded(blocked, tmp_path):
    short, x = _long(tmp_path, 20, "short.wav")
    whole = np.tile(x, 10)  # 200 s
    longer = _write(tmp_path / "longer.wav", whole)
    blocked.predict_file(short)  # compiles every shape first

    def peak(path: str) -> int:
        tracemalloc.start()
        try:
            blocked.predict_file(path)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    short_peak, long_peak = peak(short), peak(longer)
    assert long_peak < 1.5 * short_peak + 256 * 1024, (short_peak, long_peak)
    assert long_peak < whole.nbytes / 2, (long_peak, whole.nbytes)


def test_a_long_file_among_others_leaves_their_results_alone(
    workdir, predictor, blocked, tmp_path, monkeypatch
):
    shorts = [_write(tmp_path / f"s{k}.wav", _utterance(k, 5)) for k in range(3)]
    long_path, _ = _long(tmp_path, 12)
    silent = _write(tmp_path / "silent.wav", np.zeros(RATE, np.float32))
    inputs = [shorts[0], long_path, silent, shorts[1], shorts[2]]
    out = tmp_path / "mixed.csv"
    argv = ["--workdir", str(workdir), "--block_seconds", "2", "--output", str(out)]
    assert predict.main([*argv, *inputs]) == 1  # the silent file fails
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == inputs
    assert [r["status"] for r in rows] == ["ok", "ok", "error", "ok", "ok"]
    names = predictor.class_names
    alone = [predictor.predict_file(p).probabilities for p in shorts]
    got = [[float(rows[i][f"p_{c}"]) for c in names] for i in (0, 3, 4)]
    np.testing.assert_allclose(got, alone, atol=ATOL)
    assert float(rows[1]["end"]) == pytest.approx(12.0)
    np.testing.assert_allclose(
        [float(rows[1][f"p_{c}"]) for c in names],
        blocked.predict_file(long_path).probabilities,
        atol=ATOL,
    )
    # From standard input too (its length is not known in advance).
    read_fd, write_fd = os.pipe()
    payload = Path(long_path).read_bytes()
    threading.Thread(target=lambda: os.write(write_fd, payload) and os.close(write_fd)).start()
    monkeypatch.setattr(sys, "stdin", os.fdopen(read_fd, "r"))
    result = blocked.predict_file("-")
    assert len(result.segments) == 6
    np.testing.assert_allclose(
        result.probabilities, blocked.predict_file(long_path).probabilities, atol=ATOL
    )


# ---------------------------------------------------------------------------------------------
# 5. --segment tails


def test_a_short_tail_counts_for_its_duration(workdir, predictor, tmp_path):
    # 2.05 s: 2 s of anger, then 50 ms of a sad voice: three segments of 1, 1 and 0.05 s.
    anger, sad = _utterance(2, 1), _utterance(0, 1)
    path = _write(tmp_path / "tail.wav", np.concatenate([anger, sad[RATE : RATE + 800]]))
    result = predictor.predict_file(path, segment=1.0)
    (a, b, tail) = result.segments
    assert (tail.start, tail.end) == pytest.approx((2.0, 2.05))
    probs = np.stack([a.probabilities, b.probabilities, tail.probabilities])
    weighted = np.average(probs, axis=0, weights=[1.0, 1.0, 0.05])
    np.testing.assert_allclose(result.probabilities, weighted, atol=1e-6)
    # The tail disagrees with the rest: counted as a full segment it would move the summary
    # (by 0.035 when measured).
    assert np.abs(probs.mean(0) - weighted).max() > 0.01
    out = tmp_path / "tail.jsonl"
    assert (
        predict.main(["--workdir", str(workdir), "--segment", "1", "--output", str(out), path]) == 0
    )
    summary = _read_jsonl(out)[-1]
    assert summary["kind"] == "summary"
    np.testing.assert_allclose(
        [summary["probabilities"][c] for c in predictor.class_names], weighted, atol=ATOL
    )


def test_duration_weighted_by_hand():
    segments = [
        Segment(0.0, 1.0, np.array([1.0, 0.0], np.float32)),
        Segment(1.0, 1.5, None, "silent"),
        Segment(1.5, 2.0, np.array([0.0, 1.0], np.float32)),
    ]
    np.testing.assert_allclose(duration_weighted(segments), [2 / 3, 1 / 3], rtol=1e-6)
    with pytest.raises(ValueError, match="no classified"):
        duration_weighted(segments[1:2])


# ---------------------------------------------------------------------------------------------
# 8. Bandwidth mismatch


def test_low_sample_rate_is_warned_once_and_marked(workdir, tmp_path, capsys):
    x = _utterance(1)
    low = [_write(tmp_path / f"low{k}.wav", soxr.resample(x, RATE, 8000), 8000) for k in (1, 2)]
    high = _write(tmp_path / "high.wav", soxr.resample(x, RATE, 44100), 44100)
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"rates.{fmt}"
        argv = ["--workdir", str(workdir), "--output", str(out), low[0], high, low[1]]
        assert predict.main(argv) == 0
        err = capsys.readouterr().err
        assert err.count("warning:") == 1 and "8000 Hz" in err and "16000 Hz" in err
        if fmt == "jsonl":
            rows = _read_jsonl(out)
            assert [r["upsampled_from"] for r in rows] == [8000, None, 8000]
        else:
            with out.open() as f:
                assert [r["upsampled_from"] for r in csv.DictReader(f)] == ["8000", "", "8000"]
    # With --segment every row of the file says so.
    out = tmp_path / "segments.jsonl"
    assert (
        predict.main(["--workdir", str(workdir), "--segment", "1", "--output", str(out), low[0]])
        == 0
    )
    assert {r["upsampled_from"] for r in _read_jsonl(out)} == {8000}


def test_low_sample_rate_through_the_api(workdir):
    predictor = Predictor.from_workdir(workdir)
    x8k = soxr.resample(_utterance(1), RATE, 8000)
    with pytest.warns(LowSampleRateWarning, match="8000 Hz"):
        predictor.predict(x8k, 8000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor.predict(x8k, 8000)  # once per predictor
        predictor.predict(_utterance(1), RATE)
