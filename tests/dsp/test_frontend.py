"""The composed front end: librosa parity, padded batches, jit, grad, vmap, filterbank override."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

import dsp

SR = 16000


def test_config_defaults_sizes_and_hashing():
    config = dsp.FeatureConfig()
    assert (config.n_fft, config.win_length, config.hop_length, config.n_mels) == (
        512,
        400,
        160,
        40,
    )
    assert config.n_freq == 257
    assert config.num_features == 40
    assert dsp.FeatureConfig(deltas=2).num_features == 120
    assert dsp.FeatureConfig(kind="mfcc", deltas=2).num_features == 39
    assert dsp.FeatureConfig(kind="mfcc", deltas=1).num_features == 26
    assert hash(dsp.FeatureConfig(fmin=0)) == hash(config) and dsp.FeatureConfig(fmin=0) == config
    assert len({config, dsp.FeatureConfig(), dsp.FeatureConfig(kind="mfcc")}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n_mels = 64  # type: ignore[misc]
    assert config.max_frames(16000) == 101
    assert dataclasses.replace(config, center=False).max_frames(16000) == 1 + (16000 - 512) // 160


def _librosa_mfcc_deltas(y, *, delta_width, delta_delta_width):
    """MFCC (top_db 80, librosa's default) + replicate-edge regression Δ and ΔΔ, [frames, 39]."""
    # mfcc(y=...) would build a float32 filterbank; float64 parity needs the float64 one.
    mel = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=512, win_length=400, hop_length=160, n_mels=40, dtype=np.float64
    )
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=80.0), n_mfcc=13)
    # With "nearest" edges a first-order Savitzky-Golay derivative is the regression formula.
    d1 = librosa.feature.delta(mfcc, width=2 * delta_width + 1, mode="nearest")
    d2 = librosa.feature.delta(d1, width=2 * delta_delta_width + 1, mode="nearest")
    return np.concatenate([mfcc, d1, d2]).T


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_mfcc_front_end_matches_librosa(
    request, fast_jit, tones_and_noise, assert_close, precision
):
    config = dsp.FeatureConfig(
        kind="mfcc", top_db=80.0, deltas=2, delta_width=1, delta_delta_width=2
    )
    y = tones_and_noise(8000, sample_rate=SR, seed=0)
    if precision == "float64":
        request.getfixturevalue("x64")
        x, rtol, run = jnp.asarray(y), 1e-9, fast_jit(dsp.features, static_argnums=2)
    else:
        y = y.astype(np.float32)
        x, rtol, run = jnp.asarray(y), 1e-4, fast_jit(dsp.features, static_argnums=2)
    feats, n_frames = run(x[None], jnp.array([len(y)]), config)
    assert feats.dtype == x.dtype and feats.shape == (1, 51, 39) and int(n_frames[0]) == 51
    expected = _librosa_mfcc_deltas(y.astype(np.float64), delta_width=1, delta_delta_width=2)
    # Each block on its own scale: Δ and ΔΔ are an order of magnitude smaller than c.
    for block in range(3):
        columns = slice(13 * block, 13 * (block + 1))
        assert_close(feats[0][:, columns], expected[:, columns], rtol=rtol, err_msg=f"{block}")


def test_log_mel_front_end_with_every_option_matches_librosa(
    fast_jit, tones_and_noise, assert_close
):
    config = dsp.FeatureConfig(
        sample_rate=22050,
        n_fft=1024,
        win_length=882,
        hop_length=441,
        window="hamming",
        center=False,
        preemphasis=0.97,
        n_mels=64,
        fmin=60.0,
        fmax=8000.0,
        htk=True,
        mel_norm=None,
        top_db=60.0,
    )
    y = tones_and_noise(22050, sample_rate=22050, seed=1).astype(np.float32)
    feats, _ = fast_jit(dsp.features, static_argnums=2)(y, np.int32(len(y)), config)
    emphasised = librosa.effects.preemphasis(y.astype(np.float64), coef=0.97, zi=0.0)
    mel = librosa.feature.melspectrogram(
        y=emphasised,
        sr=22050,
        n_fft=1024,
        win_length=882,
        hop_length=441,
        window="hamming",
        center=False,
        n_mels=64,
        fmin=60.0,
        fmax=8000.0,
        htk=True,
        norm=None,
    )
    assert_close(feats, librosa.power_to_db(mel, top_db=60.0).T, rtol=1e-4)


BATCH_CONFIGS = {
    "mfcc-constant": dsp.FeatureConfig(
        kind="mfcc",
        lifter=22,
        preemphasis=0.97,
        top_db=50.0,
        deltas=2,
        delta_width=1,
        delta_delta_width=2,
        cmvn="meanvar",
    ),
    "log_mel-reflect": dsp.FeatureConfig(
        pad_mode="reflect", top_db=30.0, deltas=2, cmvn="mean", n_mels=24
    ),
}


@pytest.mark.parametrize("name", list(BATCH_CONFIGS))
def test_padded_batch_equals_each_signal_alone(fast_jit, tones_and_noise, assert_close, name):
    config = BATCH_CONFIGS[name]
    features_jit = fast_jit(dsp.features, static_argnums=2)
    total = 4000
    lengths = np.array([[2750, 1234], [2750, 1234]], dtype=np.int32)
    rng = np.random.default_rng(2)
    signals = [
        tones_and_noise(int(n), sample_rate=SR, seed=i).astype(np.float32)
        for i, n in enumerate(lengths.ravel())
    ]
    x = rng.standard_normal((4, total)).astype(np.float32)  # padding need not be zeros
    for row, signal in zip(x, signals, strict=True):
        row[: len(signal)] = signal
    x = x.reshape(2, 2, total)
    feats, n_frames = features_jit(x, lengths, config)
    assert feats.shape == (2, 2, config.max_frames(total), config.num_features)
    assert int(dsp.num_frames(total, n_fft=512, hop_length=160, center=True)) == feats.shape[2]
    for index in np.ndindex(2, 2):
        signal = signals[2 * index[0] + index[1]]
        alone, alone_frames = features_jit(signal, np.int32(len(signal)), config)
        n = int(n_frames[index])
        assert n == int(alone_frames) == alone.shape[0]
        assert_close(feats[index][:n], alone, rtol=1e-5, err_msg=f"{name} {index}")
        np.testing.assert_array_equal(feats[index][n:], 0.0)
    if name == "mfcc-constant":
        per_example = jax.vmap(jax.vmap(lambda s, n: dsp.features(s, n, config)))
        vmapped, vmapped_frames = fast_jit(per_example)(x, lengths)
        assert_close(vmapped, feats, rtol=1e-5)
        np.testing.assert_array_equal(vmapped_frames, n_frames)


def test_jit_agrees_with_eager_and_does_not_retrace(tones_and_noise, assert_close):
    # Plain jax.jit here: this is the compilation path users get.
    config = dsp.FeatureConfig(n_mels=20, cmvn="mean")
    traces = []

    def traced(x, lengths):
        traces.append(x.shape)  # runs once per trace, never when a compiled call is reused
        return dsp.features(x, lengths, config)

    jitted = jax.jit(traced)
    x = np.stack([tones_and_noise(1600, sample_rate=SR, seed=s) for s in (0, 1)]).astype(np.float32)
    lengths = np.array([1600, 900], dtype=np.int32)
    eager, eager_frames = dsp.features(x, lengths, config)
    jit_out, jit_frames = jitted(x, lengths)
    assert_close(jit_out, eager, rtol=1e-5)
    np.testing.assert_array_equal(jit_frames, eager_frames)
    assert len(traces) == 1
    jitted(2 * x, np.array([800, 1600], dtype=np.int32))  # same shapes, new values
    assert len(traces) == 1


def test_gradient_through_the_front_end_is_finite(fast_jit, tones_and_noise):
    config = BATCH_CONFIGS["mfcc-constant"]
    x = np.zeros((3, 2400), dtype=np.float32)
    x[0] = tones_and_noise(2400, sample_rate=SR, seed=0)
    x[1, :1500] = tones_and_noise(1500, sample_rate=SR, seed=1)  # x[2] stays silent
    lengths = np.array([2400, 1500, 2000], dtype=np.int32)

    def loss(x):
        feats, _ = dsp.features(x, lengths, config)
        return jnp.sum(jnp.square(feats))

    grad = fast_jit(jax.grad(loss))(x)
    assert np.all(np.isfinite(grad))
    assert np.any(grad[0] != 0)
    np.testing.assert_array_equal(grad[1, 1500:], 0.0)  # padding does not touch the features


def test_mel_basis_override(fast_jit, tones_and_noise, assert_close):
    config = dsp.FeatureConfig(n_mels=20)
    x = np.stack([tones_and_noise(1600, sample_rate=SR, seed=s) for s in (3, 4)]).astype(np.float32)
    lengths = np.array([1600, 1000], dtype=np.int32)
    basis = dsp.mel_filterbank(sample_rate=SR, n_fft=512, n_mels=20)
    # One filterbank per example: doubling example 1's basis adds 10 log10(2) dB to it alone.
    per_example = np.stack([basis, 2.0 * basis]).astype(np.float32)

    @fast_jit
    def run(x, lengths, per_example):
        power, n_frames = dsp.power_stage(x, lengths, config)
        default, _ = dsp.features(x, lengths, config)
        composed = dsp.features_from_power(power, n_frames, config)
        warped = dsp.features_from_power(power, n_frames, config, mel_basis=per_example)
        return default, composed, warped, n_frames

    default, composed, warped, n_frames = run(x, lengths, per_example)
    assert_close(composed, default, rtol=1e-6)
    assert_close(warped[0], default[0], rtol=1e-6)
    n = int(n_frames[1])
    assert_close(warped[1, :n], default[1, :n] + 10 * np.log10(2.0), rtol=1e-5)
    np.testing.assert_array_equal(warped[1, n:], 0.0)


def test_features_chunked_equals_features(fast_jit, tones_and_noise, assert_close):
    config = dsp.FeatureConfig(n_mels=20, deltas=1, cmvn="meanvar", top_db=40.0)
    x = np.stack([tones_and_noise(1600, sample_rate=SR, seed=s) for s in range(5)])
    x = x.astype(np.float32).reshape(1, 5, 1600)
    lengths = np.array([[1600, 1200, 900, 1600, 333]], dtype=np.int32)

    @fast_jit
    def run(x, lengths):
        # 11 frames per example and 25 per chunk: steps of 2 examples and a remainder of 1.
        return dsp.features(x, lengths, config), dsp.features_chunked(
            x, lengths, config, frames_per_step=25
        )

    (expected, expected_frames), (chunked, chunked_frames) = run(x, lengths)
    assert chunked.shape == expected.shape == (1, 5, 11, 40)
    assert_close(chunked, expected, rtol=1e-5)
    np.testing.assert_array_equal(chunked_frames, expected_frames)


# Run in a fresh interpreter: the CPU device count is fixed when JAX's backend starts.
_SPLIT_OVER_DEVICES = """
import jax, numpy as np
jax.config.update("jax_num_cpu_devices", 2)
import dsp
from jax.sharding import NamedSharding, PartitionSpec as P

config = dsp.FeatureConfig(kind="mfcc", deltas=2, delta_width=1, cmvn="meanvar")
rng = np.random.default_rng(0)
x = rng.standard_normal((4, 4000)).astype(np.float32)
lengths = np.array([4000, 1700, 3100, 401], dtype=np.int32)
mesh = jax.make_mesh((2,), ("batch",))
spec = (P("batch"), P("batch"))

def chunked(x, lengths):
    return dsp.features_chunked(x, lengths, config, frames_per_step=30)

split = jax.jit(jax.shard_map(chunked, mesh=mesh, in_specs=spec, out_specs=spec))
on_devices = [jax.device_put(a, NamedSharding(mesh, P("batch"))) for a in (x, lengths)]
feats, n_frames = split(*on_devices)
expected, expected_frames = jax.jit(dsp.features, static_argnums=2)(x, lengths, config)
assert len(feats.sharding.device_set) == 2, feats.sharding
np.testing.assert_array_equal(n_frames, expected_frames)
np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-5)
print("ok", feats.shape)
"""


def test_features_split_over_cpu_devices_equal_one_device():
    # The throughput benchmark's multi-core form: each CPU device runs its share of the batch.
    result = subprocess.run(
        [sys.executable, "-c", _SPLIT_OVER_DEVICES], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok (4, 26, 39)"


def test_matmul_dft_front_end_equals_fft_front_end(fast_jit, tones_and_noise, assert_close):
    waveforms = np.stack(
        [tones_and_noise(12000, sample_rate=SR, seed=seed) for seed in (4, 5)]
    ).astype(np.float32)
    lengths = np.array([12000, 7000], np.int32)
    run = fast_jit(dsp.features, static_argnums=2)
    for kind in ("log_mel", "mfcc"):
        config = dsp.FeatureConfig(kind=kind, deltas=2, top_db=80.0)
        matmul = dataclasses.replace(config, dft="matmul")
        assert matmul != config and hash(matmul) != hash(config)
        expected, expected_frames = run(waveforms, lengths, config)
        feats, n_frames = run(waveforms, lengths, matmul)
        np.testing.assert_array_equal(n_frames, expected_frames)
        for block in range(3):  # c, Δ and ΔΔ each on its own scale
            width = config.num_features // 3
            columns = slice(width * block, width * (block + 1))
            assert_close(feats[..., columns], expected[..., columns], rtol=1e-4)
    with pytest.raises(ValueError, match="dft"):
        dsp.FeatureConfig(dft="dct")
