"""The functionals system: its feature path, full-batch fitting, the honest choice of L2, and a
tiny leave-one-speaker-out run read back by inference."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf
from flax import nnx

from serjax import config_lib, experiments, fit_functionals, forward, predict
from serjax.features import FeatureSpec, functionals_of, model_inputs
from serjax.fit_functionals import FitSettings, fit_classifier, fit_head, select_l2
from serjax.models import create_model
from serjax.predict import Predictor

RATE = 16000
ATOL = 2e-5  # results are stored rounded to 6 decimals


def _functionals_config() -> config_lib.ml_collections.ConfigDict:
    """A small functionals run on the synthetic corpus, four speakers, leave one out."""
    config = config_lib.base_config()
    config.download = False
    config.data.corpora = ("synthetic",)
    config.data.synthetic_speakers = 4
    config.data.synthetic_per_class = 4
    config.data.protocol = "loso"
    config.features.kind = "functionals"
    config.features.n_mels = 20
    config.features.n_mfcc = 6
    config.features.functionals_log_mel = True
    config.features.functionals_voiced = True
    config.features.standardise = "speaker"
    config.model.name = "functionals"
    config.optim.learning_rate = 0.03
    config.optim.class_weighted = True
    config.optim.l2_grid = (1e-3, 1e-1)
    config.train.epochs = 60
    config.train.eval_batch_size = 8
    return config


def _tone(seconds: float, f0: float, seed: int) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    noise = 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * f0 * t) + noise).astype(np.float32)


def test_functionals_feature_path_is_padding_invariant():
    """Through the forward path: a padded batch gives each utterance its own vector and
    probabilities, whatever the padding holds."""
    config = _functionals_config()
    config_lib.validate(config)
    spec = FeatureSpec.from_config(config)
    # F0, 14 descriptors (6 MFCCs), their 14 deltas, 20 log-mel bands and the 14 descriptors
    # over voiced frames, 11 functionals each.
    assert spec.num_features == spec.utterance.num_features == (1 + 14 + 14 + 20 + 14) * 11
    waves = [_tone(0.5, 180.0, 0), _tone(0.3, 120.0, 1)]
    batch = np.full((2, 8000), 0.4, np.float32)  # loud padding must not leak
    for row, wave in enumerate(waves):
        batch[row, : wave.size] = wave
    lengths = np.array([w.size for w in waves], np.int32)
    inputs = jax.jit(model_inputs, static_argnums=2)
    x, steps = inputs(batch, lengths, spec)
    assert x.shape == (2, 1, spec.num_features) and np.all(np.asarray(steps) == 1)
    alone = inputs(waves[1][None], lengths[1:], spec)[0]
    np.testing.assert_allclose(x[1], alone[0], rtol=1e-4, atol=1e-4 * np.abs(alone).max())
    # functionals_of batches by its own lengths and gives the same vectors.
    np.testing.assert_allclose(
        functionals_of(waves, spec), x[:, 0], rtol=1e-4, atol=1e-4 * np.abs(alone).max()
    )
    model = forward.create_model(config, num_classes=3)
    model.standardiser.set(*(np.asarray(v) for v in (x[0, 0], 1.0 + np.abs(x[1, 0]))))
    model.eval()
    step = forward.jitted_predict_step(*nnx.split(model)[:1], spec)
    state = nnx.state(model)
    mask = np.ones(2, bool)
    together = step(state, batch, lengths, mask)
    one = step(state, waves[1][None], lengths[1:], mask[:1])
    np.testing.assert_allclose(together[1], one[0], atol=1e-5)


def test_fit_head_separates_a_separable_problem_and_ignores_zero_weights():
    rng = np.random.default_rng(0)
    centres = 4.0 * np.eye(3, 5)
    labels = np.repeat(np.arange(3), 20)
    z = (centres[labels] + rng.normal(size=(60, 5))).astype(np.float32)
    # Ten extra rows with wrong labels and weight 0 must change nothing.
    z_all = np.concatenate([z, z[:10]])
    wrong = np.concatenate([labels, (labels[:10] + 1) % 3])
    weights = np.concatenate([np.ones(60), np.zeros(10)]).astype(np.float32)
    model = create_model("functionals", num_features=5, num_classes=3, rngs=nnx.Rngs(0))
    fit = jax.jit(
        lambda z, t, w: fit_head(model.head, z, t, w, 1e-3, steps=200, learning_rate=0.05)
    )
    params = fit(z_all, jax.nn.one_hot(wrong, 3), weights)
    clean = fit(z, jax.nn.one_hot(labels, 3), weights[:60])
    nnx.update(model.head, params)
    assert np.mean(np.asarray(model.head(z)).argmax(-1) == labels) == 1.0
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(clean), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _speaker_problem(num_speakers: int = 4, per_class: int = 6, seed: int = 0):
    """Three classes in 6 functionals; each speaker shifts and scales every functional."""
    rng = np.random.default_rng(seed)
    rows, labels, speakers = [], [], []
    for s in range(num_speakers):
        offset, gain = rng.normal(scale=5.0, size=6), rng.uniform(0.5, 2.0, size=6)
        for k in range(3):
            x = 2.0 * np.eye(3, 6)[k] + rng.normal(scale=0.5, size=(per_class, 6))
            rows.append(offset + gain * x)
            labels += [k] * per_class
            speakers += [f"spk{s}"] * per_class
    return np.concatenate(rows).astype(np.float32), np.array(labels), np.array(speakers)


def test_select_l2_scores_every_candidate_on_held_out_speakers():
    x, labels, speakers = _speaker_problem()
    model = create_model("functionals", num_features=6, num_classes=3, rngs=nnx.Rngs(0))
    grid = (1e-3, 1e3)  # the second is so strong that it can only predict one class
    selection = select_l2(
        model.head,
        x,
        labels,
        speakers,
        grid=grid,
        standardise="speaker",
        num_classes=3,
        balanced=True,
        steps=100,
        learning_rate=0.05,
    )
    assert [row["l2"] for row in selection.table] == list(grid)
    assert selection.l2 == 1e-3 and selection.val_ua == selection.table[0]["val_ua"] > 0.9
    assert selection.table[1]["val_ua"] < 0.5
    with pytest.raises(ValueError, match="2 speakers"):
        select_l2(
            model.head,
            x[:18],
            labels[:18],
            speakers[:18],
            grid=grid,
            standardise="speaker",
            num_classes=3,
            balanced=True,
            steps=10,
            learning_rate=0.05,
        )


@pytest.mark.parametrize("standardise", ["speaker", "training"])
def test_fit_classifier_keeps_the_statistics_it_standardised_with(standardise):
    x, labels, speakers = _speaker_problem()
    model = create_model("functionals", num_features=6, num_classes=3, rngs=nnx.Rngs(0))
    settings = FitSettings(standardise=standardise, l2=1e-3, steps=100, learning_rate=0.05)
    assert fit_classifier(model, x, labels, speakers, settings) is None  # no grid, no selection
    mean, scale = (np.asarray(v[...]) for v in (model.standardiser.mean, model.standardiser.scale))
    if standardise == "training":
        np.testing.assert_allclose(mean, x.mean(0), rtol=1e-5)
        np.testing.assert_allclose(scale, x.std(0), rtol=1e-5)
    else:
        means = np.stack([x[speakers == s].mean(0) for s in np.unique(speakers)])
        np.testing.assert_allclose(mean, means.mean(0), rtol=1e-5)
    # Adapted to one training speaker, the model classifies that speaker's utterances.
    rows = speakers == "spk1"
    model.standardiser.set(x[rows].mean(0), x[rows].std(0))
    accuracy = np.mean(np.asarray(model(jnp.asarray(x[rows]))).argmax(-1) == labels[rows])
    assert accuracy > 0.9


@pytest.fixture(scope="module")
def run(tmp_path_factory, request) -> tuple[Path, list]:
    """A tiny leave-one-speaker-out functionals run; records every call of select_l2."""
    calls = []
    original = fit_functionals.select_l2

    def spy(head, x, labels, speakers, **kwargs):
        calls.append({"speakers": set(np.asarray(speakers).tolist()), "rows": len(x)})
        return original(head, x, labels, speakers, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(fit_functionals, "select_l2", spy)
    try:
        path = tmp_path_factory.mktemp("functionals_run")
        experiments.train_and_evaluate(_functionals_config(), path)
    finally:
        patch.undo()
    return path, calls


@pytest.mark.trains
def test_l2_is_chosen_without_the_test_speaker(run):
    path, calls = run
    folds = sorted(p.name for p in (path / "folds").iterdir())
    assert folds == ["spk01", "spk02", "spk03", "spk04"] and len(calls) == 4
    for fold, call in zip(folds, calls, strict=True):
        test = json.loads((path / "folds" / fold / "results.json").read_text())
        assert f"synthetic:{fold}" not in call["speakers"] and len(call["speakers"]) == 3
        assert call["rows"] == sum(test["data"][p]["utterances"] for p in ("train", "val"))
        assert test["history"][-1]["chosen_l2"] in (1e-3, 1e-1)


@pytest.mark.trains
def test_functionals_run_reports_and_predicts(run):
    path, _ = run
    result = json.loads((path / "results.json").read_text())
    assert result["test"]["ua"] > 0.8
    assert set(result["folds"]) == {"spk01", "spk02", "spk03", "spk04"}
    assert {"wa_mean", "ua_std"} <= set(result["fold_summary"])
    assert "ua" in result["test_unadapted"]
    fold = json.loads((path / "folds" / "spk02" / "results.json").read_text())
    predictions = fold["predictions"]
    waves = [sf.read(p, dtype="float32")[0] for p in predictions["paths"]]
    # Inference reads the checkpoint: without adaptation, the statistics saved with the model.
    predictor = Predictor.from_workdir(path, fold="spk02")
    plain = predictor.predict_batch(waves, RATE)
    np.testing.assert_allclose(plain, predictions["probabilities_unadapted"], atol=ATOL)
    # Adapted to the test speaker's files: the speaker-standardised test figures.
    adapted = predictor.adapted([predictor.prepare(w, RATE) for w in waves])
    np.testing.assert_allclose(
        adapted.predict_batch(waves, RATE), predictions["probabilities"], atol=ATOL
    )
    # One recording has no spread to standardise by: refused, by the API and the CLI.
    with pytest.raises(ValueError, match="at least 2 recordings"):
        predictor.adapted([predictor.prepare(waves[0], RATE)])
    one = ["--workdir", str(path), "--fold", "spk02", "--adapt", predictions["paths"][0]]
    assert predict.main(one) == 2
    out = path / "adapted.jsonl"
    code = predict.main(
        ["--workdir", str(path), "--fold", "spk02", "--adapt", "--output", str(out)]
        + predictions["paths"]
    )
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    names = predictor.class_names
    probs = [[r["probabilities"][n] for n in names] for r in rows]
    np.testing.assert_allclose(probs, predictions["probabilities"], atol=ATOL)
