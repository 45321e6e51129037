"""Every bad argument raises a ValueError that names it, before anything is traced."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import dsp

X = np.zeros((2, 1600), dtype=np.float32)
LENGTHS = np.array([1600, 800], dtype=np.int32)
CONFIG = dsp.FeatureConfig()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sample_rate", 0),
        ("sample_rate", 16000.0),
        ("kind", "plp"),
        ("n_fft", 0),
        ("win_length", -1),
        ("n_fft", 256),  # < win_length 400
        ("hop_length", 0),
        ("hop_length", -160),
        ("window", "blackman"),
        ("center", 1),
        ("pad_mode", "edge"),
        ("preemphasis", 1.5),
        ("n_mels", 0),
        ("fmin", -1.0),
        ("fmax", 8001.0),  # > sample_rate / 2
        ("fmin", 9000.0),  # >= fmax
        ("htk", "yes"),
        ("mel_norm", "l2"),
        ("amin", 0.0),
        ("top_db", -1.0),
        ("n_mfcc", 0),
        ("lifter", -1),
        ("deltas", 3),
        ("delta_width", 0),
        ("delta_delta_width", 0),
        ("cmvn", "global"),
    ],
)
def test_feature_config_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        dsp.FeatureConfig(**{field: value})


def test_n_mfcc_above_n_mels_is_refused_for_mfcc_only():
    with pytest.raises(ValueError, match=r"\bn_mfcc\b"):
        dsp.FeatureConfig(kind="mfcc", n_mels=10, n_mfcc=13)
    assert dsp.FeatureConfig(kind="log_mel", n_mels=10, n_mfcc=13).num_features == 10


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(n_fft=256, win_length=400, hop_length=160), "n_fft"),
        (dict(n_fft=512, hop_length=0), "hop_length"),
        (dict(n_fft=512, hop_length=-1), "hop_length"),
        (dict(n_fft=512, hop_length=160, window="rect"), "window"),
        (dict(n_fft=512, hop_length=160, pad_mode="wrap"), "pad_mode"),
    ],
)
def test_stft_names_the_bad_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        dsp.stft(X, **kwargs)


@pytest.mark.parametrize(
    ("x", "lengths", "name"),
    [
        (np.zeros((2, 0), np.float32), np.array([0, 0], np.int32), "x"),  # empty signal
        (np.zeros((2, 1600), np.int16), LENGTHS, "x"),  # integer PCM
        (np.zeros((2, 1600), np.complex64), LENGTHS, "x"),
        (np.float32(0.0), np.int32(0), "x"),  # rank 0
        (X, LENGTHS.astype(np.float32), "lengths"),
        (X, LENGTHS[:1], "lengths"),
        (X, LENGTHS[:, None], "lengths"),
    ],
)
def test_front_end_names_the_bad_input(x, lengths, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        dsp.features(x, lengths, CONFIG)
    # Under jit the same checks run while tracing, on shapes and dtypes.
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        jax.jit(dsp.features, static_argnums=2)(x, lengths, CONFIG)


def test_short_signal_without_centring_names_x():
    with pytest.raises(ValueError, match=r"\bx\b"):
        dsp.stft(np.zeros(100, np.float32), n_fft=512, hop_length=160, center=False)


def test_config_must_be_a_feature_config():
    with pytest.raises(ValueError, match=r"\bconfig\b"):
        dsp.features(X, LENGTHS, {"kind": "log_mel"})


def test_features_from_power_names_the_bad_input():
    power = np.zeros((2, 11, 257), np.float32)
    n_frames = np.array([11, 5], np.int32)
    with pytest.raises(ValueError, match=r"\bpower\b"):
        dsp.features_from_power(power[..., :200], n_frames, CONFIG)
    with pytest.raises(ValueError, match=r"\bn_frames\b"):
        dsp.features_from_power(power, n_frames[:1], CONFIG)
    with pytest.raises(ValueError, match=r"\bmel_basis\b"):
        dsp.features_from_power(power, n_frames, CONFIG, mel_basis=np.zeros((257, 30)))
    with pytest.raises(ValueError, match=r"\bmel_basis\b"):
        dsp.features_from_power(power, n_frames, CONFIG, mel_basis=np.zeros((256, 40)))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(sample_rate=16000, n_fft=512, n_mels=40, fmax=9000.0), "fmax"),
        (dict(sample_rate=16000, n_fft=512, n_mels=40, fmin=-5.0), "fmin"),
        (dict(sample_rate=16000, n_fft=512, n_mels=40, fmin=4000.0, fmax=3000.0), "fmin"),
        (dict(sample_rate=16000, n_fft=512, n_mels=0), "n_mels"),
        (dict(sample_rate=16000, n_fft=0, n_mels=40), "n_fft"),
        (dict(sample_rate=-1, n_fft=512, n_mels=40), "sample_rate"),
        (dict(sample_rate=16000, n_fft=512, n_mels=40, norm="l1"), "norm"),
    ],
)
def test_mel_filterbank_names_the_bad_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        dsp.mel_filterbank(**kwargs)


def test_other_functions_name_their_bad_arguments():
    feats = np.zeros((2, 10, 13), np.float32)
    with pytest.raises(ValueError, match=r"\bwidth\b"):
        dsp.delta(feats, width=0)
    with pytest.raises(ValueError, match=r"\bn_frames\b"):
        dsp.delta(feats, width=2, n_frames=np.array([10.0, 5.0]))
    with pytest.raises(ValueError, match=r"\border\b"):
        dsp.stack_deltas(feats, order=3)
    with pytest.raises(ValueError, match=r"\bkind\b"):
        dsp.cmvn(feats, np.array([10, 5]), kind="median")
    with pytest.raises(ValueError, match=r"\bn_mfcc\b"):
        dsp.mfcc_from_log_mel(feats, n_mfcc=20)
    with pytest.raises(ValueError, match=r"\btop_db\b"):
        dsp.power_to_db(feats, top_db=-3.0)
    with pytest.raises(ValueError, match=r"\bamin\b"):
        dsp.power_to_db(feats, amin=0.0)
    with pytest.raises(ValueError, match=r"\bcoef\b"):
        dsp.preemphasis(X, coef=-0.5)
    with pytest.raises(ValueError, match=r"\bhop_length\b"):
        dsp.num_frames(LENGTHS, n_fft=512, hop_length=0, center=True)
    with pytest.raises(ValueError, match=r"\blengths\b"):
        dsp.num_frames(np.array([1.5]), n_fft=512, hop_length=160, center=True)
    with pytest.raises(ValueError, match=r"\bmax_frames\b"):
        dsp.frame_mask(np.array([3]), -1)
