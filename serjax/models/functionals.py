"""The functionals classifier: standardisation, then a linear or small MLP head.

Input is one vector of utterance functionals per utterance (``features.kind="functionals"``,
``[B, 1, N]``). The model standardises it with statistics it keeps
(:class:`~serjax.models.layers.Standardiser`: not parameters, never trained by gradients,
saved in the checkpoint's model item) and classifies
it with an :class:`~serjax.models.layers.MLPHead` (no hidden layer: multinomial logistic
regression). The statistics of a set of vectors come from :func:`standardisation_statistics`;
:func:`average_speaker_statistics` pools several speakers' into those of an "average speaker".
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx

from serjax.models.layers import MIN_SCALE, MLPHead, Standardiser


def standardisation_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale ``[N]`` of vectors ``x: [M, N]`` (M >= 1): the per-column mean and
    population standard deviation (``numpy.std``, ddof 0), a deviation below
    :data:`~serjax.models.layers.MIN_SCALE` replaced by 1. Computed in float64, returned as
    float32."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or not len(x):
        raise ValueError(f"x must be [M >= 1, N], got shape {x.shape}")
    std = x.std(axis=0)
    return x.mean(axis=0).astype(np.float32), np.where(std < MIN_SCALE, 1.0, std).astype(np.float32)


def average_speaker_statistics(
    x: np.ndarray, speakers: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Statistics of an average speaker of ``x: [M, N]``: the mean of the speakers' means and
    the root mean of their variances (within-speaker spread, unlike the pooled statistics,
    which add the spread between speakers). With one speaker: that speaker's statistics."""
    x = np.asarray(x, np.float64)
    speakers = np.asarray(speakers)
    if len(speakers) != len(x):
        raise ValueError(f"{len(speakers)} speaker names for {len(x)} vectors")
    names = np.unique(speakers)
    means = np.stack([x[speakers == s].mean(axis=0) for s in names])
    variances = np.stack([x[speakers == s].var(axis=0) for s in names])
    std = np.sqrt(variances.mean(axis=0))
    return means.mean(axis=0).astype(np.float32), np.where(std < MIN_SCALE, 1.0, std).astype(
        np.float32
    )


def speaker_standardised(x: np.ndarray, speakers: Sequence[str]) -> np.ndarray:
    """``x: [M, N]`` with each row standardised by its own speaker's
    :func:`standardisation_statistics` (float32)."""
    x = np.asarray(x)
    speakers = np.asarray(speakers)
    if len(speakers) != len(x):
        raise ValueError(f"{len(speakers)} speaker names for {len(x)} vectors")
    out = np.empty(x.shape, np.float32)
    for name in np.unique(speakers):
        rows = speakers == name
        mean, scale = standardisation_statistics(x[rows])
        out[rows] = (x[rows] - mean) / scale
    return out


class FunctionalsClassifier(nnx.Module):
    """Standardiser -> ``[Dense -> ReLU] * len(hidden_sizes)`` -> Dense K.

    Called as ``model(x, lengths)`` with ``x: [B, 1, N]`` (or ``[B, N]``); ``lengths`` is
    ignored (one vector per utterance). Returns logits ``[B, K]``.
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        *,
        hidden_sizes: Sequence[int],
        name: str = "functionals",
        rngs: nnx.Rngs,
    ):
        if any(int(size) < 1 for size in hidden_sizes):
            raise ValueError(f"{name}: hidden_sizes must be positive, got {tuple(hidden_sizes)}")
        self.standardiser = Standardiser(num_features)
        self.head = MLPHead(num_features, tuple(hidden_sizes), num_classes, rngs=rngs)

    def __call__(self, x: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
        del lengths
        if x.ndim == 3:
            x = x[:, 0, :]
        return self.head(self.standardiser(x))
