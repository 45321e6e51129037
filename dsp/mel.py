"""Mel scales, the mel filterbank, and log-mel spectrograms.

Defaults follow librosa: the Slaney mel scale (linear below 1 kHz, logarithmic above) with
Slaney area normalisation; ``htk=True`` gives the HTK scale ``2595 log10(1 + f / 700)``. The
filterbank is built once per configuration in float64 NumPy and cached, so under ``jax.jit`` it
is an XLA constant.
"""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from dsp import _checks
from dsp.masking import frame_mask

MEL_NORMS = ("slaney", None)

# Slaney's Auditory Toolbox scale, as librosa.hz_to_mel(htk=False) defines it.
_F_SP = 200.0 / 3.0  # Hz per mel in the linear part
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15 mels
_LOGSTEP = float(np.log(6.4) / 27.0)  # ln(6400 / 1000) spread over 27 mels
# HTK: 2595 log10(1 + f / 700), written with the natural logarithm.
_HTK_SCALE = float(2595.0 / np.log(10.0))


def _namespace(x):
    # NumPy in, NumPy out (float64 filterbanks); JAX arrays and tracers stay in JAX.
    return jnp if isinstance(x, jax.Array) else np


def hz_to_mel(frequencies, *, htk: bool = False):
    """Hz to mels, elementwise; ``librosa.hz_to_mel``.

    Slaney (default): ``f / (200/3)`` below 1 kHz, ``15 + ln(f / 1000) / (ln 6.4 / 27)`` above.
    HTK: ``2595 log10(1 + f / 700)``. NumPy or scalar input gives NumPy float64, JAX input JAX.
    """
    htk = _checks.boolean("htk", htk)
    xp = _namespace(frequencies)
    f = frequencies if xp is jnp else np.asarray(frequencies, dtype=np.float64)
    if htk:
        # log1p keeps float32 accurate at low frequencies, where 1 + f / 700 rounds.
        return _HTK_SCALE * xp.log1p(f / 700.0)
    # The maximum keeps the unused branch finite, so the gradient of the used one is not NaN.
    log_part = _MIN_LOG_MEL + xp.log(xp.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return xp.where(f >= _MIN_LOG_HZ, log_part, f / _F_SP)


def mel_to_hz(mels, *, htk: bool = False):
    """Mels to Hz, elementwise, the inverse of ``hz_to_mel``; ``librosa.mel_to_hz``."""
    htk = _checks.boolean("htk", htk)
    xp = _namespace(mels)
    m = mels if xp is jnp else np.asarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * xp.expm1(m / _HTK_SCALE)
    log_part = _MIN_LOG_HZ * xp.exp(_LOGSTEP * (xp.maximum(m, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return xp.where(m >= _MIN_LOG_MEL, log_part, _F_SP * m)


def mel_frequencies(n: int, *, fmin: float, fmax: float, htk: bool = False) -> np.ndarray:
    """``n`` frequencies (Hz, float64) evenly spaced on the mel scale from fmin to fmax."""
    mels = np.linspace(hz_to_mel(fmin, htk=htk), hz_to_mel(fmax, htk=htk), n)
    return mel_to_hz(mels, htk=htk)


@functools.lru_cache(maxsize=128)
def _mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool, norm
) -> np.ndarray:
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    edges = mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=htk)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        # Equal area per triangle: each band has about the same energy for white noise.
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    basis = np.ascontiguousarray(weights.T)
    basis.setflags(write=False)  # cached: callers must not be able to alter later results
    return basis


def mel_filterbank(
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> np.ndarray:
    """Triangular mel filterbank, ``librosa.filters.mel(...)`` transposed, in float64.

    ``n_mels + 2`` edges are spaced evenly in mels between ``fmin`` and ``fmax``; filter ``m``
    rises from edge ``m`` to ``m + 1`` and falls to ``m + 2``, evaluated at the FFT bin centres
    ``k * sample_rate / n_fft``. ``norm="slaney"`` divides each triangle by half its width in Hz
    (``2 / (f[m + 2] - f[m])``); ``None`` leaves peaks at 1. As in librosa, too many bands for
    the FFT resolution leave some filters empty (all zero); a ``UserWarning`` then names how
    many, as librosa warns (it is raised when the filterbank is built, in NumPy, so under
    ``jax.jit`` it comes once per trace).

    Args:
      sample_rate: Hz.
      n_fft: FFT size.
      n_mels: number of bands.
      fmin, fmax: band edges in Hz, ``0 <= fmin < fmax <= sample_rate / 2``; None is Nyquist.
      htk: HTK mel scale instead of Slaney's.
      norm: ``"slaney"`` or None.

    Returns:
      read-only float64 ``[n_fft // 2 + 1, n_mels]``, cached per arguments; ``power @ basis``
      maps a ``[..., frames, n_freq]`` power spectrogram to ``[..., frames, n_mels]``.
    """
    sample_rate, fmin, fmax = _checks.frequency_range(sample_rate=sample_rate, fmin=fmin, fmax=fmax)
    n_fft = _checks.positive_int("n_fft", n_fft)
    n_mels = _checks.positive_int("n_mels", n_mels)
    htk = _checks.boolean("htk", htk)
    norm = _checks.choice("norm", norm, MEL_NORMS)
    basis = _mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm)
    empty = np.flatnonzero(~basis.any(axis=0))
    if empty.size:
        warnings.warn(
            f"{empty.size} of {n_mels} mel filters are empty (all zero: no FFT bin falls inside "
            f"them, first band {empty[0]}), so their channels carry no signal. Use fewer bands "
            f"(n_mels), a larger n_fft or a higher sample rate (and fmax).",
            UserWarning,
            stacklevel=2,
        )
    return basis


def apply_filterbank(power: jax.Array, basis: jax.typing.ArrayLike) -> jax.Array:
    """``power @ basis`` at full float32 precision.

    Args:
      power: float ``[..., frames, n_freq]``.
      basis: ``[n_freq, n_mels]``, or ``[..., n_freq, n_mels]`` broadcasting against ``power``'s
        leading axes (one filterbank per example, e.g. warped for VTLP).

    Returns:
      ``[..., frames, n_mels]`` in ``power``'s dtype.
    """
    power = _checks.float_array("power", power, min_ndim=2)
    basis = _checks.float_array("mel_basis", basis, min_ndim=2)
    if basis.shape[-2] != power.shape[-1]:
        raise ValueError(
            f"mel_basis must have shape [..., n_freq={power.shape[-1]}, n_mels] to match the "
            f"power spectrogram, got {basis.shape}"
        )
    # Accelerators default float32 matmuls to reduced precision (TF32/bf16), which would show
    # in the log of faint bands; the projection is cheap next to the FFT.
    return jnp.matmul(power, basis.astype(power.dtype), precision=jax.lax.Precision.HIGHEST)


def mel_spectrogram(
    power: jax.Array,
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> jax.Array:
    """Mel power spectrogram from a power spectrogram (``librosa.feature.melspectrogram``).

    Args:
      power: float ``[..., frames, n_fft // 2 + 1]``, e.g. ``dsp.power_spectrogram``.
      sample_rate, n_fft, n_mels, fmin, fmax, htk, norm: as ``dsp.mel_filterbank``.

    Returns:
      ``[..., frames, n_mels]`` in ``power``'s dtype.
    """
    basis = mel_filterbank(
        sample_rate=sample_rate,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        norm=norm,
    )
    return apply_filterbank(power, basis)


def power_to_db(
    power: jax.Array,
    *,
    ref: float = 1.0,
    amin: float = 1e-10,
    top_db: float | None = None,
    n_frames: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Decibels ``10 log10(max(amin, S)) - 10 log10(max(amin, ref))``, as librosa's.

    With ``top_db``, values are clipped from below at ``peak - top_db``. librosa takes the peak
    over its whole input; here it is taken per example, over the last two axes (one
    ``[frames, features]`` plane), and over valid frames only when ``n_frames`` is given, so a
    padded batch clips each example exactly as that example alone. Unlike librosa the default
    is ``top_db=None`` (no clipping).

    Args:
      power: float ``[..., frames, features]`` non-negative power.
      ref: reference power (0 dB).
      amin: floor (> 0) applied before the logarithm.
      top_db: dynamic range in dB (>= 0), or None.
      n_frames: optional int ``[...]``, valid frames per example.

    Returns:
      ``[..., frames, features]`` in ``power``'s dtype.
    """
    amin = _checks.real("amin", amin, low=0.0, low_open=True)
    ref = _checks.real("ref", ref, low=0.0, low_open=True)
    if top_db is not None:
        top_db = _checks.real("top_db", top_db, low=0.0)
    power = _checks.float_array("power", power, min_ndim=2 if n_frames is not None else 1)
    db = 10.0 * jnp.log10(jnp.maximum(power, jnp.asarray(amin, power.dtype)))
    db = db - float(10.0 * np.log10(max(amin, ref)))
    if top_db is None:
        return db
    axes = (-2, -1) if db.ndim >= 2 else (-1,)
    if n_frames is None:
        peak = jnp.max(db, axis=axes, keepdims=True)
    else:
        n_frames = _checks.int_array("n_frames", n_frames, shape=power.shape[:-2])
        valid = frame_mask(n_frames, power.shape[-2])[..., None]
        peak = jnp.max(jnp.where(valid, db, -jnp.inf), axis=axes, keepdims=True)
    return jnp.maximum(db, peak - top_db)


def log_mel_spectrogram(
    power: jax.Array,
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
    amin: float = 1e-10,
    top_db: float | None = None,
    n_frames: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Log-mel spectrogram (MSPEC) in dB: ``power_to_db(mel_spectrogram(power))``.

    Equals ``librosa.power_to_db(librosa.feature.melspectrogram(S=power.T, ...), amin=amin,
    top_db=top_db).T`` for one example (librosa's own default is ``top_db=80``).

    Args:
      power: float ``[..., frames, n_fft // 2 + 1]`` power spectrogram.
      sample_rate, n_fft, n_mels, fmin, fmax, htk, norm: as ``dsp.mel_filterbank``.
      amin, top_db, n_frames: as ``dsp.power_to_db``.

    Returns:
      ``[..., frames, n_mels]`` in ``power``'s dtype.
    """
    mel = mel_spectrogram(
        power,
        sample_rate=sample_rate,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        norm=norm,
    )
    return power_to_db(mel, amin=amin, top_db=top_db, n_frames=n_frames)
