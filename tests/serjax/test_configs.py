"""Every run config loads, validates and builds its model; bad fields name themselves."""

from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from serjax import config_lib, data, forward
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
    # The whole forward path, traced (not run, and the model not initialised) on a batch of
    # 2 clips: 3 s, or the config's fixed duration.
    samples = data.Preprocessing.from_config(config).fixed_samples or 3 * spec_rate(config)
    waves = jax.ShapeDtypeStruct((2, samples), jnp.float32)
    lengths = jnp.array([samples, samples // 2], jnp.int32)
    mask = jnp.array([True, True])

    def forward_path(w):
        model = forward.create_model(config, num_classes, seed=0)
        model.eval()
        return forward.predict_step(model, w, lengths, mask, spec)

    out = jax.eval_shape(forward_path, waves)
    assert out.shape == (2, num_classes) and out.dtype == jnp.float32


def spec_rate(config) -> int:
    return int(config.data.sample_rate)


def test_s1_config_matches_the_report():
    config = config_lib.load_config_file(CONFIGS[0].with_name("emodb_lstm.py"))
    spec = FeatureSpec.from_config(config)
    assert spec.num_features == 120  # MSPEC (log-mel) 40 + Δ + ΔΔ
    assert (spec.segment_frames, spec.segment_shift) == (25, 3)
    assert tuple(config.model.hidden_sizes) == (128, 128)
    assert config.model.dropout == 0.2
    assert config.optim.l2 == 1e-4 and config.optim.l2_params == "head"
    assert config.train.epochs == 10
    assert tuple(config.data.test_speakers) == ("16",)
    # S1's minibatch: 128 segments drawn across the training set.
    assert config.train.segment_batch == 128


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


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_label_smoothing_outside_zero_to_one_names_the_field(value):
    config = config_lib.base_config()
    config.optim.label_smoothing = value
    with pytest.raises(ValueError, match=r"optim\.label_smoothing must be in \[0, 1\)"):
        config_lib.validate(config)


@pytest.mark.parametrize(
    ("ema_decay", "vectorize", "message"),
    [(1.0, "none", r"optim\.ema_decay must be in"), (0.9, "folds", "not supported with")],
)
def test_parameter_average_needs_a_decay_below_one_and_one_model(ema_decay, vectorize, message):
    config = config_lib.base_config()
    config.optim.ema_decay = ema_decay
    config.train.vectorize = vectorize
    with pytest.raises(ValueError, match=message):
        config_lib.validate(config)


@pytest.mark.parametrize(
    ("segment_frames", "segment_batch", "segment_group"),
    [(0, 128, 1), (25, 128, 3), (25, -1, 1), (25, 128, 0)],
)
def test_segment_draws_need_segments_and_whole_groups(segment_frames, segment_batch, segment_group):
    config = config_lib.base_config()
    config.features.segment_frames = segment_frames
    config.train.segment_batch = segment_batch
    config.train.segment_group = segment_group
    with pytest.raises(ValueError, match=r"train\.segment_"):
        config_lib.validate(config)


def test_locked_config_rejects_unknown_fields():
    config = config_lib.base_config()
    config.lock()
    with pytest.raises(AttributeError, match="learning_rate"):
        config.optim.learnig_rate = 0.1


@pytest.mark.parametrize(
    ("field", "value", "new"),
    [
        ("data.protocol", "fixed", "named_speakers"),
        ("data.protocol", "actor_kfold", "speaker_kfold"),
        ("data.protocol", "even", "per_corpus_speaker_fraction"),
        ("features.kind", "mspec", "log_mel"),
        ("features.windows", True, "features.segment_frames"),
        ("features.summary", "mean_sequence", "features.time_average"),
        ("model.summary", "attention", "model.pooling"),
    ],
)
def test_names_of_earlier_versions_are_errors_naming_the_new_one(field, value, new):
    config = config_lib.base_config()
    section, name = field.split(".")
    config[section][name] = value
    with pytest.raises(ValueError, match=f"renamed.*{new}"):
        config_lib.validate(config)


def test_saved_configs_of_earlier_versions_are_upgraded():
    saved = config_lib.base_config().to_dict()
    saved["data"]["protocol"] = "fixed"
    features = saved["features"]
    features["kind"] = "mspec"
    del features["segment_frames"], features["segment_shift"], features["time_average"]
    features.update(windows=True, window_frames=25, window_shift=3, summary="none")
    saved["model"]["summary"] = "mean"
    upgraded = config_lib.upgrade(saved)
    config = config_lib.base_config()
    config.update(upgraded)
    config_lib.validate(config)
    assert config.data.protocol == "named_speakers"
    assert config.features.kind == "log_mel"
    assert (config.features.segment_frames, config.features.segment_shift) == (25, 3)
    assert config.features.time_average is False
    assert config.model.pooling == "mean"
    assert saved["features"]["kind"] == "mspec"  # the input is not modified


def test_saved_configs_without_frame_standardisation_did_none():
    saved = config_lib.base_config().to_dict()
    del saved["features"]["frame_standardise"]
    assert config_lib.upgrade(saved)["features"]["frame_standardise"] == "none"
    assert "frame_standardise" not in saved["features"]


def test_saved_configs_without_fields_added_since_load_for_inference():
    """A run saved before optim.ema_decay, train.vectorize and the other later fields loads
    as inference loads it (no merge with today's base config) with the values that keep its
    behaviour."""
    from serjax.predict.run import _config_from_meta

    saved = config_lib.base_config().to_dict()
    for dotted in config_lib.ADDED_FIELDS:
        section, field = dotted.split(".")
        del saved[section][field]
    config, _ = _config_from_meta({"config": saved, "class_names": ["a", "b"]}, Path("run"))
    for dotted, value in config_lib.ADDED_FIELDS.items():
        section, field = dotted.split(".")
        assert config[section][field] == value == config_lib.base_config()[section][field]
