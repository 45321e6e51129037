"""The training job's command line when nothing trains: help, config mistakes, missing data."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*.py"))


def _main(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "serjax.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_the_configs_and_how_to_see_the_fields():
    result = _main("--help")  # absl's --help exits with status 1
    assert result.stdout.startswith("The training job")
    for name in CONFIGS:
        assert name in result.stdout
    assert "--config.train.epochs=20" in result.stdout
    assert "--print_config" in result.stdout
    assert "``" not in result.stdout and ":func:" not in result.stdout  # no Sphinx markup


def test_print_config_shows_every_field_with_the_overrides_and_runs_nothing(tmp_path):
    config = ROOT / "configs" / "smoke.py"
    result = _main(f"--config={config}", "--print_config", "--config.train.epochs=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "epochs: 3" in result.stdout
    for field in ("learning_rate:", "n_mels: 24", "corpora:"):
        assert field in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_print_config_says_when_a_value_is_unusable(tmp_path):
    config = ROOT / "configs" / "smoke.py"
    result = _main(f"--config={config}", "--print_config", "--config.features.kind=mfccs")
    assert result.returncode == 1
    assert "features.kind='mfccs' is not one of" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_config_field_is_an_error_listing_valid_names(tmp_path):
    result = _main(
        "--config=configs/smoke.py", f"--workdir={tmp_path}", "--config.optim.learnig_rate=0.1"
    )
    assert result.returncode != 0
    assert "learnig_rate" in result.stderr
    assert "learning_rate" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert "Did you mean config.optim.learning_rate?" in result.stderr


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("--config.optimm.lr=1", "config has no field 'optimm'. Did you mean config.optim?"),
        ("--config.seed.x=1", "config.seed is a value, not a group of fields"),
    ],
)
def test_overrides_of_missing_groups_are_one_line(tmp_path, override, expected):
    result = _main("--config", "configs/smoke.py", f"--workdir={tmp_path}", override)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_a_wrong_config_path_names_the_file_and_the_valid_choices(tmp_path):
    result = _main("--config=configs/emodb_lsmt.py", f"--workdir={tmp_path}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert "configs/emodb_lsmt.py: no such file" in result.stderr
    assert "did you mean configs/emodb_lstm.py?" in result.stderr
    for name in CONFIGS:
        assert name in result.stderr


def test_a_config_path_outside_any_config_folder_lists_the_projects_configs(tmp_path):
    result = _main("--config=nowhere/run.py", f"--workdir={tmp_path / 'w'}", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "nowhere/run.py: no such file" in result.stderr
    assert str(ROOT / "configs") in result.stderr
    assert "emodb_lstm.py" in result.stderr


def test_missing_data_is_reported_once_and_leaves_no_workdir(tmp_path):
    workdir = tmp_path / "run"
    result = _main(
        "--config=configs/emodb_lstm.py",
        f"--workdir={workdir}",
        f"--data_dir={tmp_path / 'no_data'}",
        "--no_download",
    )
    assert result.returncode == 1
    assert result.stderr.count("No emodb audio under") == 1
    assert "error: No emodb audio under" in result.stderr
    assert "python -m serjax.data.download emodb" in result.stderr
    assert not workdir.exists()
