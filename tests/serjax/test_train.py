"""The loop of one fold: a bad loss stops it with the last good checkpoint kept."""

import jax.numpy as jnp
import numpy as np
import pytest

from serjax import data, train


@pytest.mark.trains
def test_a_non_finite_loss_stops_the_run_naming_the_step(tmp_path, tiny_config):
    config = tiny_config()
    config.train.epochs = 3
    config.train.batch_size = 2
    config.train.eval_batch_size = 2
    rng = np.random.default_rng(0)
    waves = tuple(rng.standard_normal(3000).astype(np.float32) * 0.1 for _ in range(4))
    utts = tuple(
        data.Utterance(path=tmp_path / f"{i}.wav", corpus="test", speaker=f"s{i}", label="anger")
        for i in range(4)
    )
    part = train.SplitData(utts, waves, np.array([0, 1, 0, 1], np.int32))
    parts = {"train": part, "val": part, "test": part}

    class Writer:
        def scalars(self, *args):
            pass

        def confusion_matrix(self, *args):
            pass

    trainer = train.FoldTrainer(
        config, tmp_path, ("anger", "sadness"), parts, train.Runtime(), Writer()
    )
    real_step = trainer._train
    calls = []

    def poisoned(state, batch, weights):
        calls.append(1)
        state, loss = real_step(state, batch, weights)
        return state, loss if len(calls) < 3 else loss * jnp.nan

    trainer._train = poisoned
    with pytest.raises(train.NonFiniteLossError, match="at step 3"):
        trainer.train()
    # Epoch 1 (steps 1-2) was saved before the bad step; it is still there to resume from.
    assert trainer.checkpoints.latest_step() == 2
    trainer.close()
