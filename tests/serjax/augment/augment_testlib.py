"""Shared inputs for the augmentation tests: a front end, test signals and an SNR measure."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import dsp
from serjax.augment import AugmentConfig
from serjax.features import FeatureSpec

SR = 16000
FRONTEND = dsp.FeatureConfig(deltas=2, cmvn="meanvar")
SPEC = FeatureSpec(FRONTEND)
# Every transform on, each example picked by each one.
ALL_ON = AugmentConfig(
    noise_prob=1.0,
    gain_prob=1.0,
    speed_prob=1.0,
    pitch_prob=1.0,
    stretch_prob=1.0,
    vtlp_prob=1.0,
    time_masks=2,
    time_mask_frames=10,
    freq_masks=2,
    freq_mask_bins=6,
)


def batch(lengths, total, seed=0):
    """Noise-like 'speech' zero-padded to ``total`` samples, with its lengths."""
    rng = np.random.default_rng(seed)
    x = 0.1 * rng.standard_normal((len(lengths), total)).astype(np.float32)
    x[np.arange(total)[None, :] >= np.asarray(lengths)[:, None]] = 0
    return jnp.asarray(x), jnp.asarray(lengths, jnp.int32)


def tone(freq, seconds=1.0, sr=SR):
    """float32 ``[seconds * sr]``: a sine of amplitude 0.5."""
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def snr_db(clean, noisy, length):
    """The SNR in dB of ``noisy`` against ``clean`` over their first ``length`` samples."""
    clean, noisy = np.asarray(clean[:length], np.float64), np.asarray(noisy[:length], np.float64)
    return 10 * np.log10(np.sum(clean**2) / np.sum((noisy - clean) ** 2))
