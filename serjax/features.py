"""From a run's config to the on-device waveform → model-input transform.

The transform is described by :class:`FeatureSpec`, a frozen, hashable value, so that it can be a
static argument of the jitted train, eval and predict steps: training, evaluation and inference
all run these same functions, so there is one feature path.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import dsp
from serjax.data.batching import iterate_batches, length_ladder

# Padded lengths of functionals batches: 4096 samples (0.26 s at 16 kHz) times a power of 2, a
# handful of shapes for any part of any fold, so each compiles once per process.
LADDER_UNIT = 4096

_DSP_FIELDS = {f.name for f in dataclasses.fields(dsp.FeatureConfig)}
# config.features fields of the functionals kind -> dsp.UtteranceConfig fields.
_UTTERANCE_FIELDS = {
    "n_fft": "n_fft",
    "win_length": "win_length",
    "hop_length": "hop_length",
    "n_mels": "n_mels",
    "n_mfcc": "n_mfcc",
    "delta_width": "delta_width",
    "f0_min": "fmin",
    "f0_max": "fmax",
    "f0_frame_length": "f0_frame_length",
    "voicing_threshold": "voicing_threshold",
    "functionals_log_mel": "log_mel",
    "functionals_voiced": "voiced",
}


def utterance_config(config: ml_collections.ConfigDict) -> dsp.UtteranceConfig:
    """The ``dsp.UtteranceConfig`` of a ``features.kind="functionals"`` run."""
    values = {dsp_name: config.features[name] for name, dsp_name in _UTTERANCE_FIELDS.items()}
    return dsp.UtteranceConfig(sample_rate=config.data.sample_rate, **values)


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """What the model sees: dsp features (or raw samples), optionally time-averaged or cut
    into segments, or one vector of utterance functionals.

    Attributes:
      frontend: the dsp front end; None feeds the raw waveform as ``[B, T, 1]`` (unless
        ``utterance`` is set).
      utterance: set for ``features.kind="functionals"``: the model sees
        ``dsp.utterance_functionals`` as one step ``[B, 1, N]``.
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
    utterance: dsp.UtteranceConfig | None = None

    @property
    def num_features(self) -> int:
        """Feature size D of the model input ``[B, T, D]``."""
        if self.utterance is not None:
            return self.utterance.num_features
        if self.frontend is None or self.time_average:
            return 1
        return self.frontend.num_features

    @property
    def frame_features(self) -> int:
        """Feature size of the frames before any time average (:func:`input_frames`)."""
        if self.utterance is not None:
            raise ValueError("a functionals spec has no frames")
        return 1 if self.frontend is None else self.frontend.num_features

    @property
    def segmented(self) -> bool:
        return self.segment_frames > 0

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> FeatureSpec:
        """Builds the spec from ``config.features`` and ``config.data.sample_rate``."""
        feats = config.features
        if feats.kind == "functionals":
            return cls(frontend=None, utterance=utterance_config(config))
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
    if spec.utterance is not None:
        vectors = dsp.utterance_functionals(waveforms, lengths, spec.utterance)
        return vectors[:, None, :], jnp.ones(lengths.shape, jnp.int32)
    return time_average(*input_frames(waveforms, lengths, spec), spec)


def input_frames(
    waveforms: jax.Array, lengths: jax.Array, spec: FeatureSpec
) -> tuple[jax.Array, jax.Array]:
    """The frame features ``[B, F, D]`` and valid frames ``[B]`` of a frame-level spec, before
    any time average: the dsp front end's, or the raw samples as ``[B, T, 1]``."""
    if spec.frontend is None:
        return waveforms[..., None], lengths.astype(jnp.int32)
    return dsp.features(waveforms, lengths, spec.frontend)


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


@functools.cache
def _jitted_frame_moments(spec: FeatureSpec):
    def moments(waveforms, lengths):
        x, n_frames = input_frames(waveforms, lengths, spec)
        mean, var = dsp.masked_mean_var(x, n_frames)
        return mean[:, 0], var[:, 0], n_frames

    return jax.jit(moments)


def frame_statistics(
    waveforms: Sequence[np.ndarray], spec: FeatureSpec, *, batch_size: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation ``[D]`` (float64) of every valid frame of
    preprocessed waveforms, per feature (:func:`input_frames`; padding never counts).

    Each utterance's masked mean and variance (``dsp.masked_mean_var``, two-pass on the
    device) are pooled on the host in float64 with the parallel-variance formula (Chan,
    Golub and LeVeque, 1979): ``var = sum n_i (var_i + (mean_i - mean)^2) / sum n_i``, so the
    result equals numpy's over the concatenated frames. Batches are padded to lengths of
    :func:`serjax.data.length_ladder` (a handful of compiled shapes).

    Raises:
      ValueError: no waveform, or no valid frame.
    """
    if not len(waveforms):
        raise ValueError("frame_statistics needs at least one waveform")
    buckets = length_ladder(max(len(w) for w in waveforms), LADDER_UNIT)
    step = _jitted_frame_moments(spec)
    means, variances, counts = [], [], []
    for batch in iterate_batches(
        list(waveforms),
        np.zeros(len(waveforms), np.int32),
        batch_size=batch_size,
        buckets=buckets,
        shuffle=False,
        seed=0,
    ):
        mean, var, n_frames = step(batch.waveforms, batch.lengths)
        keep = np.asarray(batch.mask)
        means.append(np.asarray(mean, np.float64)[keep])
        variances.append(np.asarray(var, np.float64)[keep])
        counts.append(np.asarray(n_frames, np.float64)[keep])
    mean_i, var_i, n_i = np.concatenate(means), np.concatenate(variances), np.concatenate(counts)
    total = n_i.sum()
    if total <= 0:
        raise ValueError("frame_statistics: the waveforms have no valid frame")
    weights = (n_i / total)[:, None]
    mean = np.sum(weights * mean_i, axis=0)
    var = np.sum(weights * (var_i + np.square(mean_i - mean)), axis=0)
    return mean, np.sqrt(var)


# Functionals by (feature spec, waveform digest): the same audio in every fold is analysed once.
_VECTORS: dict[tuple[FeatureSpec, bytes], np.ndarray] = {}


@functools.cache
def _jitted_inputs(spec: FeatureSpec):
    if spec.utterance is None:
        raise ValueError("functionals_of needs a features.kind='functionals' spec")
    return jax.jit(functools.partial(model_inputs, spec=spec))


def functionals_of(
    waveforms: Sequence[np.ndarray], spec: FeatureSpec, *, batch_size: int = 16
) -> np.ndarray:
    """Functionals ``[M, N]`` of preprocessed waveforms, in input order.

    Computed in padded batches (lengths from ``serjax.data.length_ladder``) by the jitted
    :func:`model_inputs` of a ``features.kind="functionals"`` spec, the forward path's own;
    each vector is remembered for the rest of the process (keyed by the spec and the
    waveform's bytes), so the folds of a run analyse each recording once.
    """
    keys = [(spec, hashlib.blake2b(np.ascontiguousarray(w).tobytes()).digest()) for w in waveforms]
    missing = [i for i, key in enumerate(keys) if key not in _VECTORS]
    if missing:
        waves = [waveforms[i] for i in missing]
        buckets = length_ladder(max(len(w) for w in waves), LADDER_UNIT)
        step = _jitted_inputs(spec)
        rows = []
        for batch in iterate_batches(
            waves,
            np.zeros(len(waves), np.int32),
            batch_size=batch_size,
            buckets=buckets,
            shuffle=False,
            seed=0,
        ):
            # Rows that only fill the batch repeat its first example, so none is empty.
            x, _ = step(batch.waveforms, batch.lengths)
            rows.append(np.asarray(x)[np.asarray(batch.mask), 0, :])
        for i, row in zip(missing, np.concatenate(rows), strict=True):
            _VECTORS[keys[i]] = row
    return np.stack([_VECTORS[key] for key in keys])
