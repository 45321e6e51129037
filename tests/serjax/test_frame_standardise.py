"""Training-set standardisation of frame features (``features.frame_standardise``): the
statistics, the model that keeps them, and a saved run that applies them at inference."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf
from flax import nnx

import dsp
from serjax import config_lib, data, experiments, features, forward, models, predict
from serjax.features import FeatureSpec
from serjax.models.layers import MIN_SCALE
from serjax.predict import Predictor
from serjax.predict.run import load_run
from serjax.train import SplitData

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000


def _config(**fields):
    config = config_lib.load_config_file(ROOT / "configs" / "smoke.py")
    for dotted, value in fields.items():
        section, name = dotted.split("__")
        config[section][name] = value
    return config


def _waveforms():
    """Noise and tones of very different lengths (so batches pad most of them a lot)."""
    rng = np.random.default_rng(0)
    lengths = (1200, 3100, 5000, 9000)
    t = np.arange(max(lengths)) / RATE
    waves = []
    for i, n in enumerate(lengths):
        tone = (0.1 + 0.05 * i) * np.sin(2 * np.pi * (200 + 150 * i) * t[:n])
        waves.append((tone + 0.02 * rng.standard_normal(n) + 0.01 * i).astype(np.float32))
    return waves


def test_frame_statistics_of_raw_samples_are_numpys_over_the_samples():
    waves = _waveforms()
    spec = FeatureSpec(frontend=None)
    mean, std = features.frame_statistics(waves, spec, batch_size=3)
    samples = np.concatenate(waves).astype(np.float64)
    np.testing.assert_allclose(mean, [samples.mean()], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(std, [samples.std()], rtol=1e-5)


@pytest.mark.parametrize("time_average", [False, True])
def test_frame_statistics_ignore_padding(time_average):
    """Pooled over padded batches, the statistics are numpy's over every utterance's frames
    computed alone (no padding at all); the time average does not change them (they are the
    frames' statistics)."""
    config = _config(features__kind="mfcc", features__cmvn="none")
    config.features.time_average = time_average
    spec = FeatureSpec.from_config(config)
    waves = _waveforms()
    # Batches of 3: 1200, 3100 and 5000 samples padded to 8192; 9000 and two padding rows
    # to 16384.
    mean, std = features.frame_statistics(waves, spec, batch_size=3)
    alone = []
    one = jax.jit(dsp.features, static_argnums=2)
    for w in waves:
        x, n = one(jnp.asarray(w)[None], jnp.asarray([len(w)]), spec.frontend)
        alone.append(np.asarray(x[0, : int(n[0])], np.float64))
    frames = np.concatenate(alone)
    assert mean.shape == std.shape == (spec.frame_features,) == (13,)
    np.testing.assert_allclose(mean, frames.mean(0), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(std, frames.std(0), rtol=1e-4)
    # c0 is in the hundreds (unscaled MFCCs): the reason S2 needs standardising.
    assert abs(mean[0]) > 100


class _Spy(nnx.Module):
    """A stand-in model that records its inputs and has a head, as every model does."""

    def __init__(self):
        self.head = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
        self.seen = []

    def __call__(self, z, steps):
        self.seen.append((np.asarray(z), np.asarray(steps)))
        return z.sum(axis=1)


def test_standardised_inputs_standardise_valid_frames_and_keep_padding_zero():
    mean, scale = np.array([1.0, -2.0, 10.0]), np.array([2.0, 0.5, 4.0])
    model = models.StandardisedInputs(_Spy(), 3)
    model.standardiser.set(mean, scale)
    x = np.random.default_rng(1).normal(size=(2, 5, 3)).astype(np.float32) * 3 + 4
    lengths = np.array([5, 2])
    x[1, 2:] = 0.0  # padding
    model(jnp.asarray(x), jnp.asarray(lengths))
    expected = (x - mean) / scale
    expected[1, 2:] = 0.0
    seen, steps = model.model.seen[0]
    np.testing.assert_allclose(seen, expected, rtol=1e-6)
    np.testing.assert_array_equal(steps, lengths)
    assert model.head is model.model.head
    with pytest.raises(ValueError, match="shape"):
        model.standardiser.set(mean[:2], scale[:2])


def test_time_averaged_inputs_are_standardised_per_coefficient():
    """S2 reads D averaged coefficients as D steps of one feature: step d takes feature d's
    statistics, as averaging standardised frames would give."""
    frames = np.random.default_rng(2).normal(size=(2, 7, 4)) * [1, 5, 50, 500]
    mean, scale = np.array([0.5, -1.0, 20.0, 300.0]), np.array([1.0, 5.0, 50.0, 500.0])
    model = models.StandardisedInputs(_Spy(), 4, time_averaged=True)
    model.standardiser.set(mean, scale)
    averaged = frames.mean(axis=1)[..., None].astype(np.float32)  # [B, D, 1]
    model(jnp.asarray(averaged), jnp.full((2,), 4))
    np.testing.assert_allclose(
        model.model.seen[0][0][..., 0],
        ((frames - mean) / scale).mean(axis=1),
        rtol=1e-5,
        atol=1e-6,
    )


def test_create_model_wraps_only_when_asked():
    plain = forward.create_model(_config(), 3)
    assert not isinstance(plain, models.StandardisedInputs)
    wrapped = forward.create_model(_config(features__frame_standardise="training"), 3)
    assert isinstance(wrapped, models.StandardisedInputs)
    assert wrapped.standardiser.mean.shape == (24,)  # the smoke config's 24 mel bands
    # The parameters are the plain model's: the statistics are batch statistics.
    params = nnx.state(wrapped, nnx.Param)
    assert (
        nnx.to_pure_dict(params)["model"].keys()
        == nnx.to_pure_dict(nnx.state(plain, nnx.Param)).keys()
    )


def test_config_checks_the_option():
    config = _config(features__frame_standardise="utterance")
    with pytest.raises(ValueError, match="frame_standardise"):
        config_lib.validate(config)
    config = _config(features__frame_standardise="speaker", train__vectorize="folds")
    with pytest.raises(ValueError, match="frame_standardise='speaker'.*vectorize"):
        config_lib.validate(config)
    functionals = config_lib.load_config_file(ROOT / "configs" / "emodb_serjax.py")
    functionals.features.frame_standardise = "training"
    with pytest.raises(ValueError, match="frame_standardise"):
        config_lib.validate(functionals)


def test_a_constant_feature_is_centred_not_scaled():
    spec = FeatureSpec(frontend=None)
    waves = [np.full(500, 0.25, np.float32), np.full(900, 0.25, np.float32)]
    model = forward.create_model(
        _config(
            features__kind="waveform",
            features__frame_standardise="training",
            model__hidden_sizes=(4,),
        ),
        3,
    )
    forward.fit_input_standardiser(
        model, _config(features__kind="waveform", features__frame_standardise="training"), waves
    )
    assert features.frame_statistics(waves, spec)[1][0] < MIN_SCALE
    np.testing.assert_allclose(model.standardiser.mean[...], [0.25])
    np.testing.assert_allclose(model.standardiser.scale[...], [1.0])


@pytest.mark.trains
def test_a_saved_standardised_run_gives_inference_the_same_probabilities(tmp_path):
    # Without per-utterance CMVN (the smoke config's), so that the statistics matter.
    config = _config(features__frame_standardise="training", features__cmvn="none")
    config.train.epochs = 1
    experiments.train_and_evaluate(config, tmp_path)
    evaluation = json.loads((tmp_path / "results.json").read_text())["predictions"]
    predictor = Predictor.from_workdir(tmp_path)
    waves = [sf.read(path, dtype="float32")[0] for path in evaluation["paths"]]
    np.testing.assert_allclose(
        predictor.predict_batch(waves, RATE), evaluation["probabilities"], atol=2e-5
    )
    # The checkpoint keeps the training part's statistics (of log-mel bands in dB), not the
    # initial 0 and 1.
    loaded = load_run(tmp_path)
    model = nnx.merge(loaded.graphdef, loaded.state)
    assert isinstance(model, models.StandardisedInputs)
    mean, scale = (
        np.asarray(model.standardiser.mean[...]),
        np.asarray(model.standardiser.scale[...]),
    )
    assert mean.shape == scale.shape == (24,)
    assert np.all(np.abs(mean) > 1.0) and np.all(np.abs(scale - 1.0) > 0.1)


def test_speaker_statistics_are_each_speakers_own_frames():
    config = _config(features__frame_standardise="speaker", features__cmvn="none")
    spec = FeatureSpec.from_config(config)
    waves = _waveforms()
    speakers = ("a", "b", "a", "b")
    part = SplitData(
        tuple(
            data.Utterance(Path(f"{i}.wav"), "emodb", s, "anger") for i, s in enumerate(speakers)
        ),
        tuple(waves),
        np.zeros(4, np.int32),
    )
    stats = forward.speaker_statistics(config, part)
    assert stats.shape == (4, 2, 24)
    for rows in ([0, 2], [1, 3]):
        mean, std = features.frame_statistics([waves[i] for i in rows], spec)
        for i in rows:
            np.testing.assert_allclose(stats[i, 0], mean, rtol=1e-6)
            np.testing.assert_allclose(stats[i, 1], std, rtol=1e-6)
    assert not np.allclose(stats[0, 0], stats[1, 0])


def test_per_row_statistics_replace_the_stored_ones():
    model = models.StandardisedInputs(_Spy(), 3)
    model.standardiser.set(np.zeros(3), np.ones(3))
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 4, 3)).astype(np.float32) * 3 + 4
    x[1, 3:] = 0.0  # padding
    mean = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]], np.float32)
    scale = np.array([[2.0, 1.0, 4.0], [0.5, 3.0, 1.0]], np.float32)
    model(jnp.asarray(x), jnp.array([4, 3]), (jnp.asarray(mean), jnp.asarray(scale)))
    expected = (x - mean[:, None]) / scale[:, None]
    expected[1, 3:] = 0.0
    np.testing.assert_allclose(model.model.seen[0][0], expected, rtol=1e-6)


@pytest.mark.parametrize("segmented", [False, True])
def test_the_stored_statistics_given_per_row_change_nothing(segmented):
    """Per-row statistics reach every segment of their utterance: the model's own statistics
    given for every row give its logits exactly; another row's statistics change only it."""
    config = _config(features__frame_standardise="speaker")
    if segmented:
        config.features.segment_frames, config.features.segment_shift = 10, 5
    spec = FeatureSpec.from_config(config)
    model = forward.create_model(config, 3)
    model.standardiser.set(np.linspace(-1, 1, 24), np.linspace(1, 2, 24))
    model.eval()
    waves = np.zeros((2, 9000), np.float32)
    for i, w in enumerate(_waveforms()[2:]):
        waves[i, : len(w)] = w[:9000]
    lengths, mask = jnp.array([5000, 9000]), jnp.array([True, True])
    stored = [
        jnp.broadcast_to(v[...], (2, 24))
        for v in (model.standardiser.mean, model.standardiser.scale)
    ]
    plain = forward.predict_step(model, jnp.asarray(waves), lengths, mask, spec)
    given = forward.predict_step(model, jnp.asarray(waves), lengths, mask, spec, tuple(stored))
    np.testing.assert_allclose(given, plain, rtol=1e-6, atol=1e-7)
    other = (stored[0].at[1].add(3.0), stored[1])
    moved = forward.predict_step(model, jnp.asarray(waves), lengths, mask, spec, other)
    np.testing.assert_allclose(moved[0], plain[0], rtol=1e-6, atol=1e-7)
    assert not np.allclose(moved[1], plain[1], atol=1e-4)


@pytest.mark.trains
def test_a_speaker_standardised_run_reports_both_ways_and_inference_adapts(tmp_path, capsys):
    """The report's test figures standardise the test speaker with their own statistics and
    its unadapted ones with the training part's; inference reproduces the unadapted
    probabilities by default and the adapted ones given the test speaker's files."""
    config = _config(features__frame_standardise="speaker", features__cmvn="none")
    config.train.epochs = 1
    experiments.train_and_evaluate(config, tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert "test_unadapted" in results
    evaluation = results["predictions"]
    adapted_probs = np.asarray(evaluation["probabilities"])
    unadapted_probs = np.asarray(evaluation["probabilities_unadapted"])
    assert not np.allclose(adapted_probs, unadapted_probs, atol=1e-3)
    predictor = Predictor.from_workdir(tmp_path)
    waves = [sf.read(path, dtype="float32")[0] for path in evaluation["paths"]]
    np.testing.assert_allclose(predictor.predict_batch(waves, RATE), unadapted_probs, atol=2e-5)
    # The smoke corpus has one test speaker.
    adapted = predictor.adapted([predictor.prepare(w, RATE) for w in waves])
    np.testing.assert_allclose(adapted.predict_batch(waves, RATE), adapted_probs, atol=2e-5)
    out = tmp_path / "adapted.jsonl"
    args = ["--workdir", str(tmp_path), "--adapt", "--output", str(out), *evaluation["paths"]]
    assert predict.main(args) == 0
    assert f"adapted to {len(waves)} recording(s), taken as one speaker" in capsys.readouterr().err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    probs = [[r["probabilities"][n] for n in predictor.class_names] for r in rows]
    np.testing.assert_allclose(probs, adapted_probs, atol=2e-5)
    missing = tmp_path / "missing.wav"
    assert predict.main(["--workdir", str(tmp_path), "--adapt", str(missing)]) == 2
    assert (
        f"--adapt found no readable recording; {missing}: no such file" in capsys.readouterr().err
    )
