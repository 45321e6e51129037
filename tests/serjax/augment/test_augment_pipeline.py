"""The augmented model input as the train step builds it: order, per-example draws, mixup."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from augment_testlib import ALL_ON, FRONTEND, SPEC, batch, snr_db

from serjax import augment
from serjax.augment import AugmentConfig, pipeline
from serjax.features import FeatureSpec, model_inputs

_inputs = jax.jit(pipeline.augmented_inputs, static_argnums=(3, 4))
_waveforms = jax.jit(pipeline.augment_waveforms, static_argnums=3)
_features = jax.jit(pipeline.augment_features, static_argnums=(3, 4))
_mixup = jax.jit(pipeline.mixup, static_argnums=4)
_mixup_targets = jax.jit(pipeline.mixup_targets, static_argnums=1)
_plain = jax.jit(model_inputs, static_argnums=2)


def test_off_is_exactly_model_inputs():
    # The same program, not merely the same numbers: augmentation off costs nothing.
    x, lengths = batch([8000, 5000, 6400], 8000)
    key = jax.random.key(1)
    expected = str(jax.make_jaxpr(lambda k, x, n: model_inputs(x, n, SPEC))(key, x, lengths))
    for aug in (AugmentConfig(), AugmentConfig(mixup_alpha=0.4, offline=True), None):
        program = jax.make_jaxpr(
            lambda k, x, n, aug=aug: pipeline.augmented_inputs(k, x, n, SPEC, aug)
        )
        assert str(program(key, x, lengths)) == expected


def test_power_stage_transforms_at_their_identity_give_the_plain_features():
    # Picked with probability 1 but with parameters that change nothing: the split front end
    # (power stage, transforms, features from power with a per-example filterbank) must then
    # give dsp.features.
    identity = AugmentConfig(
        pitch_prob=1.0,
        semitones=(0.0, 0.0),
        stretch_prob=1.0,
        stretch=(1.0, 1.0),
        vtlp_prob=1.0,
        vtlp_alpha=(1.0, 1.0),
    )
    x, lengths = batch([8000, 5000, 6400, 3000], 8000)
    plain, steps = _plain(x, lengths, SPEC)
    got, got_steps = _inputs(jax.random.key(0), x, lengths, SPEC, identity)
    np.testing.assert_array_equal(got_steps, steps)
    np.testing.assert_allclose(got, plain, atol=1e-3)


def test_same_key_same_output_other_key_other_output_shapes_kept():
    x, lengths = batch([8000, 6000, 7000, 3000], 8000)
    a = _inputs(jax.random.key(3), x, lengths, SPEC, ALL_ON)
    b = _inputs(jax.random.key(3), x, lengths, SPEC, ALL_ON)
    c = _inputs(jax.random.key(4), x, lengths, SPEC, ALL_ON)
    plain = _plain(x, lengths, SPEC)
    assert a[0].shape == plain[0].shape and a[1].shape == plain[1].shape
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[0], c[0])
    assert np.all(np.isfinite(a[0]))
    # Padded frames stay zero: the valid counts the model receives are the truth.
    frames = np.arange(a[0].shape[1])
    for row, n in zip(np.asarray(a[0]), np.asarray(a[1]), strict=True):
        assert np.all(row[frames >= n] == 0)
        assert np.any(row[n - 1] != 0)


def test_waveform_frontend_allows_only_waveform_transforms():
    spec = FeatureSpec(None)
    x, lengths = batch([4000, 3000], 4000)
    with pytest.raises(ValueError, match="spectral features"):
        _inputs(jax.random.key(0), x, lengths, spec, ALL_ON)
    aug = AugmentConfig(gain_prob=1.0, gain_db=(6.0, 6.0))
    y, steps = _inputs(jax.random.key(0), x, lengths, spec, aug)
    np.testing.assert_allclose(y[..., 0], x * 10 ** (6 / 20), rtol=1e-6)
    np.testing.assert_array_equal(steps, [4000, 3000])


def test_noise_reaches_the_drawn_snr_over_valid_samples():
    lengths = [8000, 6000, 3000, 7777] * 4
    x, lens = batch(lengths, 8000)
    aug = AugmentConfig(noise_prob=1.0, snr_db=(5.0, 25.0), noise_colors=("white", "pink"))
    y, new_lengths = _waveforms(jax.random.key(7), x, lens, aug)
    np.testing.assert_array_equal(new_lengths, lengths)
    snrs = [snr_db(x[i], y[i], n) for i, n in enumerate(lengths)]
    assert all(5.0 - 0.5 <= s <= 25.0 + 0.5 for s in snrs), snrs
    assert np.ptp(snrs) > 5.0  # each example draws its own SNR
    for i, n in enumerate(lengths):
        assert np.all(np.asarray(y[i, n:]) == 0)


def test_gain_picks_examples_by_probability_and_scales_them_by_the_drawn_decibels():
    x, lens = batch([8000, 5000, 8000, 7000] * 16, 8000)
    aug = AugmentConfig(gain_prob=0.5, gain_db=(-6.0, 6.0))
    y, new_lengths = _waveforms(jax.random.key(0), x, lens, aug)
    np.testing.assert_array_equal(new_lengths, lens)
    untouched = [bool(np.array_equal(y[i], x[i])) for i in range(64)]
    assert 20 <= sum(untouched) <= 44  # half expected; the others bit for bit as they were
    picked = [i for i in range(64) if not untouched[i]]
    gains = [20 * np.log10(np.linalg.norm(y[i]) / np.linalg.norm(x[i])) for i in picked]
    assert all(-6.0 <= g <= 6.0 for g in gains) and np.ptp(gains) > 5.0
    # Each picked example is scaled as a whole, by exactly its own gain.
    for i, gain in zip(picked, gains, strict=True):
        np.testing.assert_allclose(y[i], x[i] * 10 ** (gain / 20), rtol=1e-5, atol=1e-7)


def test_random_masks_stay_inside_the_valid_region_and_requested_widths():
    x, lens = batch([8000, 3000, 1200, 6500], 8000)
    feats, n_frames = _plain(x, lens, SPEC)
    aug = AugmentConfig(time_masks=2, time_mask_frames=12, freq_masks=2, freq_mask_bins=7)
    widths_seen = set()
    for seed in range(6):
        out = np.asarray(_features(jax.random.key(seed), feats, n_frames, FRONTEND, aug))
        changed = out != np.asarray(feats)
        for b, n in enumerate(np.asarray(n_frames)):
            assert not changed[b, n:].any()  # never past the valid frames
            rows = changed[b, :n]
            timed = rows.all(axis=1)  # a time mask fills every feature of a frame
            frames = np.flatnonzero(timed)
            runs = np.split(frames, np.flatnonzero(np.diff(frames) > 1) + 1) if frames.size else []
            # Two masks of up to 12 frames: at most two runs (one if they touch), 24 frames.
            assert len(runs) <= 2 and frames.size <= 2 * 12
            widths_seen.update(len(r) for r in runs)
            if timed.all():
                continue
            # A frequency mask fills the same bands in the static, delta and delta-delta
            # blocks on every frame; nothing else changes.
            bands = rows[~timed].reshape(-1, 3, 40).all(axis=0)
            np.testing.assert_array_equal(bands[0], bands[1])
            np.testing.assert_array_equal(bands[0], bands[2])
            assert bands[0].sum() <= 2 * 7
            assert not rows[~timed][:, ~np.tile(bands[0], 3)].any()
    assert max(widths_seen) >= 8  # the spans do reach the requested width (up to 12 merged)


@functools.cache
def _mixed_batch():
    """A mixup of 2048 rows, the last 48 of them padding, and its inputs."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2048, 6, 3)).astype(np.float32)
    steps = rng.integers(1, 7, 2048).astype(np.int32)
    mask = np.arange(2048) < 2000
    labels = rng.integers(0, 4, 2048).astype(np.int32)
    mixed, new_steps, pairing = _mixup(jax.random.key(0), x, steps, mask, 0.4)
    targets = _mixup_targets(labels, 4, pairing)
    outputs = [np.asarray(a) for a in (mixed, new_steps, *pairing, targets)]
    return (x, steps, mask, labels), outputs


def test_mixup_pairs_real_rows_and_mixes_inputs_and_labels_alike():
    (x, steps, mask, labels), (mixed, new_steps, partner, weight, targets) = _mixed_batch()
    assert sorted(partner[:2000]) == list(range(2000))  # a permutation of the real rows
    np.testing.assert_array_equal(partner[2000:], np.arange(2000, 2048))
    np.testing.assert_array_equal(weight[2000:], 1.0)
    assert np.all((weight >= 0) & (weight <= 1))
    w = weight[:, None, None]
    np.testing.assert_allclose(mixed, w * x + (1 - w) * x[partner], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        new_steps, np.where(mask, np.maximum(steps, steps[partner]), steps)
    )
    want = np.zeros((2048, 4))
    np.add.at(want, (np.arange(2048), labels), weight)
    np.add.at(want, (np.arange(2048), labels[partner]), 1 - weight)
    np.testing.assert_allclose(targets, want, rtol=1e-6, atol=1e-6)


def test_mixup_weights_follow_beta_alpha_alpha():
    _, (_, _, partner, weight, _) = _mixed_batch()
    weight = weight[:2000]
    # Beta(0.4, 0.4): mean 1/2, variance 1 / (4 (2 alpha + 1)) = 0.139, mass near 0 and 1.
    assert abs(weight.mean() - 0.5) < 0.03
    assert abs(weight.var() - 1 / (4 * 1.8)) < 0.01
    assert np.mean(partner[:2000] == np.arange(2000)) < 0.01  # rows really are mixed


def test_training_inputs_add_mixup_only_when_enabled():
    x, lengths = batch([8000, 5000, 6400, 3000], 8000)
    mask = jnp.array([True, True, True, False])
    plain = _plain(x, lengths, SPEC)
    inputs = jax.jit(augment.training_inputs, static_argnums=(4, 5))
    got_x, got_steps, pairing = inputs(jax.random.key(0), x, lengths, mask, SPEC, AugmentConfig())
    assert pairing is None
    np.testing.assert_array_equal(got_x, plain[0])
    np.testing.assert_array_equal(got_steps, plain[1])
    aug = AugmentConfig(mixup_alpha=0.2)
    shapes = jax.eval_shape(
        lambda k: augment.training_inputs(k, x, lengths, mask, SPEC, aug), jax.random.key(0)
    )
    assert isinstance(shapes[2], augment.MixupPairing) and shapes[2].weight.shape == (4,)
    assert shapes[0].shape == plain[0].shape
