"""The loop of one fold: a bad loss stops it with the last good checkpoint kept; a parameter
average is what evaluation and the best checkpoint use."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from serjax import data, steps, train


class _Writer:
    def scalars(self, *args):
        pass

    def confusion_matrix(self, *args):
        pass


def _trainer(tmp_path, config):
    """A fold trainer on four noise clips (train, validation and test alike)."""
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
    return train.FoldTrainer(
        config, tmp_path, ("anger", "sadness"), parts, train.Runtime(), _Writer()
    )


def test_parameter_average_is_the_bias_corrected_moving_average():
    model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    decay = 0.8
    tx = optax.chain(optax.sgd(0.1), steps.parameter_average(decay))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    x = jnp.asarray([[1.0, -2.0], [0.5, 3.0]])
    average, seen = 0.0, []
    for _ in range(3):
        grads = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(model)
        optimizer.update(model, grads)
        kernel = np.asarray(model.kernel[...])
        seen.append(kernel)
        average = decay * average + (1 - decay) * kernel
    got = steps.averaged_parameters(optimizer.opt_state, decay)
    np.testing.assert_allclose(got["kernel"], average / (1 - decay**3), rtol=1e-6)
    assert not np.allclose(got["kernel"], seen[-1])
    # An optimiser without the transform keeps no average.
    assert steps.averaged_parameters(optax.sgd(0.1).init({"w": 0.0}), decay) is None


@pytest.mark.trains
def test_with_a_parameter_average_the_best_checkpoint_holds_the_average(tmp_path, tiny_config):
    config = tiny_config()
    config.train.epochs = 2
    config.optim.ema_decay = 0.5
    trainer = _trainer(tmp_path, config)
    trainer.train()
    items, _ = trainer.checkpoints.restore("best", trainer.template)
    _, optimizer = nnx.merge(trainer.train_graph, trainer.state)
    stored_optimizer = nnx.state(optimizer)
    nnx.replace_by_pure_dict(stored_optimizer, items["optimizer"])
    nnx.update(optimizer, stored_optimizer)
    average = steps.averaged_parameters(optimizer.opt_state, 0.5)
    best = items["model"]
    for path, value in jax.tree_util.tree_leaves_with_path(average):
        stored = best
        for key in path:
            stored = stored[key.key]
        np.testing.assert_allclose(stored, value, rtol=1e-6, err_msg=str(path))
    # The latest checkpoint keeps the raw parameters, from which training resumes.
    latest, _ = trainer.checkpoints.restore("latest", trainer.template)
    trainer.close()
    assert not np.allclose(latest["model"]["head"]["out"]["kernel"], best["head"]["out"]["kernel"])


@pytest.mark.trains
def test_a_non_finite_loss_stops_the_run_naming_the_step(tmp_path, tiny_config):
    config = tiny_config()
    config.train.epochs = 3
    trainer = _trainer(tmp_path, config)
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
