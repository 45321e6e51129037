"""Behaviour every registered model must have, on tiny sizes of each family."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from serjax.models import MODEL_NAMES, create_model

NUM_CLASSES = 3
# name -> (frames, features, tiny hyper-parameters)
TINY = {
    "rnn": (9, 5, dict(hidden_sizes=(6, 6), summary="mean", head_sizes=(4,))),
    "lstm": (9, 5, dict(hidden_sizes=(6, 6))),
    "bilstm": (9, 5, dict(hidden_sizes=(6, 6), summary="attention", attention_size=4)),
    "cnn_lstm_2d": (
        12,
        8,
        dict(
            filters=(3, 4),
            kernel_sizes=((3, 3), (3, 3)),
            pool_sizes=((2, 2), (2, 2)),
            hidden_sizes=(6,),
        ),
    ),
    "cnn_lstm_2d_td": (
        12,
        8,
        dict(
            chunk_frames=3,
            filters=(3, 4),
            kernel_sizes=((2, 2), (1, 2)),
            pool_sizes=((2, 2), (1, 2)),
            hidden_sizes=(5,),
        ),
    ),
    "cnn_lstm_1d": (
        40,
        1,
        dict(filters=(3, 4), kernel_sizes=(3, 3), pool_sizes=(4, 2), hidden_sizes=(6,)),
    ),
    "crnn": (
        12,
        8,
        dict(filters=(3, 4), hidden_sizes=(5, 4), attention_size=4, head_sizes=(5,)),
    ),
    "cnn": (
        12,
        12,
        dict(
            filters=(3, 4),
            kernel_sizes=((3, 4), (2, 2)),
            pool_sizes=((2, 2), (2, 2)),
            num_frames=24,
        ),
    ),
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


def _batch(name: str, seed: int = 0):
    """Inputs with random garbage in the padding."""
    frames, features, _ = TINY[name]
    key_x, key_pad = jax.random.split(jax.random.key(seed))
    lengths = jnp.asarray([frames, frames // 2 + 1, 2], jnp.int32)
    x = jax.random.normal(key_x, (BATCH, frames, features))
    pad = (jnp.arange(frames)[None, :] >= lengths[:, None])[..., None]
    x = jnp.where(pad, 3.0 * jax.random.normal(key_pad, x.shape), x)
    labels = jnp.arange(BATCH) % NUM_CLASSES
    return x, lengths, labels


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
    model = _fresh(name)
    model.eval()
    x, lengths, _ = _batch(name)
    logits = _logits(model, x, lengths)
    assert logits.shape == (BATCH, NUM_CLASSES)
    assert np.all(np.isfinite(logits))
    # Appending padding (fresh garbage everywhere past the lengths, longer T) changes nothing.
    frames, extra = x.shape[1], 7
    noise = 3.0 * jax.random.normal(jax.random.key(9), (BATCH, frames + extra, x.shape[2]))
    valid = (jnp.arange(frames + extra) < lengths[:, None])[..., None]
    x_more = jnp.where(valid, jnp.pad(x, ((0, 0), (0, extra), (0, 0))), noise)
    np.testing.assert_allclose(_logits(model, x_more, lengths), logits, atol=1e-5)
    # Eager execution agrees with the compiled one.
    np.testing.assert_allclose(model(x, lengths), logits, atol=1e-5)


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
        "/".join(map(str, path))
        for path, g in flat
        if not np.any(np.asarray(g.get_value()) != 0)
    ]
    assert not dead, f"parameters without gradient: {dead}"
