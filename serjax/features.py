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
import numpy as np

import dsp

_DSP_FIELDS = {f.name for f in dataclasses.fields(dsp.FeatureConfig)}


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """What the model sees: dsp features (or raw samples), optionally time-averaged or cut
    into segments.

    Attributes:
      frontend: the dsp front end; None feeds the raw waveform as ``[B, T, 1]``.
      time_average: average each coefficient over the valid frames and read the D averages as
        a sequence of D steps of one feature (S2); False keeps the frame sequence.
      segment_frames, segment_shift: S1's fixed-length segments (0 disables): each utterance
        becomes segments of ``segment_frames`` frames every ``segment_shift`` frames, each
        classified on its own (S1 calls them windows; not to be confused with the STFT window).
    """

    frontend: dsp.FeatureConfig | None
    time_average: bool = False
    segment_frames: int = 0
    segment_shift: int = 0

    @property
    def num_features(self) -> int:
        """Feature size D of the model input ``[B, T, D]``."""
        if self.frontend is None or self.time_average:
            return 1
        return self.frontend.num_features

    @property
    def segmented(self) -> bool:
        return self.segment_frames > 0

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> FeatureSpec:
        """Builds the spec from ``config.features`` and ``config.data.sample_rate``."""
        feats = config.features
        frontend = None
        if feats.kind != "waveform":
            values = {k: v for k, v in feats.items() if k in _DSP_FIELDS}
            frontend = dsp.FeatureConfig(sample_rate=config.data.sample_rate, **values)
        segmented = feats.segment_frames > 0
        return cls(
            frontend=frontend,
            time_average=bool(feats.time_average),
            segment_frames=feats.segment_frames if segmented else 0,
            segment_shift=feats.segment_shift if segmented else 0,
        )


def model_inputs(
    waveforms: jax.Array, lengths: jax.Array, spec: FeatureSpec
) -> tuple[jax.Array, jax.Array]:
    """Waveforms ``[B, T]``, valid samples ``[B]`` → model input ``[B, S, D]``, steps ``[B]``."""
    if spec.frontend is None:
        return waveforms[..., None], lengths.astype(jnp.int32)
    feats, n_frames = dsp.features(waveforms, lengths, spec.frontend)
    return time_average(feats, n_frames, spec)


def time_average(
    feats: jax.Array, n_frames: jax.Array, spec: FeatureSpec
) -> tuple[jax.Array, jax.Array]:
    """Applies the spec's time average (if any) to dsp features ``[B, F, D]`` with valid frames
    ``[B]``: the result is ``[B, D, 1]`` with D steps each, or the features unchanged."""
    if not spec.time_average:
        return feats, n_frames
    mean = dsp.masked_mean_var(feats, n_frames)[0][..., 0, :]
    steps = jnp.full(n_frames.shape, mean.shape[-1], jnp.int32)
    return mean[..., None], steps


def num_segments(n_frames, *, frames: int, shift: int):
    """How many valid segments :func:`segments` gives sequences of ``n_frames`` steps:
    ``max(1, (n_frames - frames) // shift + 1)`` (the first segment is always valid).

    Works on numpy and JAX integer arrays alike (the host plans segment draws with it).
    """
    return 1 + (n_frames >= frames) * ((n_frames - frames) // shift)


def segment_counts(lengths, spec: FeatureSpec):
    """Valid segments of waveforms of ``lengths`` samples under a segmented ``spec`` (numpy
    ``[N]``): what :func:`segments` gives each of them after the front end."""
    lengths = np.asarray(lengths)
    n_frames = lengths
    if spec.frontend is not None:
        frontend = spec.frontend
        n_frames = np.asarray(
            dsp.num_frames(
                lengths,
                n_fft=frontend.n_fft,
                hop_length=frontend.hop_length,
                center=frontend.center,
            )
        )
    return num_segments(n_frames, frames=spec.segment_frames, shift=spec.segment_shift)


def segments_at(
    x: jax.Array, steps: jax.Array, index: jax.Array, *, frames: int, shift: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Segments number ``index`` of each sequence (S1's windows, drawn rather than all).

    Args:
      x: ``[B, S, D]`` padded sequences; steps: ``[B]`` valid steps of each.
      index: int ``[B, G]``, segment numbers: segment ``k`` covers steps
        ``[k * shift, k * shift + frames)``.
    Returns:
      ``(segments [B, G, frames, D], segment_steps [B, G], segment_valid [B, G])`` with the
      conventions of :func:`segments`: a segment is valid when it lies inside the valid steps
      or is the first one; an invalid one gets a full length and should carry no weight.
    """
    if x.shape[1] < frames:
        x = jnp.pad(x, ((0, 0), (0, frames - x.shape[1]), (0, 0)))
    starts = index * shift  # [B, G]
    positions = starts[..., None] + jnp.arange(frames)  # [B, G, frames]
    # Past the end the gather repeats the last step (not NaN, which would reach the loss
    # through a zero weight); such segments are invalid anyway.
    cut = jnp.take_along_axis(x[:, None], positions[..., None], axis=2, mode="clip")
    valid = (starts + frames <= steps[:, None]) | (starts == 0)
    segment_steps = jnp.where(valid, jnp.minimum(frames, steps[:, None] - starts), frames)
    return cut, segment_steps.astype(jnp.int32), valid


def segments(
    x: jax.Array, steps: jax.Array, *, frames: int, shift: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Cuts each sequence into segments of ``frames`` steps every ``shift`` steps (S1).

    Args:
      x: ``[B, S, D]`` padded sequences; steps: ``[B]`` valid steps of each.
    Returns:
      ``(segments [B, W, frames, D], segment_steps [B, W], segment_valid [B, W])`` with
      ``W = max(1, (S - frames) // shift + 1)``. A segment is valid when it lies inside the valid
      steps; the first segment is always valid, so an utterance shorter than ``frames`` still
      gives one (shorter) segment. Invalid segments get a full length so that no model ever sees
      a zero-length sequence; they carry no weight in the loss or the average.
    """
    count = num_segments(max(x.shape[1], frames), frames=frames, shift=shift)
    index = jnp.broadcast_to(jnp.arange(count), (x.shape[0], count))
    return segments_at(x, steps, index, frames=frames, shift=shift)
