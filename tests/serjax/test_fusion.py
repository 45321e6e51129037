"""Late fusion of finished runs: hand-computed means, alignment by file, clear refusals."""

import json
import subprocess
import sys

import numpy as np
import pytest

from serjax import fusion, metrics

CLASSES = ["anger", "neutral", "sadness"]


def _write_run(workdir, folds, *, unadapted=None, order=None):
    """A finished run of ``folds``: {fold: (paths, labels, probabilities)}; ``order`` permutes
    each fold's rows (a run may list its files in another order)."""
    for name, (paths, labels, probs) in folds.items():
        idx = np.arange(len(paths)) if order is None else np.asarray(order)
        predictions = {
            "paths": [paths[i] for i in idx],
            "labels": [labels[i] for i in idx],
            "probabilities": np.asarray(probs)[idx].tolist(),
        }
        if unadapted is not None:
            predictions["probabilities_unadapted"] = np.asarray(unadapted[name])[idx].tolist()
        fold_dir = workdir / "folds" / name
        fold_dir.mkdir(parents=True)
        result = {
            "test": metrics.classification_metrics(labels, probs, CLASSES),
            "predictions": predictions,
            "class_names": CLASSES,
        }
        (fold_dir / "results.json").write_text(json.dumps(result))
    (workdir / "results.json").write_text("{}")


def _folds(seed):
    rng = np.random.default_rng(seed)
    folds = {}
    for name in ("03", "08"):
        paths = [f"/data/{name}_{i}.wav" for i in range(6)]
        labels = [i % 3 for i in range(6)]
        probs = rng.dirichlet(np.ones(3), size=6)
        folds[name] = (paths, labels, probs)
    return folds


def test_fused_probabilities_are_the_weighted_mean_per_file(tmp_path):
    a, b = _folds(0), _folds(1)
    unadapted = {name: np.full((6, 3), 1 / 3) for name in a}
    _write_run(tmp_path / "a", a, unadapted=unadapted)
    # The second run lists its files in another order: fusion matches them by path.
    _write_run(tmp_path / "b", b, order=[5, 4, 3, 2, 1, 0])
    report = fusion.fuse([tmp_path / "a", tmp_path / "b"], weights=[3, 1])
    assert report["class_names"] == CLASSES
    expected_probs, expected_unadapted, labels = [], [], []
    for name in ("03", "08"):
        fused = 0.75 * a[name][2] + 0.25 * b[name][2]
        got = np.asarray(report["fold_predictions"][name]["probabilities"])
        np.testing.assert_allclose(got, fused, rtol=1e-12)
        # Run b has no unadapted probabilities: its only ones count for both figures.
        expected_unadapted.append(0.75 / 3 + 0.25 * b[name][2])
        expected_probs.append(fused)
        labels += a[name][1]
        assert report["folds"][name]["ua"] == pytest.approx(
            metrics.unweighted_accuracy(a[name][1], fused.argmax(1), 3)
        )
    pooled = np.concatenate(expected_probs)
    assert report["test"]["ua"] == pytest.approx(
        metrics.unweighted_accuracy(labels, pooled.argmax(1), 3)
    )
    unadapted_pooled = np.concatenate(expected_unadapted)
    assert report["test_unadapted"]["wa"] == pytest.approx(
        metrics.weighted_accuracy(labels, unadapted_pooled.argmax(1))
    )
    assert report["fusion"]["weights"] == [0.75, 0.25]


def test_runs_of_other_files_or_folds_are_refused(tmp_path):
    a = _folds(0)
    _write_run(tmp_path / "a", a)
    other = {k: ([p.replace("/data/", "/other/") for p in v[0]], v[1], v[2]) for k, v in a.items()}
    _write_run(tmp_path / "b", other)
    with pytest.raises(ValueError, match="fold 03: its test files differ"):
        fusion.fuse([tmp_path / "a", tmp_path / "b"])
    _write_run(tmp_path / "c", {"03": a["03"]})
    with pytest.raises(ValueError, match="folds"):
        fusion.fuse([tmp_path / "a", tmp_path / "c"])
    with pytest.raises(ValueError, match="two or more"):
        fusion.fuse([tmp_path / "a"])
    for bad in ([1, -1], [np.inf, 1], [0, 0]):
        with pytest.raises(ValueError, match="non-negative"):
            fusion.fuse([tmp_path / "a", tmp_path / "a"], weights=bad)
    with pytest.raises(FileNotFoundError, match="is the run finished"):
        fusion.fuse([tmp_path / "a", tmp_path / "missing"])


def test_command_writes_the_report(tmp_path):
    _write_run(tmp_path / "a", _folds(0))
    _write_run(tmp_path / "b", _folds(1))
    out = tmp_path / "fused"
    command = [sys.executable, "-m", "serjax.fusion", f"--runs={tmp_path / 'a'},{tmp_path / 'b'}"]
    result = subprocess.run(
        [*command, f"--workdir={out}"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    written = json.loads((out / "results.json").read_text())
    assert written["class_names"] == CLASSES
    assert (out / "classification_report.txt").read_text() in result.stdout
    assert "not adapted" in result.stdout
    refused = subprocess.run(
        [*command.copy()[:3], f"--runs={tmp_path / 'a'}", f"--workdir={out}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1
    assert "two or more" in refused.stderr
    letters = subprocess.run(
        [*command, f"--workdir={out}", "--weights=a,b"], capture_output=True, text=True, timeout=120
    )
    assert letters.returncode == 1
    assert "--weights must be comma-separated numbers" in letters.stderr


def test_a_run_s_own_report_is_never_overwritten(tmp_path):
    _write_run(tmp_path / "a", _folds(0))
    _write_run(tmp_path / "b", _folds(1))
    before = (tmp_path / "b" / "results.json").read_text()
    with pytest.raises(ValueError, match="is one of the runs"):
        fusion.fuse_and_write([tmp_path / "a", tmp_path / "b"], tmp_path / "b")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "results.json").write_text('{"test": {}}')
    with pytest.raises(ValueError, match="not a fusion's"):
        fusion.fuse_and_write([tmp_path / "a", tmp_path / "b"], tmp_path / "other")
    assert (tmp_path / "b" / "results.json").read_text() == before
    # A fusion's own report may be rewritten (the same command run again).
    fusion.fuse_and_write([tmp_path / "a", tmp_path / "b"], tmp_path / "fused")
    fusion.fuse_and_write([tmp_path / "a", tmp_path / "b"], tmp_path / "fused", weights=[1, 2])
