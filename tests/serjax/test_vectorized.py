"""Folds' models trained side by side (serjax.vectorized) against the same folds trained alone.

The two folds differ in size (6 and 9 steps per epoch) and in padded length (stacking pads
the shorter fold's batches further), and dropout is on (S1's model: two LSTM layers on drawn
segments), so the masked steps, the padded lengths and the RNG state of a masked model all
count.
"""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from serjax import config_lib, data, experiments, train
from serjax.checkpointing import latest_or_none
from serjax.vectorized import StackedTrainer, stack, unstack

pytestmark = pytest.mark.trains

CLASSES = ("anger", "sadness")
# Fold a stops after one epoch (as early stopping would stop it), b trains on for a second:
# a's state must stay as it was while b's steps run.
EPOCHS = [1, 2]
STEPS = [6, 9]  # per epoch, of folds a and b


def _config(tiny_config, epochs):
    config = tiny_config(hidden_sizes=(8, 8), input_dropout=0.1, dropout=0.2)
    config.data.num_buckets = 1
    config.features.segment_frames = 10
    config.features.segment_shift = 3
    config.optim.learning_rate = 0.02
    config.train.epochs = epochs
    config.train.segment_batch = 8
    config.train.segment_group = 2
    config.train.eval_batch_size = 2
    return config


def _part(n, seed):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    waves = []
    for label in labels:
        t = np.arange(int(rng.integers(1500, 4000))) / 8000
        wave = np.sin(2 * np.pi * (200 + 500 * label) * t) + 0.1 * rng.standard_normal(t.size)
        waves.append(wave.astype(np.float32))
    utts = tuple(
        data.Utterance(path=f"{seed}_{i}.wav", corpus="test", speaker=f"s{seed}", label="anger")
        for i in range(n)
    )
    return train.SplitData(utts, tuple(waves), labels.astype(np.int32))


# Two folds: 4 and 7 training utterances (6 and 9 steps of 8 segments), 3 validation, 3 test.
FOLDS = {
    "a": {"train": (4, 0), "val": (3, 1), "test": (3, 2)},
    "b": {"train": (7, 3), "val": (3, 4), "test": (3, 5)},
}


def _configs(tiny_config):
    return [_config(tiny_config, epochs) for epochs in EPOCHS]


class Killed(Exception):
    """The process dying mid-run."""


class _Writer:
    def scalars(self, *args):
        pass

    def confusion_matrix(self, *args):
        pass


def _trainers(root, configs):
    return [
        train.FoldTrainer(
            config,
            root / name,
            CLASSES,
            {part: _part(*spec) for part, spec in FOLDS[name].items()},
            train.Runtime(),
            _Writer(),
        )
        for name, config in zip(FOLDS, configs, strict=True)
    ]


def _is_key(x):
    return jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _outcome(trainer, progress, test):
    """What must agree: the history, the last and the best (tested) parameters, predictions."""
    last = nnx.to_pure_dict(jax.device_get(trainer.state[0]))
    last = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, last)
    return {"progress": progress, "last": last, "test": test}


@pytest.fixture(scope="module")
def alone(tmp_path_factory, tiny_config):
    """Each fold trained on its own, as train.vectorize='none' runs it."""
    root = tmp_path_factory.mktemp("alone")
    outcomes = []
    for trainer in _trainers(root, _configs(tiny_config)):
        progress = trainer.train()
        outcome = _outcome(trainer, progress, None)
        outcome["test"] = trainer.test()
        trainer.close()
        outcomes.append(outcome)
    return outcomes


def _assert_same(got, want):
    assert got["progress"].epoch == want["progress"].epoch
    assert got["progress"].step == want["progress"].step
    for row, expected in zip(got["progress"].history, want["progress"].history, strict=True):
        for key in ("train_loss", "val_loss", "val_ua", "learning_rate"):
            np.testing.assert_allclose(row[key], expected[key], rtol=2e-5, err_msg=key)
    # Float rounding differs (batched matrix products, padded lengths); Adam's normalised
    # steps carry it into the parameters a little more than into the losses.
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4),
        got["last"],
        want["last"],
    )
    (scores, probs), (want_scores, want_probs) = got["test"], want["test"]
    np.testing.assert_allclose(probs, want_probs, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(scores["loss"], want_scores["loss"], rtol=1e-4)


def _train_together(trainers):
    together = StackedTrainer(trainers)
    progress = together.train()
    outcomes = [_outcome(t, p, None) for t, p in zip(trainers, progress, strict=True)]
    for outcome, test in zip(outcomes, together.test(), strict=True):
        outcome["test"] = test
    for t in trainers:
        t.close()
    return outcomes


def test_stacked_folds_train_as_each_fold_alone(tmp_path, alone, tiny_config):
    trainers = _trainers(tmp_path, _configs(tiny_config))
    assert [t.steps_per_epoch for t in trainers] == STEPS
    for got, want in zip(_train_together(trainers), alone, strict=True):
        _assert_same(got, want)
    # Each fold's directory holds its own checkpoints, as a fold trained alone leaves them.
    assert (
        latest_or_none(trainers[1].checkpoints.directory)
        == alone[1]["progress"].step
        == EPOCHS[1] * STEPS[1]
    )


def test_a_killed_stacked_run_resumes_every_model(tmp_path, alone, tiny_config):
    trainers = _trainers(tmp_path, _configs(tiny_config))
    together = StackedTrainer(trainers)
    real_step, calls = together._train, []

    def killed(*args):
        calls.append(1)
        if len(calls) == max(STEPS) + 2:  # in the second epoch, after the first was saved
            raise Killed
        return real_step(*args)

    together._train = killed
    with pytest.raises(Killed):
        together.train()
    for t in trainers:
        t.close()
    assert [latest_or_none(t.checkpoints.directory) for t in trainers] == STEPS
    # A new process: fresh trainers on the same folders resume both models.
    for got, want in zip(
        _train_together(_trainers(tmp_path, _configs(tiny_config))), alone, strict=True
    ):
        _assert_same(got, want)


def test_stack_and_unstack_are_inverse():
    trees = [{"w": np.full((2, 3), k, np.float32), "key": jax.random.key(k)} for k in range(3)]
    stacked = stack(trees)
    assert stacked["w"].shape == (3, 2, 3)
    for k, tree in enumerate(trees):
        np.testing.assert_array_equal(unstack(stacked, k)["w"], tree["w"])
        assert jax.random.key_data(unstack(stacked, k)["key"]).tolist() == (
            jax.random.key_data(tree["key"]).tolist()
        )


def test_models_of_different_configs_are_refused(tmp_path, tiny_config):
    one, other = _configs(tiny_config)
    other.model.hidden_sizes = (4, 4)
    with pytest.raises(ValueError, match="differ in model"):
        StackedTrainer(_trainers(tmp_path, [one, other]))


def test_seeds_side_by_side_give_each_seed_s_run(tmp_path):
    # The smoke run's models of two seeds, with augmentation on (its seed is a traced input of
    # the shared step), against the second seed's run made alone.
    config = config_lib.load_config_file(experiments.CONFIGS_DIR / "smoke.py")
    config.data.synthetic_per_class = 3
    config.train.epochs = 1
    config.augment.enabled = True
    config.augment.noise_prob = 1.0
    # Noise is drawn in the batch's padded shape: with one length bucket the seeds' batches
    # are never padded further, so the draws are those of the run alone (serjax.vectorized).
    config.data.num_buckets = 1
    config.train.vectorize, config.train.seeds = "seeds", (0, 1)
    together = experiments.train_and_evaluate(config, tmp_path / "together")["seeds"]
    config.train.vectorize, config.train.seeds, config.seed = "none", (), 1
    alone = experiments.train_and_evaluate(config, tmp_path / "alone")
    got = json.loads((tmp_path / "together" / "seed1" / "results.json").read_text())
    assert got["timings"]["models_together"] == 2 and sorted(together) == [0, 1]
    assert got["config"]["seed"] == 1 and got["epochs"] == alone["epochs"] == 1
    for row, expected in zip(got["history"], alone["history"], strict=True):
        np.testing.assert_allclose(row["train_loss"], expected["train_loss"], rtol=2e-5)
        np.testing.assert_allclose(row["val_loss"], expected["val_loss"], rtol=2e-5)
    np.testing.assert_allclose(
        got["predictions"]["probabilities"], alone["predictions"]["probabilities"], atol=1e-4
    )
    # Seed 0 trained its own model: other draws, other numbers.
    assert together[0]["history"] != got["history"]
