"""Spectral shape descriptors of a magnitude spectrogram, one value per frame.

Input is a magnitude spectrogram ``[..., frames, n_freq]`` (``dsp.magnitude_spectrogram``, or
the square root of ``dsp.power_stage``'s power) and output ``[..., frames]``. As librosa does for
a given ``S``, bin ``k`` lies at ``k * sample_rate / n_fft`` with ``n_fft = 2 (n_freq - 1)``
(``librosa.fft_frequencies``), so an odd ``n_fft`` is read as the even one below it. Every
descriptor is a function of its own frame (flux of its own and the previous), so padded frames
never reach valid ones.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from dsp import _checks

SPECTRAL_DESCRIPTORS = ("centroid", "bandwidth", "rolloff", "flatness", "flux")


@functools.lru_cache(maxsize=32)
def _bin_frequencies(n_freq: int, sample_rate: int) -> np.ndarray:
    frequencies = np.fft.rfftfreq(2 * (n_freq - 1), d=1.0 / sample_rate)
    frequencies.setflags(write=False)  # cached: callers must not be able to alter later results
    return frequencies


def _spectrogram(S, *, min_ndim: int = 1) -> jax.Array:
    S = _checks.float_array("S", S, min_ndim=min_ndim)
    if S.shape[-1] < 2:
        raise ValueError(f"S must have shape [..., frames, n_freq >= 2], got {S.shape}")
    return S.astype(_checks.compute_dtype(S))


def _frequencies(S: jax.Array, sample_rate) -> jax.Array:
    sample_rate = _checks.positive_int("sample_rate", sample_rate)
    return jnp.asarray(_bin_frequencies(S.shape[-1], sample_rate), S.dtype)


def _normalise(S: jax.Array) -> jax.Array:
    """Each frame divided by its sum, ``librosa.util.normalize(S, norm=1)``; all-zero frames
    (sum below the dtype's ``tiny``) are left as they are."""
    total = jnp.sum(S, axis=-1, keepdims=True)
    return S / jnp.where(total < jnp.finfo(S.dtype).tiny, 1.0, total)


def _centroid(S: jax.Array, frequencies: jax.Array) -> jax.Array:
    return jnp.sum(_normalise(S) * frequencies, axis=-1)


def spectral_centroid(S: jax.Array, *, sample_rate: int) -> jax.Array:
    """Magnitude-weighted mean frequency, ``librosa.feature.spectral_centroid(S=S.T)``.

    Args:
      S: float ``[..., frames, n_freq]`` non-negative magnitudes.
      sample_rate: Hz.

    Returns:
      ``[..., frames]`` in Hz (float32, or float64 for float64 input); 0 for an all-zero frame.
    """
    S = _spectrogram(S)
    return _centroid(S, _frequencies(S, sample_rate))


def _bandwidth(S: jax.Array, frequencies: jax.Array, centroid: jax.Array, p: float):
    deviation = jnp.abs(frequencies - centroid[..., None])
    return jnp.sum(_normalise(S) * deviation**p, axis=-1) ** (1.0 / p)


def spectral_bandwidth(S: jax.Array, *, sample_rate: int, p: float = 2.0) -> jax.Array:
    """Order-``p`` spread about the centroid, ``librosa.feature.spectral_bandwidth(S=S.T)``.

    ``(sum_k s_k |f_k - centroid|^p)^(1/p)`` with ``s`` the frame normalised to sum 1 (with
    ``p = 2`` a standard deviation in Hz).

    Args:
      S: float ``[..., frames, n_freq]`` non-negative magnitudes.
      sample_rate: Hz.
      p: order (> 0).

    Returns:
      ``[..., frames]`` in Hz.
    """
    p = _checks.real("p", p, low=0.0, low_open=True)
    S = _spectrogram(S)
    frequencies = _frequencies(S, sample_rate)
    return _bandwidth(S, frequencies, _centroid(S, frequencies), p)


def _rolloff(S: jax.Array, frequencies: jax.Array, roll_percent: float) -> jax.Array:
    cumulative = jnp.cumsum(S, axis=-1)
    reached = cumulative >= roll_percent * cumulative[..., -1:]
    return frequencies[jnp.argmax(reached, axis=-1)]


def spectral_rolloff(S: jax.Array, *, sample_rate: int, roll_percent: float = 0.85) -> jax.Array:
    """Lowest bin frequency holding ``roll_percent`` of the frame's magnitude below or at it.

    Equals ``librosa.feature.spectral_rolloff(S=S.T, roll_percent=roll_percent)``: the first
    ``f_k`` with ``sum_{j <= k} S_j >= roll_percent * sum_j S_j``.

    Args:
      S: float ``[..., frames, n_freq]`` non-negative magnitudes.
      sample_rate: Hz.
      roll_percent: fraction in ``(0, 1)``.

    Returns:
      ``[..., frames]`` in Hz; 0 for an all-zero frame.
    """
    roll_percent = _check_roll_percent(roll_percent)
    S = _spectrogram(S)
    return _rolloff(S, _frequencies(S, sample_rate), roll_percent)


def _check_roll_percent(roll_percent) -> float:
    roll_percent = _checks.real("roll_percent", roll_percent, low=0.0, low_open=True)
    if roll_percent >= 1.0:
        raise ValueError(f"roll_percent must be < 1, got {roll_percent!r}")
    return roll_percent


def _flatness(S: jax.Array, amin: float, power: float) -> jax.Array:
    floored = jnp.maximum(S**power, jnp.asarray(amin, S.dtype))
    geometric = jnp.exp(jnp.mean(jnp.log(floored), axis=-1))
    return geometric / jnp.mean(floored, axis=-1)


def spectral_flatness(S: jax.Array, *, amin: float = 1e-10, power: float = 2.0) -> jax.Array:
    """Geometric over arithmetic mean of ``max(amin, S^power)``, per frame (Wiener entropy).

    Equals ``librosa.feature.spectral_flatness(S=S.T, amin=amin, power=power)``: near 1 for
    white noise, near 0 for a tone; 1 for an all-zero frame (every bin at ``amin``).

    Args:
      S: float ``[..., frames, n_freq]`` non-negative magnitudes.
      amin: floor (> 0) on ``S^power`` before the logarithm.
      power: exponent turning magnitudes into the spectrum measured (2: power).

    Returns:
      ``[..., frames]``, in ``(0, 1]``.
    """
    amin = _checks.real("amin", amin, low=0.0, low_open=True)
    power = _checks.real("power", power, low=0.0, low_open=True)
    return _flatness(_spectrogram(S), amin, power)


def _flux(S: jax.Array) -> jax.Array:
    rise = jnp.mean(jnp.maximum(S[..., 1:, :] - S[..., :-1, :], 0.0), axis=-1)
    return jnp.pad(rise, [(0, 0)] * (rise.ndim - 1) + [(1, 0)])


def spectral_flux(S: jax.Array) -> jax.Array:
    """Mean positive change of each bin from the previous frame (half-wave rectified flux).

    ``flux_t = mean_k max(0, S[t, k] - S[t - 1, k])`` and ``flux_0 = 0``: librosa's onset
    strength of ``S`` itself, ``librosa.onset.onset_strength(S=S.T, lag=1, max_size=1,
    center=False)``, without its usual mel and dB steps; Dixon's spectral flux ("Onset
    detection revisited", DAFx 2006) with a mean over bins for his sum.

    Args:
      S: float ``[..., frames, n_freq]`` magnitudes.

    Returns:
      ``[..., frames]`` in ``S``'s units.
    """
    return _flux(_spectrogram(S, min_ndim=2))


def spectral_descriptors(
    S: jax.Array, *, sample_rate: int, roll_percent: float = 0.85
) -> jax.Array:
    """The five descriptors stacked in ``SPECTRAL_DESCRIPTORS`` order, sharing one centroid.

    Columns: centroid (Hz), bandwidth (``p = 2``, Hz), rolloff (``roll_percent``, Hz), flatness
    (power, ``amin = 1e-10``), flux; each as its own function above.

    Args:
      S: float ``[..., frames, n_freq]`` non-negative magnitudes.
      sample_rate: Hz.
      roll_percent: fraction in ``(0, 1)`` for the rolloff.

    Returns:
      ``[..., frames, 5]``.
    """
    roll_percent = _check_roll_percent(roll_percent)
    S = _spectrogram(S, min_ndim=2)
    frequencies = _frequencies(S, sample_rate)
    centroid = _centroid(S, frequencies)
    columns = (
        centroid,
        _bandwidth(S, frequencies, centroid, 2.0),
        _rolloff(S, frequencies, roll_percent),
        _flatness(S, 1e-10, 2.0),
        _flux(S),
    )
    return jnp.stack(columns, axis=-1)
