"""Inference: the API, the command line and the training evaluation agree; long files, bad input.

One smoke model is trained per session (``conftest.py``) and shared by every test.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import threading
import tracemalloc
from pathlib import Path

import jax
import numpy as np
import pytest
import soundfile as sf
import soxr
from flax import nnx

from serjax import config_lib, forward, predict
from serjax.checkpointing import Checkpointer
from serjax.data import AudioError, synthetic
from serjax.data.stream import SegmentCutter
from serjax.predict import FileFailure, Predictor, PredictorError

# One smoke model is trained for the whole module.
pytestmark = pytest.mark.trains
ROOT = Path(__file__).resolve().parents[2]
RATE = 16000
# The order of synthetic.SYNTHETIC_CLASSES.
SADNESS, NEUTRAL, ANGER = 0, 1, 2
# Results are stored rounded to 6 decimals; padding to other lengths and batch sizes changes
# the float32 sums in the last bits.
ATOL = 2e-5


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> tuple[Path, list[tuple[float, float, int]]]:
    """Clips of the test speaker (spk06, unseen in training), 2 s each, and 1 s of digital
    silence, concatenated; returns the file and each clip's (start, end, class)."""
    labels = [NEUTRAL, ANGER, SADNESS, None, ANGER, NEUTRAL, SADNESS]
    pieces, clips, t = [], [], 0.0
    for k, label in enumerate(labels):
        if label is None:
            pieces.append(np.zeros(RATE, np.float32))
            t += 1.0
            continue
        rng = np.random.default_rng([9, k])
        pieces.append(
            synthetic.synthesize_utterance(label, speaker=5, sample_rate=RATE, seconds=2.0, rng=rng)
        )
        clips.append((t, t + 2.0, label))
        t += 2.0
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(path, np.concatenate(pieces), RATE, subtype="FLOAT")
    return path, clips


def _tone(n: int, freq: float = 440.0, amplitude: float = 0.1) -> np.ndarray:
    """``n`` samples of a sine at RATE (a constant would be silent: it is only a DC offset)."""
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(n) / RATE)).astype(np.float32)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _class_probs(row: dict, class_names) -> list[float]:
    return [row["probabilities"][c] for c in class_names]


# ---------------------------------------------------------------------------------------------
# One feature path: API, command line and training evaluation agree


def test_api_matches_training_evaluation(predictor, evaluation):
    waves = []
    for path in evaluation["paths"]:
        x, rate = sf.read(path, dtype="float32")
        waves.append(x)
    probs = predictor.predict_batch(waves, rate)
    np.testing.assert_allclose(probs, evaluation["probabilities"], atol=ATOL)
    accuracy = np.mean(probs.argmax(1) == np.array(evaluation["labels"]))
    assert accuracy > 0.9
    one = predictor.predict(waves[3], rate)
    np.testing.assert_allclose(one, evaluation["probabilities"][3], atol=ATOL)
    result = predictor.predict_file(evaluation["paths"][3])
    np.testing.assert_allclose(result.probabilities, evaluation["probabilities"][3], atol=ATOL)
    assert result.emotion == predictor.class_names[int(np.argmax(one))]


def test_cli_matches_training_evaluation(workdir, evaluation, tmp_path, capsys):
    out = tmp_path / "predictions.jsonl"
    code = predict.main(
        ["--workdir", str(workdir), "--output", str(out), "--progress", *evaluation["paths"]]
    )
    assert code == 0
    rows = _read_jsonl(out)
    names = json.loads((workdir / "results.json").read_text())["class_names"]
    # In input order, although they were batched by length.
    assert [r["file"] for r in rows] == evaluation["paths"]
    probs = np.array([_class_probs(r, names) for r in rows])
    np.testing.assert_allclose(probs, evaluation["probabilities"], atol=ATOL)
    captured = capsys.readouterr()
    table = captured.out.splitlines()
    assert table[0].split()[:3] == ["file", "emotion", "prob"]
    for line, row in zip(table[1:], rows, strict=True):
        cells = line.split()
        assert row["file"].endswith(cells[0].removeprefix("..."))  # long paths lose their start
        assert cells[1:] == [
            row["emotion"],
            f"{row['probability']:.3f}",
            row["runner_up"],
            f"{row['runner_up_probability']:.3f}",
        ]
    assert f"{len(rows)}/{len(rows)} files" in captured.err  # the progress bar


def test_csv_output_has_every_class_probability(workdir, evaluation, tmp_path):
    out = tmp_path / "predictions.csv"
    paths = evaluation["paths"]
    assert predict.main(["--workdir", str(workdir), "--output", str(out), *paths]) == 0
    with out.open() as f:
        rows = list(csv.DictReader(f))
    names = json.loads((workdir / "results.json").read_text())["class_names"]
    probs = np.array([[float(r[f"p_{c}"]) for c in names] for r in rows])
    np.testing.assert_allclose(probs, evaluation["probabilities"], atol=ATOL)
    assert [r["emotion"] for r in rows] == [names[i] for i in probs.argmax(1)]


def test_output_extension_must_name_a_format(workdir, evaluation, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        predict.main(["--workdir", str(workdir), "--output", str(tmp_path / "x.txt"), "a.wav"])
    assert exit_.value.code == 2


def test_any_rate_and_channels_are_resampled_and_down_mixed(predictor, evaluation, tmp_path):
    x, rate = sf.read(evaluation["paths"][3], dtype="float32")
    expected = np.asarray(evaluation["probabilities"][3])
    # 44.1 kHz stereo FLAC whose channels average to the clip.
    y = soxr.resample(x, rate, 44100)
    assert np.abs(y).max() < 0.6  # no clipping at 1.5 times the level
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([1.5 * y, 0.5 * y], axis=1), 44100, subtype="PCM_24")
    result = predictor.predict_file(path)
    np.testing.assert_allclose(result.probabilities, expected, atol=0.02)
    assert np.argmax(result.probabilities) == np.argmax(expected)
    # 16-bit integer samples are scaled like soundfile scales them.
    pcm = np.round(x * 32767).astype(np.int16)
    np.testing.assert_allclose(predictor.predict(pcm, rate), expected, atol=1e-3)


def _pipe_stdin(monkeypatch, payload: bytes) -> None:
    """Standard input becomes a pipe fed with ``payload`` (not seekable, like a live stream)."""
    read_fd, write_fd = os.pipe()

    def feed():
        with os.fdopen(write_fd, "wb") as f:
            f.write(payload)

    threading.Thread(target=feed, daemon=True).start()
    monkeypatch.setattr(sys, "stdin", os.fdopen(read_fd, "r"))


@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_standard_input_stream(fmt, workdir, evaluation, tmp_path, monkeypatch):
    x, rate = sf.read(evaluation["paths"][3], dtype="float32")
    buffer = tmp_path / f"clip.{fmt.lower()}"
    sf.write(buffer, x, rate, format=fmt, subtype="PCM_16")
    _pipe_stdin(monkeypatch, buffer.read_bytes())
    out = tmp_path / "stdin.jsonl"
    assert predict.main(["--workdir", str(workdir), "--output", str(out), "-"]) == 0
    (row,) = _read_jsonl(out)
    assert row["file"] == "-"
    names = json.loads((workdir / "results.json").read_text())["class_names"]
    np.testing.assert_allclose(_class_probs(row, names), evaluation["probabilities"][3], atol=ATOL)


# ---------------------------------------------------------------------------------------------
# Long recordings


def test_segments_follow_the_clips(predictor, long_file):
    path, clips = long_file
    result = predictor.predict_file(path, segment=1.0, hop=0.5, vad_db=predict.DEFAULT_VAD_DB)
    starts = [s.start for s in result.segments]
    assert starts == pytest.approx(np.arange(len(starts)) * 0.5)
    assert result.segments[-1].end == pytest.approx(13.0)
    hits = total = 0
    for clip_start, clip_end, label in clips:
        inside = [
            s for s in result.segments if s.start >= clip_start - 1e-6 and s.end <= clip_end + 1e-6
        ]
        assert len(inside) == 3
        names = [predictor.class_names[int(np.argmax(s.probabilities))] for s in inside]
        want = synthetic.SYNTHETIC_CLASSES[label]
        assert max(set(names), key=names.count) == want, (clip_start, names)
        hits += names.count(want)
        total += len(names)
    assert hits / total >= 0.85
    # The second of digital silence at 6-7 s is skipped, and says so.
    (silent,) = [s for s in result.segments if s.start == pytest.approx(6.0)]
    assert silent.probabilities is None and silent.skipped == "silent"
    classified = [s.probabilities for s in result.segments if s.probabilities is not None]
    assert len(classified) == len(result.segments) - 1 == len(result.segments) - result.skipped
    np.testing.assert_allclose(result.probabilities, np.mean(classified, 0), atol=1e-6)


def test_cli_timeline_matches_the_api(predictor, workdir, long_file, tmp_path, capsys):
    path, _ = long_file
    out = tmp_path / "timeline.jsonl"
    argv = ["--workdir", str(workdir), "--segment", "1", "--hop", "0.5", "--vad"]
    assert predict.main([*argv, "--output", str(out), str(path)]) == 0
    rows = _read_jsonl(out)
    expected = predictor.predict_file(path, segment=1.0, hop=0.5, vad_db=predict.DEFAULT_VAD_DB)
    *segments, summary = rows
    assert [r["kind"] for r in segments] == ["segment"] * len(expected.segments)
    names = predictor.class_names
    for row, segment in zip(segments, expected.segments, strict=True):
        assert (row["start"], row["end"]) == (segment.start, segment.end)
        if segment.probabilities is None:
            assert row["status"] == "skipped" and row["reason"] == segment.skipped
        else:
            np.testing.assert_allclose(_class_probs(row, names), segment.probabilities, atol=ATOL)
    assert summary["kind"] == "summary" and summary["end"] == expected.seconds
    np.testing.assert_allclose(_class_probs(summary, names), expected.probabilities, atol=ATOL)
    table = capsys.readouterr().out
    assert "(skipped: silent)" in table
    assert f"summary ({expected.seconds:.1f} s, 24 of 25 segments classified)" in table


def test_segment_options_need_a_segment(workdir):
    for extra in (["--hop", "1"], ["--vad"]):
        with pytest.raises(SystemExit) as exit_:
            predict.main(["--workdir", str(workdir), *extra, "a.wav"])
        assert exit_.value.code == 2


def test_segment_probabilities_are_the_api_on_the_same_samples(predictor, long_file):
    path, _ = long_file
    x, rate = sf.read(path, dtype="float32")
    segments = list(predictor.iter_segments(path, 1.0, 0.5))[:8]
    slices = [x[round(s.start * rate) : round(s.end * rate)] for s in segments]
    np.testing.assert_allclose(
        np.stack([s.probabilities for s in segments]),
        predictor.predict_batch(slices, rate),
        atol=ATOL,
    )


def test_energy_gate_skips_quiet_segments(predictor, long_file, tmp_path):
    path, _ = long_file
    x, rate = sf.read(path, dtype="float32")
    # Noise at -70 dBFS in the gap: not digital silence, so only the gate can skip it.
    x[6 * rate : 7 * rate] = np.random.default_rng(0).normal(scale=10 ** (-70 / 20), size=rate)
    noisy = tmp_path / "noisy_gap.wav"
    sf.write(noisy, x, rate, subtype="FLOAT")
    gated = predictor.predict_file(noisy, segment=1.0, hop=0.5, vad_db=-45.0)
    (gap,) = [s for s in gated.segments if s.start == pytest.approx(6.0)]
    assert gap.probabilities is None and "energy gate" in gap.skipped
    assert gated.skipped == 1
    ungated = predictor.predict_file(noisy, segment=1.0, hop=0.5)
    assert ungated.skipped == 0


def test_memory_does_not_grow_with_file_length(predictor, long_file, tmp_path):
    path, _ = long_file
    x, rate = sf.read(path, dtype="float32")
    longer = tmp_path / "ten_times.wav"
    whole = np.tile(x, 10)  # 130 s
    sf.write(longer, whole, rate, subtype="FLOAT")
    predictor.predict_file(longer, segment=1.0, hop=0.5)  # compiles every shape first

    def peak(file: Path) -> tuple[int, int]:
        tracemalloc.start()
        try:
            result = predictor.predict_file(file, segment=1.0, hop=0.5)
            return tracemalloc.get_traced_memory()[1], len(result.segments)
        finally:
            tracemalloc.stop()

    short_peak, short_segments = peak(path)
    long_peak, long_segments = peak(longer)
    assert long_segments > 9 * short_segments
    assert long_peak < 1.5 * short_peak + 256 * 1024, (short_peak, long_peak)
    # Less than half of what holding the longer file's samples at once would take.
    assert long_peak < whole.nbytes / 2, (long_peak, whole.nbytes)


def test_cutter_keeps_one_segment_and_one_block():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=10_100).astype(np.float32)
    cutter = SegmentCutter(seg_len=1000, hop_len=300)
    segments, pos = [], 0
    while pos < signal.size:
        n = int(rng.integers(1, 700))
        segments += cutter.feed(signal[pos : pos + n])
        pos += n
    segments += cutter.finish()
    starts = [s for s, _ in segments]
    assert starts == list(range(0, 9301, 300))  # 31 full segments, then the tail at 9300
    for start, samples in segments:
        np.testing.assert_array_equal(samples, signal[start : start + 1000])
    assert segments[-1][1].size == 800
    assert cutter.largest_buffer < 1000 + 700


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.fixture
def bad_files(tmp_path) -> dict[str, tuple[Path, str]]:
    """Unusable inputs and a word of the reason each must give."""
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "unreadable.wav").write_bytes(b"this is not audio" * 20)
    (folder / "empty.wav").write_bytes(b"")
    sf.write(folder / "short.wav", _tone(100), RATE)
    sf.write(folder / "silent.wav", np.zeros(RATE, np.float32), RATE)
    return {
        "missing": (tmp_path / "missing.wav", "no such file"),
        "unreadable": (folder / "unreadable.wav", "cannot decode"),
        "empty": (folder / "empty.wav", "empty"),
        "short": (folder / "short.wav", "too short"),
        "silent": (folder / "silent.wav", "silent"),
    }


def test_bad_files_give_error_rows_and_the_rest_still_gets_results(
    workdir, evaluation, bad_files, tmp_path, capsys
):
    good = evaluation["paths"]
    bad = [str(path) for path, _ in bad_files.values()]
    inputs = [bad[0], *good[:9], *bad[1:], *good[9:]]
    out = tmp_path / "mixed.jsonl"
    assert predict.main(["--workdir", str(workdir), "--output", str(out), *inputs]) == 1
    rows = _read_jsonl(out)
    assert [r["file"] for r in rows] == inputs
    by_file = {r["file"]: r for r in rows}
    for path, reason in bad_files.values():
        row = by_file[str(path)]
        assert row["status"] == "error" and reason in row["reason"], row
        assert row["probabilities"] is None
    names = json.loads((workdir / "results.json").read_text())["class_names"]
    probs = np.array([_class_probs(by_file[p], names) for p in good])
    np.testing.assert_allclose(probs, evaluation["probabilities"], atol=ATOL)
    captured = capsys.readouterr()
    for path, reason in bad_files.values():
        assert any(path.name in line and reason in line for line in captured.out.splitlines())
    assert f"{len(bad)} of {len(inputs)} inputs failed" in captured.err


@pytest.mark.parametrize("kind", ["missing", "unreadable", "empty", "short", "silent"])
def test_bad_file_through_the_api(kind, predictor, bad_files):
    path, reason = bad_files[kind]
    with pytest.raises(AudioError, match=reason) as error:
        predictor.predict_file(path)
    assert error.value.path == path
    with pytest.raises(AudioError, match=reason):
        predictor.predict_file(path, segment=1.0)
    (failure,) = predictor.predict_files([path])
    assert failure == FileFailure(str(path), error.value.reason)


def test_bad_waveforms_through_the_api(predictor):
    with pytest.raises(AudioError, match="silent"):
        predictor.predict(np.zeros(RATE, np.float32), RATE)
    with pytest.raises(AudioError, match="too short"):
        predictor.predict(_tone(399), RATE)
    with pytest.raises(AudioError, match="no audio"):
        predictor.predict(np.zeros(0, np.float32), RATE)
    with pytest.raises(AudioError, match="waveform 1: non-finite"):
        predictor.predict_batch([_tone(RATE), np.full(RATE, np.nan)], RATE)


def test_folder_without_audio_is_an_error_row(workdir, tmp_path, capsys):
    (tmp_path / "nothing").mkdir()
    assert predict.main(["--workdir", str(workdir), str(tmp_path / "nothing")]) == 1
    assert "no audio files" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Workdirs and checkpoints


def test_workdir_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(PredictorError, match="no checkpoints/"):
        Predictor.from_workdir(tmp_path)
    with pytest.raises(PredictorError, match="does not exist"):
        Predictor.from_workdir(tmp_path / "nope")
    (tmp_path / "checkpoints" / "best").mkdir(parents=True)
    with pytest.raises(PredictorError, match="no best checkpoint"):
        Predictor.from_workdir(tmp_path)
    assert predict.main(["--workdir", str(tmp_path), "a.wav"]) == 2
    assert "error: " in capsys.readouterr().err


def test_checkpoint_choice(workdir):
    steps = sorted(int(p.name) for p in (workdir / "checkpoints" / "latest").iterdir())
    best = int(next((workdir / "checkpoints" / "best").iterdir()).name)
    assert Predictor.from_workdir(workdir, "latest").checkpoint.endswith(f"latest/{steps[-1]}")
    assert Predictor.from_workdir(workdir, str(best)).checkpoint.endswith(f"/{best}")
    with pytest.raises(PredictorError, match=r"no checkpoint for step 12345.*saved steps"):
        Predictor.from_workdir(workdir, 12345)
    with pytest.raises(PredictorError, match="best, latest or a step"):
        Predictor.from_workdir(workdir, "newest")


def test_workdir_is_only_read(workdir, tmp_path):
    """An unfinished save of a run still training stays, and nothing is added."""
    copy = tmp_path / "run"
    shutil.copytree(workdir / "checkpoints", copy / "checkpoints")
    unfinished = copy / "checkpoints" / "latest" / "999.orbax-checkpoint-tmp-1700000000"
    unfinished.mkdir()
    (unfinished / "partial").write_bytes(b"x")
    before = sorted((p, p.stat().st_mtime_ns) for p in copy.rglob("*"))
    predictor = Predictor.from_workdir(copy)
    assert sorted((p, p.stat().st_mtime_ns) for p in copy.rglob("*")) == before
    assert predictor.class_names == tuple(
        json.loads((workdir / "results.json").read_text())["class_names"]
    )


def test_multi_fold_workdir_needs_a_fold(workdir, tmp_path, capsys):
    loso = tmp_path / "loso"
    for fold in ("spk05", "spk06"):
        (loso / "folds").mkdir(parents=True, exist_ok=True)
        (loso / "folds" / fold).symlink_to(workdir, target_is_directory=True)
    with pytest.raises(PredictorError, match="--fold.*spk05, spk06"):
        Predictor.from_workdir(loso)
    with pytest.raises(PredictorError, match="no fold 'spk01'.*spk05, spk06"):
        Predictor.from_workdir(loso, fold="spk01")
    assert Predictor.from_workdir(loso, fold="spk06").checkpoint.startswith(str(loso))
    assert predict.main(["--workdir", str(loso), "a.wav"]) == 2
    assert "spk05, spk06" in capsys.readouterr().err


def _save_checkpoint(folder: Path, state_config, meta: dict) -> None:
    """A checkpoint with zero weights shaped by ``state_config`` and the given metadata."""

    _, state = nnx.split(nnx.eval_shape(lambda: forward.create_model(state_config, 3, 0)))

    def zeros(leaf):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.key(0)
        return np.zeros(leaf.shape, leaf.dtype)

    with Checkpointer(folder / "checkpoints") as checkpoints:
        checkpoints.save_best(1, {"model": jax.tree.map(zeros, nnx.to_pure_dict(state))}, meta)


def _smoke_with(field: str | None = None, value=None):
    """The smoke config, with one ``section.name`` field changed."""
    config = config_lib.load_config_file(ROOT / "configs" / "smoke.py")
    if field:
        section, name = field.split(".")
        config[section][name] = value
    return config


@pytest.mark.parametrize(
    ("weights_field", "weights_value", "meta_field", "meta_value", "message"),
    [
        # Weights of a wider LSTM than the saved config describes.
        ("model.hidden_sizes", (16,), None, None, "does not fit"),
        # Weights for 24 mel bands, config saying 40.
        (None, None, "features.n_mels", 40, "does not fit"),
        (None, None, "model.name", "no_such_model", "does not describe a model"),
        (None, None, "features.kind", "spectrogram", "unusable config"),
    ],
)
def test_incompatible_checkpoint_is_a_clear_error(
    tmp_path, weights_field, weights_value, meta_field, meta_value, message
):
    weights = _smoke_with(weights_field, weights_value)
    meta_config = _smoke_with(meta_field, meta_value).to_dict()
    meta = {"config": meta_config, "class_names": list(synthetic.SYNTHETIC_CLASSES)}
    _save_checkpoint(tmp_path, weights, meta)
    with pytest.raises(PredictorError, match=message):
        Predictor.from_workdir(tmp_path)


def test_checkpoint_without_config_is_a_clear_error(tmp_path):
    _save_checkpoint(tmp_path, _smoke_with(), {"progress": {}})
    with pytest.raises(PredictorError, match="no config or class names"):
        Predictor.from_workdir(tmp_path)
