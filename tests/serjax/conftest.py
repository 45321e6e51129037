"""The smoke model that the inference tests share: trained once per session, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serjax import config_lib, experiments
from serjax.predict import Predictor

ROOT = Path(__file__).resolve().parents[2]


def smoke_config():
    """The smoke config cut to three epochs (enough for > 90 % test accuracy)."""
    config = config_lib.load_config_file(ROOT / "configs" / "smoke.py")
    config.train.epochs = 3
    return config


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    """A trained smoke run's workdir."""
    path = tmp_path_factory.mktemp("smoke_run")
    experiments.train_and_evaluate(smoke_config(), path)
    return path


@pytest.fixture(scope="session")
def predictor(workdir) -> Predictor:
    return Predictor.from_workdir(workdir)


@pytest.fixture(scope="session")
def evaluation(workdir) -> dict:
    """The training evaluation's test predictions: paths, labels, probabilities."""
    return json.loads((workdir / "results.json").read_text())["predictions"]
