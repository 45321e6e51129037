"""Prosodic low-level descriptors: YIN pitch with a voicing decision, RMS energy, zero crossings.

Each follows the librosa function for the same quantity frame for frame (``librosa.yin``,
``librosa.feature.rms``, ``librosa.feature.zero_crossing_rate``), centre padding included, and
takes optional per-example ``lengths`` so that a padded batch gives, on each example's valid
frames, the values of its unpadded signal. With ``center=True`` and an even frame length, a
signal of ``L`` samples has ``1 + L // hop_length`` frames centred on ``t * hop_length``, as in
``dsp.stft``: outputs line up frame by frame with a spectrogram of the same hop.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dsp import _checks
from dsp.framing import PAD_MODES, frame


class PitchTrack(NamedTuple):
    """YIN's per-frame output; every field is ``[..., frames]``.

    Attributes:
      f0: fundamental frequency in Hz, ``librosa.yin``'s value on every frame, voiced or not.
      aperiodicity: the cumulative mean normalised difference ``d'(tau)`` at the chosen integer
        lag: near 0 for a periodic frame, near 1 or above for noise; 1 for a frame of zeros
        (which has no period, though ``d'`` is 0 there).
      voiced: bool, ``aperiodicity < voicing_threshold``.
    """

    f0: jax.Array
    aperiodicity: jax.Array
    voiced: jax.Array


def yin_periods(
    *, sample_rate: int, fmin: float, fmax: float, frame_length: int
) -> tuple[int, int]:
    """The lag range ``(min_period, max_period)`` in samples that ``librosa.yin`` searches.

    ``min_period = floor(sample_rate / fmax)`` and
    ``max_period = min(ceil(sample_rate / fmin), frame_length - 1)``.

    Raises:
      ValueError: unless ``0 < fmin < fmax <= sample_rate / 2`` and one period of ``fmin`` fits
        in a frame, ``sample_rate / fmin < frame_length - 1`` (librosa's conditions).
    """
    frame_length = _checks.positive_int("frame_length", frame_length)
    fmin = _checks.real("fmin", fmin, low=0.0, low_open=True)
    sample_rate, fmin, fmax = _checks.frequency_range(sample_rate=sample_rate, fmin=fmin, fmax=fmax)
    if sample_rate / fmin >= frame_length - 1:
        raise ValueError(
            f"fmin={fmin} is too low for frame_length={frame_length} at sample_rate="
            f"{sample_rate}: one period must fit in a frame (sample_rate / fmin < "
            f"frame_length - 1); raise fmin above {sample_rate / (frame_length - 1):.3f} Hz or "
            f"frame_length to {math.ceil(sample_rate / fmin) + 2}"
        )
    return int(sample_rate // fmax), min(math.ceil(sample_rate / fmin), frame_length - 1)


def _fft_size(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n``: sizes the FFT factors into small, fast radices."""
    best = 1 << (n - 1).bit_length()
    power5 = 1
    while power5 < best:
        power3 = power5
        while power3 < best:
            # Times the least power of two reaching n: 2^a >= ceil(n / power3).
            best = min(best, power3 << ((n - 1) // power3).bit_length())
            power3 *= 3
        power5 *= 5
    return best


def _cumulative_mean_normalised_difference(
    frames: jax.Array, min_period: int, max_period: int
) -> tuple[jax.Array, jax.Array]:
    """``(d', r(0))``: ``d'(tau)`` for ``tau = min_period .. max_period``, as librosa computes it,
    and each frame's energy ``r(0)`` (exactly 0 for a frame of zeros).

    The difference function comes from the autocorrelation ``r``, by FFT zero-padded to
    ``_fft_size(N + max_period)`` samples: circular wrap-around then reaches lags beyond
    ``max_period`` only, so those used are the linear autocorrelation's:
    ``d(tau) = 2 (r(0) - r(tau)) - sum_{m < tau} y(m)^2``, librosa's form, which keeps the
    energy of the frame's last ``tau`` samples in ``d``; and, as in librosa, the
    energy term of ``d(1)`` is 0 rather than ``y(0)^2``. Then (de Cheveigné & Kawahara 2002,
    eq. 8) ``d'(tau) = d(tau) / ((1 / tau) sum_{j=1..tau} d(j))``, with ``tiny`` added to the
    denominator as librosa does.
    """
    n_pad = _fft_size(frames.shape[-1] + max_period)
    spectrum = jnp.fft.rfft(frames, n=n_pad, axis=-1)
    power = jnp.square(spectrum.real) + jnp.square(spectrum.imag)
    acf = jnp.fft.irfft(power, n=n_pad, axis=-1)[..., : max_period + 1]
    head_energy = jnp.cumsum(jnp.square(frames[..., :max_period]), axis=-1)
    head_energy = head_energy.at[..., 0].set(0.0)  # librosa zeroes it before it is read
    difference = 2.0 * (acf[..., :1] - acf[..., 1:]) - head_energy  # tau = 1 .. max_period
    lags = np.arange(1, max_period + 1, dtype=np.float64)
    cumulative_mean = jnp.cumsum(difference, axis=-1) / jnp.asarray(lags, frames.dtype)
    tiny = jnp.finfo(frames.dtype).tiny
    start = min_period - 1
    cmnd = difference[..., start:] / (cumulative_mean[..., start:] + tiny)
    return cmnd, acf[..., 0]


def _absolute_threshold(cmnd: jax.Array, trough_threshold: float) -> jax.Array:
    """Index of the first local minimum of ``cmnd`` below the threshold, else of its minimum.

    Local minima as ``librosa.util.localmin`` (``x[i] < x[i-1]`` and ``x[i] <= x[i+1]``), with
    librosa's ends: the first lag when ``x[0] < x[1]``, the last when ``x[-1] < x[-2]``.
    """
    first = cmnd[..., :1] < cmnd[..., 1:2]
    interior = (cmnd[..., 1:-1] < cmnd[..., :-2]) & (cmnd[..., 1:-1] <= cmnd[..., 2:])
    last = cmnd[..., -1:] < cmnd[..., -2:-1]
    is_trough = jnp.concatenate([first, interior, last], axis=-1)
    below = is_trough & (cmnd < trough_threshold)
    return jnp.where(jnp.any(below, axis=-1), jnp.argmax(below, axis=-1), jnp.argmin(cmnd, axis=-1))


def _parabolic_shift(cmnd: jax.Array, index: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(d'[index], shift)``: the value there and the vertex offset of the parabola through it.

    librosa's rule: no shift at either end of the lag range, nor where the vertex would lie more
    than one lag away (``|b| >= |a|``).
    """
    n = cmnd.shape[-1]
    take = lambda i: jnp.take_along_axis(cmnd, jnp.clip(i, 0, n - 1)[..., None], axis=-1)[..., 0]
    left, centre, right = take(index - 1), take(index), take(index + 1)
    a = right + left - 2.0 * centre
    b = 0.5 * (right - left)
    inside = (index > 0) & (index < n - 1) & (jnp.abs(b) < jnp.abs(a))
    return centre, jnp.where(inside, -b / jnp.where(inside, a, 1.0), 0.0)


def yin(
    x: jax.Array,
    *,
    sample_rate: int,
    fmin: float,
    fmax: float,
    frame_length: int = 2048,
    hop_length: int | None = None,
    trough_threshold: float = 0.1,
    voicing_threshold: float = 0.35,
    center: bool = True,
    pad_mode: str = "constant",
    lengths: jax.typing.ArrayLike | None = None,
) -> PitchTrack:
    """Fundamental frequency by YIN (de Cheveigné & Kawahara 2002), with a voicing decision.

    ``f0`` equals ``librosa.yin(x, sr=sample_rate, fmin=fmin, fmax=fmax, ...)``: each frame's
    cumulative mean normalised difference ``d'`` over lags ``yin_periods(...)``; the first
    local minimum below ``trough_threshold`` (the absolute threshold), else the global minimum;
    parabolic interpolation about it; ``f0 = sample_rate / period``. YIN always returns a
    period, so the frame's ``aperiodicity`` (``d'`` at the chosen lag) decides voicing. White
    noise gives ``d'`` of about 0.7-0.9 at its best lag, a clean tone a few hundredths, voiced
    speech (by pYIN's flags) a median of 0.17. On 12 Emo-DB
    utterances (1024-sample frames at 16 kHz, 60-600 Hz) the default ``voicing_threshold`` of
    0.35 agreed with ``librosa.pyin``'s voiced flags on 83 % of frames: 2 % voiced here and not
    by pYIN, 15 % the reverse (pYIN's HMM carries voicing through frames with weaker periods).

    In float64 ``f0`` matches librosa to rounding. In float32 voiced frames stay within 1e-6
    of it; an unvoiced frame's flat ``d'`` may now and then yield another minimum.

    Args:
      x: float ``[..., T]`` waveform.
      sample_rate: Hz.
      fmin, fmax: search range in Hz, ``0 < fmin < fmax <= sample_rate / 2``, with
        ``sample_rate / fmin < frame_length - 1``. Two periods of ``fmin`` per frame are
        advisable: at 16 kHz a 1024-sample frame (64 ms) suits ``fmin >= 32`` Hz.
      frame_length: samples per analysis frame (librosa's default 2048).
      hop_length: frame shift; None means ``frame_length // 4``, as librosa.
      trough_threshold: YIN's absolute threshold on ``d'`` (> 0).
      voicing_threshold: frames with ``aperiodicity`` below it are voiced (> 0).
      center: pad ``frame_length // 2`` samples on each side, so frame ``t`` is centred on
        sample ``t * hop_length``.
      pad_mode: ``"constant"`` (zeros, librosa's default) or ``"reflect"``.
      lengths: optional int ``[...]`` valid samples per example, as ``dsp.frame``.

    Returns:
      ``PitchTrack(f0, aperiodicity, voiced)``, each ``[..., frames]`` with
      ``frames = dsp.num_frames(T, n_fft=frame_length, ...)``; floats in the compute dtype
      (float64 for float64 input, else float32).
    """
    frame_length = _checks.positive_int("frame_length", frame_length)
    min_period, max_period = yin_periods(
        sample_rate=sample_rate, fmin=fmin, fmax=fmax, frame_length=frame_length
    )
    hop_length = frame_length // 4 if hop_length is None else hop_length
    hop_length = _checks.positive_int("hop_length", hop_length)
    trough_threshold = _checks.real("trough_threshold", trough_threshold, low=0.0, low_open=True)
    voicing_threshold = _checks.real("voicing_threshold", voicing_threshold, low=0.0, low_open=True)
    pad_mode = _checks.choice("pad_mode", pad_mode, PAD_MODES)
    x = _checks.float_array("x", x)
    frames = frame(
        x.astype(_checks.compute_dtype(x)),
        frame_length=frame_length,
        hop_length=hop_length,
        center=center,
        pad_mode=pad_mode,
        lengths=lengths,
    )
    cmnd, energy = _cumulative_mean_normalised_difference(frames, min_period, max_period)
    index = _absolute_threshold(cmnd, trough_threshold)
    value, shift = _parabolic_shift(cmnd, index)
    f0 = sample_rate / (min_period + index.astype(cmnd.dtype) + shift)
    aperiodicity = jnp.where(energy == 0, 1.0, value).astype(cmnd.dtype)
    return PitchTrack(f0, aperiodicity, aperiodicity < voicing_threshold)


def rms(
    x: jax.Array,
    *,
    frame_length: int = 2048,
    hop_length: int = 512,
    center: bool = True,
    pad_mode: str = "constant",
    lengths: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Root-mean-square amplitude of each (unwindowed) frame, ``librosa.feature.rms(y=x)``.

    Its level in dB, ``librosa.amplitude_to_db(rms, top_db=None)``, is
    ``dsp.power_to_db(rms ** 2)`` (``20 log10(max(rms, 1e-5))``).

    Args:
      x: float ``[..., T]`` waveform.
      frame_length, hop_length: framing in samples (librosa's defaults 2048 and 512).
      center: pad ``frame_length // 2`` samples on each side.
      pad_mode: ``"constant"`` (librosa's default) or ``"reflect"``.
      lengths: optional int ``[...]`` valid samples per example, as ``dsp.frame``.

    Returns:
      ``[..., frames]`` in the compute dtype, ``frames`` as ``dsp.num_frames``.
    """
    x = _checks.float_array("x", x)
    frames = frame(
        x.astype(_checks.compute_dtype(x)),
        frame_length=frame_length,
        hop_length=hop_length,
        center=center,
        pad_mode=pad_mode,
        lengths=lengths,
    )
    return jnp.sqrt(jnp.mean(jnp.square(frames), axis=-1))


def zero_crossing_rate(
    x: jax.Array,
    *,
    frame_length: int = 2048,
    hop_length: int = 512,
    center: bool = True,
    threshold: float = 1e-10,
    lengths: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Fraction of sign changes per frame, ``librosa.feature.zero_crossing_rate(x)``.

    As librosa: centring pads with copies of the edge samples (``np.pad(mode="edge")``, here
    each example's own last valid sample); samples with ``|x| <= threshold`` count as positive
    zeros; a frame of ``N`` samples has ``N - 1`` neighbouring pairs but the count is divided
    by ``N``.

    Args:
      x: float ``[..., T]`` waveform.
      frame_length, hop_length: framing in samples (librosa's defaults 2048 and 512).
      center: edge-pad ``frame_length // 2`` samples on each side.
      threshold: magnitude at or below which a sample is zero (>= 0).
      lengths: optional int ``[...]`` valid samples per example.

    Returns:
      ``[..., frames]`` in the compute dtype, ``frames`` as ``dsp.num_frames``.
    """
    frame_length = _checks.positive_int("frame_length", frame_length)
    hop_length = _checks.positive_int("hop_length", hop_length)
    center = _checks.boolean("center", center)
    threshold = _checks.real("threshold", threshold, low=0.0)
    x = _checks.float_array("x", x)
    total = x.shape[-1]
    if total == 0:
        raise ValueError(f"x must not be empty, got shape {x.shape}")
    if lengths is None:
        lengths = jnp.full(x.shape[:-1], total, dtype=jnp.int32)
    lengths = jnp.clip(_checks.int_array("lengths", lengths, shape=x.shape[:-1]), 0, total)
    pad = frame_length // 2 if center else 0
    padded_total = total + 2 * pad
    if padded_total < frame_length:
        raise ValueError(
            f"x is too short: {total} samples give no full frame of frame_length={frame_length} "
            f"with center={center}"
        )
    # Edge padding about each example's own ends: sample j of the padded signal is x[j - pad]
    # clamped to [0, length - 1]; past the right padding it belongs to no valid frame.
    source = np.arange(padded_total, dtype=np.int32) - pad
    source = jnp.clip(source, 0, jnp.maximum(lengths[..., None] - 1, 0))
    negative = jnp.take_along_axis(x, source, axis=-1) < -threshold
    # changes[j] = 1 where samples j - 1 and j differ in sign; a frame's crossings are those at
    # its positions 1 .. N - 1, a difference of the running count.
    changes = (negative[..., 1:] != negative[..., :-1]).astype(jnp.int32)
    running = jnp.cumsum(jnp.pad(changes, [(0, 0)] * (x.ndim - 1) + [(1, 0)]), axis=-1)
    starts = np.arange(1 + (padded_total - frame_length) // hop_length) * hop_length
    crossings = running[..., starts + frame_length - 1] - running[..., starts]
    dtype = _checks.compute_dtype(x)
    return crossings.astype(dtype) / jnp.asarray(frame_length, dtype)
