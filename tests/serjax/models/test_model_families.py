"""Behaviour every registered model must have, on tiny sizes of each family."""

import functools

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from serjax.models import MODEL_NAMES, create_model

NUM_CLASSES = 3
# name -> (frames, features, tiny hyper-parameters). Layer sizes are shared across families
# where possible so that initialisers and kernels compile once for the whole module.
TINY = {
    "rnn": (12, 8, dict(hidden_sizes=(4, 4), pooling="mean", head_sizes=(4,))),
    "lstm": (12, 8, dict(hidden_sizes=(4, 4))),
    "bilstm": (12, 8, dict(hidden_sizes=(4, 4), pooling="attention", attention_size=4)),
    "cnn_lstm_2d": (
        12,
        8,
        dict(filters=(4, 4), kernel_sizes=(3, 3), pool_sizes=(2, 2), hidden_sizes=(4,)),
    ),
    "cnn_lstm_2d_td": (
        12,
        8,
        dict(
            chunk_frames=3,
            filters=(4, 4),
            kernel_sizes=((2, 2), (1, 2)),
            pool_sizes=((2, 2), (1, 2)),
            hidden_sizes=(4,),
        ),
    ),
    "cnn_lstm_1d": (
        40,
        1,
        dict(filters=(4, 4), kernel_sizes=(3, 3), pool_sizes=(4, 2), hidden_sizes=(4,)),
    ),
    "crnn": (
        12,
        8,
        dict(filters=(4, 4), hidden_sizes=(4,), attention_size=4, head_sizes=(4,)),
    ),
    "cnn": (12, 10, dict(filters=(4, 4), kernel_sizes=(3, 3), pool_sizes=(2, 2), num_frames=24)),
    # One vector per utterance: only the first step is read, the rest is padding.
    "functionals": (1, 8, dict(hidden_sizes=(4,))),
}
BATCH = 3


def test_every_registered_model_is_covered():
    assert set(TINY) == set(MODEL_NAMES)


@functools.cache
def _model(name: str) -> nnx.Module:
    _, features, hparams = TINY[name]
    return create_model(
        name, num_features=features, num_classes=NUM_CLASSES, rngs=nnx.Rngs(0), **hparams
    )


def _fresh(name: str) -> nnx.Module:
    """A private copy, so one test's updates do not leak into another's."""
    return nnx.clone(_model(name))


def _batch(name: str, extra: int = 0, seed: int = 0):
    """``(x, lengths, labels)`` with random garbage in every padded frame.

    ``extra`` appends that many more padded frames; the valid frames depend only on the
    name, so batches with different ``extra`` differ in their padding alone.
    """
    frames, features, _ = TINY[name]
    x = np.random.default_rng(0).normal(size=(BATCH, frames, features))
    x = np.pad(x, ((0, 0), (0, extra), (0, 0)))
    lengths = np.array([frames, frames // 2 + 1, 2], np.int32)
    garbage = 3.0 * np.random.default_rng(seed + 1).normal(size=x.shape)
    padded = np.arange(frames + extra)[None, :, None] >= lengths[:, None, None]
    x = np.where(padded, garbage, x).astype(np.float32)
    labels = np.arange(BATCH) % NUM_CLASSES
    return jnp.asarray(x), jnp.asarray(lengths), jnp.asarray(labels)


@nnx.jit
def _logits(model, x, lengths):
    return model(x, lengths)


def _loss(model, x, lengths, labels):
    logits = model(x, lengths)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@nnx.jit
def _train_step(model, optimizer, x, lengths, labels):
    loss, grads = nnx.value_and_grad(_loss)(model, x, lengths, labels)
    optimizer.update(model, grads)
    return loss, grads


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shape_padding_invariance_and_jit(name):
    """Eager logits on a padded batch == compiled logits on the same batch with more padding.

    One comparison covers both properties (the compiled and eager paths agree, and
    appending padded frames with fresh garbage leaves the logits unchanged); checking them
    separately would cost a third compilation per family.
    """
    model = _fresh(name)
    model.eval()
    x, lengths, _ = _batch(name)
    x_more, _, _ = _batch(name, extra=7, seed=5)
    eager = model(x, lengths)
    assert eager.shape == (BATCH, NUM_CLASSES)
    assert np.all(np.isfinite(eager))
    np.testing.assert_allclose(_logits(model, x_more, lengths), eager, atol=1e-5)


@pytest.mark.parametrize(
    "name, pooling", [("lstm", dict(pooling="stats")), ("cnn", dict(time_pooling="stats"))]
)
def test_statistics_pooling_ignores_padding(name, pooling):
    _, features, hparams = TINY[name]
    model = create_model(
        name,
        num_features=features,
        num_classes=NUM_CLASSES,
        rngs=nnx.Rngs(0),
        **{**hparams, **pooling},
    )
    model.eval()
    x, lengths, _ = _batch(name)
    x_more, _, _ = _batch(name, extra=7, seed=5)
    logits = _logits(model, x, lengths)
    assert logits.shape == (BATCH, NUM_CLASSES)
    np.testing.assert_allclose(_logits(model, x_more, lengths), logits, atol=1e-5)


@pytest.mark.trains
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradient_step_lowers_loss_and_reaches_every_parameter(name):
    model = _fresh(name)
    # Batch statistics on, dropout off: the loss is a deterministic function of the weights.
    model.train()
    model.set_attributes(deterministic=True, raise_if_not_found=False)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    x, lengths, labels = _batch(name)
    loss_before, grads = _train_step(model, optimizer, x, lengths, labels)
    loss_after, _ = _train_step(model, optimizer, x, lengths, labels)
    assert float(loss_after) < float(loss_before)
    flat = nnx.to_flat_state(grads)
    assert len(flat) == len(nnx.to_flat_state(nnx.state(model, nnx.Param)))
    dead = [
        "/".join(map(str, path)) for path, g in flat if not np.any(np.asarray(g.get_value()) != 0)
    ]
    assert not dead, f"parameters without gradient: {dead}"


def test_dropout_is_random_in_training_and_off_in_eval():
    model = _fresh("lstm")  # input dropout and dropout between layers, 0.2 each
    x, lengths, _ = _batch("lstm")
    model.train()
    first, second = _logits(model, x, lengths), _logits(model, x, lengths)
    assert not np.allclose(first, second), "dropout must draw a new mask on every call"
    model.eval()
    x_more, _, _ = _batch("lstm", extra=7, seed=5)  # the shape the eval test compiled
    np.testing.assert_array_equal(_logits(model, x_more, lengths), _logits(model, x_more, lengths))


def test_batch_norm_uses_batch_statistics_in_training_and_running_ones_in_eval():
    """Time-distributed CNN: padded chunks stay out of the statistics and the logits."""
    model = _fresh("cnn_lstm_2d_td")  # no dropout: training mode is deterministic
    model.train()
    norm = model.blocks[0].norm
    x, lengths, _ = _batch("cnn_lstm_2d_td")
    x_more, _, _ = _batch("cnn_lstm_2d_td", extra=7, seed=5)
    logits = _logits(model, x, lengths)
    updated = np.asarray(norm.mean[...])
    assert not np.allclose(updated, 0.0), "training mode must update the running mean"
    same = _fresh("cnn_lstm_2d_td")
    same.train()
    np.testing.assert_allclose(_logits(same, x_more, lengths), logits, atol=1e-5)
    np.testing.assert_allclose(same.blocks[0].norm.mean[...], updated, atol=1e-6)
    model.eval()
    eval_logits = _logits(model, x_more, lengths)
    np.testing.assert_array_equal(norm.mean[...], updated)
    assert not np.allclose(eval_logits, logits), "eval mode must use the running statistics"


def test_same_seed_same_model_and_same_dropout():
    frames, features, hparams = TINY["lstm"]
    build = lambda seed: create_model(  # noqa: E731
        "lstm", num_features=features, num_classes=NUM_CLASSES, rngs=nnx.Rngs(seed), **hparams
    )
    a, b, other = build(0), build(0), build(1)
    for (path, p), (_, q) in zip(
        nnx.to_flat_state(nnx.state(a, nnx.Param)),
        nnx.to_flat_state(nnx.state(b, nnx.Param)),
        strict=True,
    ):
        np.testing.assert_array_equal(p.get_value(), q.get_value(), err_msg=str(path))
    x, lengths, _ = _batch("lstm")
    # Both in training mode: the dropout masks come from the seeded rngs too.
    np.testing.assert_array_equal(_logits(a, x, lengths), _logits(b, x, lengths))
    assert not np.allclose(other.head.out.kernel[...], a.head.out.kernel[...])
