"""Shared configs: a tiny LSTM for the step and loop tests, and the smoke model that the
inference tests share (trained once per session, in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serjax import config_lib, experiments
from serjax.predict import Predictor

ROOT = Path(__file__).resolve().parents[2]


def tiny_lstm_config(**model):
    """A one-layer LSTM of 8 units on 8 kHz audio, 16 log-mel bands of a 256-point FFT, no
    dropout; ``model`` overrides ``config.model`` fields."""
    config = config_lib.base_config()
    config.data.sample_rate = 8000
    config.features.n_fft = 256
    config.features.win_length = 200
    config.features.hop_length = 80
    config.features.n_mels = 16
    config.model.name = "lstm"
    config.model.hidden_sizes = (8,)
    config.model.dropout = 0.0
    config.model.input_dropout = 0.0
    for key, value in model.items():
        config.model[key] = value
    return config


@pytest.fixture(scope="session")
def tiny_config():
    """:func:`tiny_lstm_config`, for tests of the steps and the loop (a pure function, so one
    serves the whole session, module fixtures included)."""
    return tiny_lstm_config


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
