"""Inference stands apart from training: what importing it loads, and how fast --help answers."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Training, its writers and their plotting and logging libraries.
TRAINING_MODULES = (
    "serjax.train",
    "serjax.experiments",
    "serjax.writers",
    "serjax.augment.offline",
    "tensorboardX",
    "matplotlib",
)


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_inference_imports_nothing_of_training():
    loaded = _modules_after("from serjax.predict import Predictor, main; import serjax.forward")
    assert "serjax.predict.predictor" in loaded and "serjax.forward" in loaded
    assert not loaded & set(TRAINING_MODULES)


def test_importing_the_package_or_its_command_line_loads_no_jax():
    loaded = _modules_after("import serjax.predict, serjax.predict.cli")
    assert "jax" not in loaded and "flax" not in loaded


def test_help_answers_without_loading_a_model():
    result = subprocess.run(
        [sys.executable, "-m", "serjax.predict", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0
    assert "--workdir" in result.stdout and "--segment" in result.stdout
