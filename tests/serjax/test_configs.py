"""Every run config loads, validates and builds its model; bad fields name themselves."""

from pathlib import Path

import pytest

from serjax import config_lib, train
from serjax.features import FeatureSpec

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.py"))


def test_there_are_configs():
    assert {p.name for p in CONFIGS} >= {"emodb_lstm.py", "emodb_bilstm.py", "smoke.py"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_loads_and_builds_its_model(path):
    config = config_lib.load_config_file(path)
    config_lib.validate(config)
    spec = FeatureSpec.from_config(config)
    num_classes = len(config.data.classes) or 7
    model = train.create_model(config, spec, num_classes, seed=0)
    assert hasattr(model, "head")


def test_s1_config_matches_the_report():
    config = config_lib.load_config_file(CONFIGS[0].with_name("emodb_lstm.py"))
    spec = FeatureSpec.from_config(config)
    assert spec.num_features == 120  # MSPEC 40 + Δ + ΔΔ
    assert (spec.window_frames, spec.window_shift) == (25, 3)
    assert tuple(config.model.hidden_sizes) == (128, 128)
    assert config.model.dropout == 0.2
    assert config.optim.l2 == 1e-4 and config.optim.l2_params == "head"
    assert config.train.epochs == 10
    assert tuple(config.data.test_speakers) == ("16",)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("data.protocol", "random"),
        ("optim.optimizer", "adagrad"),
        ("optim.schedule", "step"),
        ("features.kind", "cqt"),
    ],
)
def test_invalid_choice_names_the_field_and_the_valid_values(field, value):
    config = config_lib.base_config()
    section, name = field.split(".")
    config[section][name] = value
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        config_lib.validate(config)


def test_locked_config_rejects_unknown_fields():
    config = config_lib.base_config()
    config.lock()
    with pytest.raises(AttributeError, match="learning_rate"):
        config.optim.learnig_rate = 0.1
