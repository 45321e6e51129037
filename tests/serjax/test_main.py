"""The main job end to end on the smoke config, through the real command line."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.py"

pytestmark = [pytest.mark.slow, pytest.mark.trains]


def _command(workdir: Path, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "serjax.main",
        f"--config={SMOKE}",
        f"--workdir={workdir}",
        *overrides,
    ]


def _env(devices: int = 1) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _run(workdir: Path, *overrides: str, devices: int = 1) -> subprocess.CompletedProcess:
    result = subprocess.run(
        _command(workdir, *overrides),
        cwd=ROOT,
        env=_env(devices),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("smoke")
    result = _run(workdir)
    return workdir, result


def test_smoke_run_learns_the_synthetic_corpus(smoke_run):
    workdir, _ = smoke_run
    results = json.loads((workdir / "results.json").read_text())
    assert results["test"]["ua"] > 0.9
    assert results["test"]["wa"] > 0.9


def test_smoke_run_leaves_every_artefact(smoke_run):
    workdir, result = smoke_run
    results = json.loads((workdir / "results.json").read_text())
    test = results["test"]
    for key in ("wa", "ua", "macro_f1", "per_class", "confusion_matrix", "roc_auc"):
        assert key in test
    assert set(test["per_class"]) == set(results["class_names"])
    assert results["config"]["model"]["name"] == "lstm"
    assert results["data"]["test"]["speakers"] == ["spk06"]
    assert results["timings"]["train_seconds"] > 0
    assert (workdir / "confusion_matrix.png").stat().st_size > 1000
    report = (workdir / "classification_report.txt").read_text()
    assert all(name in report for name in results["class_names"])
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
    assert list((workdir / "checkpoints" / "best").iterdir())
    assert list((workdir / "checkpoints" / "latest").iterdir())
    # One progress line per epoch, with a rate and an ETA (a slow machine adds lines within an
    # epoch, "epoch 1: step 2/9 ... epoch ETA", which are not counted).
    epochs = [
        line for line in result.stderr.splitlines() if re.search(r"epoch \d+/\d+ .*ETA", line)
    ]
    assert len(epochs) == results["epochs"]
    assert "utt/s" in epochs[0]
    # Only serjax's own INFO lines reach the console, wherever the clone and its virtual
    # environment are (library INFO chatter is filtered out).
    own_files = {path.name for path in (ROOT / "serjax").rglob("*.py")}
    logged = re.findall(r"^I\d{4} [\d:.]+ +\d+ ([\w.]+):\d+\]", result.stderr, re.MULTILINE)
    assert logged and set(logged) <= own_files, set(logged) - own_files


def test_a_killed_run_resumes_to_the_uninterrupted_result(smoke_run, tmp_path):
    reference, _ = smoke_run
    workdir = tmp_path / "killed"
    process = subprocess.Popen(
        _command(workdir), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    latest = workdir / "checkpoints" / "latest"
    deadline = time.monotonic() + 300
    # Kill it (no chance to clean up) as soon as the second epoch's checkpoint is complete.
    while time.monotonic() < deadline and process.poll() is None:
        steps = [p for p in latest.glob("*") if p.name.isdigit()] if latest.exists() else []
        if len(steps) >= 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (workdir / "results.json").exists()
    resumed = _run(workdir)
    assert "Resuming" in resumed.stderr
    expected = json.loads((reference / "results.json").read_text())
    got = json.loads((workdir / "results.json").read_text())
    np.testing.assert_allclose(
        got["predictions"]["probabilities"], expected["predictions"]["probabilities"], atol=1e-5
    )
    assert got["test"]["confusion_matrix"] == expected["test"]["confusion_matrix"]


def test_four_devices_match_one(smoke_run, tmp_path):
    reference, _ = smoke_run
    workdir = tmp_path / "four"
    result = _run(workdir, devices=4)
    assert "TFRT_CPU_3" in result.stderr or "cpu:3" in result.stderr.lower()
    expected = json.loads((reference / "results.json").read_text())
    got = json.loads((workdir / "results.json").read_text())
    expected_losses = [row["train_loss"] for row in expected["history"]]
    got_losses = [row["train_loss"] for row in got["history"]]
    np.testing.assert_allclose(got_losses, expected_losses, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        got["predictions"]["probabilities"], expected["predictions"]["probabilities"], atol=1e-4
    )
    one, four = _latest_parameters(reference), _latest_parameters(workdir)
    assert one.keys() == four.keys()
    for path in one:
        np.testing.assert_allclose(four[path], one[path], rtol=1e-4, atol=1e-5, err_msg=path)


def _latest_parameters(workdir: Path) -> dict:
    """The model parameters of a run's latest checkpoint, by path."""
    from flax import nnx

    from serjax import config_lib, forward
    from serjax.checkpointing import Checkpointer

    config = config_lib.load_config_file(SMOKE)
    results = json.loads((workdir / "results.json").read_text())
    model = nnx.eval_shape(lambda: forward.create_model(config, len(results["class_names"])))
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    with Checkpointer(workdir / "checkpoints") as checkpoints:
        stored, _ = checkpoints.restore("latest", {"model": nnx.to_pure_dict(nnx.state(model))})
    flat = {}

    def visit(prefix, node, shape_node):
        for key, value in shape_node.items():
            if isinstance(value, dict):
                visit(f"{prefix}/{key}", node[key], value)
            else:
                flat[f"{prefix}/{key}"] = np.asarray(node[key])

    visit("", stored["model"], params)
    return flat
