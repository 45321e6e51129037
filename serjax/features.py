"""From a run's config to the on-device waveform → model-input transform.

The transform is described by :class:`FeatureSpec`, a frozen, hashable value, so that it can be a
static argument of the jitted train, eval and predict steps: training, evaluation and inference
all run these same functions, so there is one feature path.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

import dsp

_DSP_FIELDS = {f.name for f in dataclasses.fields(dsp.FeatureConfig)}


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """What the model sees: dsp features (or raw samples), an optional summary, windows.

    Attributes:
      frontend: the dsp front end; None feeds the raw waveform as ``[B, T, 1]``.
      summary: "none" keeps the frame sequence; "mean_sequence" averages each coefficient over
        the valid frames and reads the D averages as a sequence of D steps of one feature (S2).
      window_frames, window_shift: S1's sliding windows (0 disables); each utterance becomes
        windows of ``window_frames`` frames every ``window_shift`` frames.
    """

    frontend: dsp.FeatureConfig | None
    summary: str = "none"
    window_frames: int = 0
    window_shift: int = 0

    @property
    def num_features(self) -> int:
        """Feature size D of the model input ``[B, T, D]``."""
        if self.frontend is None or self.summary == "mean_sequence":
            return 1
        return self.frontend.num_features

    @property
    def windowed(self) -> bool:
        return self.window_frames > 0

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> FeatureSpec:
        """Builds the spec from ``config.features`` and ``config.data.sample_rate``."""
        feats = config.features
        frontend = None
        if feats.kind != "waveform":
            values = {k: v for k, v in feats.items() if k in _DSP_FIELDS}
            frontend = dsp.FeatureConfig(sample_rate=config.data.sample_rate, **values)
        windows = bool(feats.windows)
        return cls(
            frontend=frontend,
            summary=feats.summary,
            window_frames=feats.window_frames if windows else 0,
            window_shift=feats.window_shift if windows else 0,
        )


def model_inputs(
    waveforms: jax.Array, lengths: jax.Array, spec: FeatureSpec
) -> tuple[jax.Array, jax.Array]:
    """Waveforms ``[B, T]``, valid samples ``[B]`` → model input ``[B, S, D]``, steps ``[B]``."""
    if spec.frontend is None:
        return waveforms[..., None], lengths.astype(jnp.int32)
    feats, n_frames = dsp.features(waveforms, lengths, spec.frontend)
    return summarize(feats, n_frames, spec)


def summarize(
    feats: jax.Array, n_frames: jax.Array, spec: FeatureSpec
) -> tuple[jax.Array, jax.Array]:
    """Applies the spec's summary to dsp features ``[B, F, D]`` with valid frames ``[B]``."""
    if spec.summary == "none":
        return feats, n_frames
    # Padded frames of dsp features are zero, so a plain sum over time is the masked sum.
    mean = feats.sum(axis=-2) / jnp.maximum(n_frames, 1)[..., None].astype(feats.dtype)
    steps = jnp.full(n_frames.shape, mean.shape[-1], jnp.int32)
    return mean[..., None], steps


def windows(
    x: jax.Array, steps: jax.Array, *, frames: int, shift: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Cuts each sequence into windows of ``frames`` steps every ``shift`` steps (S1).

    Args:
      x: ``[B, S, D]`` padded sequences; steps: ``[B]`` valid steps of each.
    Returns:
      ``(windows [B, W, frames, D], window_steps [B, W], window_valid [B, W])`` with
      ``W = max(1, (S - frames) // shift + 1)``. A window is valid when it lies inside the valid
      steps; the first window is always valid, so an utterance shorter than ``frames`` still gives
      one (shorter) window. Invalid windows get a full length so that no model ever sees a
      zero-length sequence; they carry no weight in the loss or the average.
    """
    if x.shape[1] < frames:
        x = jnp.pad(x, ((0, 0), (0, frames - x.shape[1]), (0, 0)))
    num_windows = (x.shape[1] - frames) // shift + 1
    starts = jnp.arange(num_windows) * shift
    index = starts[:, None] + jnp.arange(frames)[None, :]  # [W, frames]
    cut = x[:, index]  # [B, W, frames, D]
    valid = (starts[None, :] + frames <= steps[:, None]) | (starts[None, :] == 0)
    window_steps = jnp.where(valid, jnp.minimum(frames, steps[:, None] - starts[None, :]), frames)
    return cut, window_steps.astype(jnp.int32), valid
