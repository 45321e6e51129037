"""The steps: L2 penalty, the loss going down, augmentation off, evaluation, drawn segments."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from serjax import augment, forward, steps
from serjax.features import FeatureSpec


def _batch(seed=0, batch=4, samples=4000):
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 8000
    labels = np.arange(batch) % 2
    waves = np.stack([np.sin(2 * np.pi * (200 + 600 * y) * t) for y in labels]).astype(np.float32)
    waves += 0.01 * rng.standard_normal(waves.shape).astype(np.float32)
    return {
        "waveforms": jnp.asarray(waves),
        "lengths": jnp.asarray([samples, samples - 800, samples - 1600, samples], jnp.int32),
        "labels": jnp.asarray(labels, jnp.int32),
        "mask": jnp.asarray([True, True, True, False]),
    }


def test_l2_penalty_sums_squares_of_the_selected_parameters_only(tiny_config):
    model = forward.create_model(tiny_config(), 2, seed=0)
    params = nnx.state(model, nnx.Param)
    head = sum(
        float(jnp.sum(v.get_value() ** 2))
        for path, v in nnx.to_flat_state(params)
        if "head" in [str(p) for p in path]
    )
    everything = sum(float(jnp.sum(v.get_value() ** 2)) for _, v in nnx.to_flat_state(params))
    assert 0 < head < everything
    np.testing.assert_allclose(float(steps.l2_penalty(params, "head")), head, rtol=1e-6)
    np.testing.assert_allclose(float(steps.l2_penalty(params, "")), everything, rtol=1e-6)


@pytest.mark.trains
@pytest.mark.parametrize("segmented", [False, True])
def test_train_steps_lower_the_loss(segmented, tiny_config):
    config = tiny_config()
    config.features.segment_frames = 10 if segmented else 0
    config.features.segment_shift = 5
    config.optim.learning_rate = 0.02
    spec = FeatureSpec.from_config(config)
    model, optimizer = steps.build_model_and_optimizer(config, 2)
    model.train()
    graphdef, state = nnx.split((model, optimizer))
    step = steps.StepConfig(spec=spec, num_classes=2, l2=1e-4)
    run = jax.jit(functools.partial(steps.train_step, graphdef, step=step))
    batch = _batch()
    losses = []
    for _ in range(20):
        state, loss = run(state, batch, jnp.ones(2))
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_label_smoothing_trains_on_the_smoothed_targets(tiny_config):
    config = tiny_config()
    spec = FeatureSpec.from_config(config)
    model, optimizer = steps.build_model_and_optimizer(config, 2)
    batch = _batch()
    step = steps.StepConfig(spec=spec, num_classes=2, label_smoothing=0.2)
    logits, _, _ = steps._logits(model, batch["waveforms"], batch["lengths"], batch["mask"], step)
    log_p = np.asarray(jax.nn.log_softmax(logits[:, 0]))
    real = np.asarray(batch["mask"])
    # (1 - a) * one-hot + a / K, by hand; the class weights (2 and 1) follow the true label.
    weights = np.array([2.0, 1.0])
    labels = np.asarray(batch["labels"])
    targets = 0.8 * np.eye(2)[labels] + 0.1
    ce = -(targets * log_p).sum(-1)
    expected = (ce * weights[labels])[real].sum() / weights[labels][real].sum()
    graphdef, state = nnx.split((model, optimizer))
    _, loss = steps.train_step(graphdef, state, batch, jnp.asarray(weights), step)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_with_augmentation_off_training_sees_the_evaluation_features(tiny_config):
    config = tiny_config()
    spec = FeatureSpec.from_config(config)
    model, _ = steps.build_model_and_optimizer(config, 2)
    model.eval()
    batch = _batch()
    off = augment.AugmentConfig.from_config(config.augment)
    step = steps.StepConfig(spec=spec, num_classes=2, augment=off)
    args = (model, batch["waveforms"], batch["lengths"], batch["mask"])
    evaluated, _, _ = steps._logits(*args, step)
    trained, _, pairing = steps._logits(*args, step, key=jax.random.key(3))
    assert pairing is None
    np.testing.assert_array_equal(np.asarray(trained), np.asarray(evaluated))
    # And switched on, the same key changes what the model sees.
    noisy = dataclasses.replace(off, noise_prob=1.0)
    on = dataclasses.replace(step, augment=noisy)
    augmented, _, _ = steps._logits(*args, on, key=jax.random.key(3))
    assert not np.allclose(np.asarray(augmented), np.asarray(evaluated))


def _segmented_model(tiny_config):
    """A tiny model in eval mode on 10-frame segments every 5 frames, and its step config."""
    config = tiny_config()
    config.features.segment_frames = 10
    config.features.segment_shift = 5
    model = forward.create_model(config, 2)
    model.eval()
    return model, steps.StepConfig(spec=FeatureSpec.from_config(config), num_classes=2)


def test_eval_step_averages_segment_probabilities_per_utterance(tiny_config):
    model, step = _segmented_model(tiny_config)
    graphdef, state = nnx.split(model)
    batch = _batch()
    probs, losses = steps.eval_step(graphdef, state, batch, step)
    logits, weight, _ = steps._logits(
        model, batch["waveforms"], batch["lengths"], batch["mask"], step
    )
    segment_probs = np.asarray(jax.nn.softmax(logits, -1))
    w = np.asarray(weight)
    for b in range(3):  # real rows
        expected = segment_probs[b][w[b] > 0].mean(0)
        np.testing.assert_allclose(np.asarray(probs[b]), expected, rtol=1e-5)
        label = int(batch["labels"][b])
        np.testing.assert_allclose(float(losses[b]), -np.log(expected[label]), rtol=1e-5)


def test_drawn_segments_give_the_logits_of_those_segments_only(tiny_config):
    model, step = _segmented_model(tiny_config)
    batch = _batch()
    args = (model, batch["waveforms"], batch["lengths"], batch["mask"], step)
    every, every_weight, _ = steps._logits(*args)
    index = jnp.asarray([[0, 3], [1, 1], [2, 0], [0, 0]], jnp.int32)
    drawn_mask = jnp.asarray([[True, True], [True, False], [True, True], [True, True]])
    logits, weight, _ = steps._logits(*args, drawn=(index, drawn_mask))
    assert logits.shape == (4, 2, 2)
    for b in range(4):
        for g in range(2):
            k = int(index[b, g])
            np.testing.assert_allclose(logits[b, g], every[b, k], rtol=1e-5, atol=1e-6)
            expected = float(every_weight[b, k]) * bool(drawn_mask[b, g])
            assert float(weight[b, g]) == expected
    # The padding row (mask False) weighs nothing.
    assert not np.asarray(weight[3]).any()
