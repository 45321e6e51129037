"""Orthonormal DCT-II and MFCCs from log-mel spectrograms (librosa's conventions)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from dsp import _checks


@functools.lru_cache(maxsize=32)
def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    n = np.arange(n_in)
    k = np.arange(n_out)
    basis = np.sqrt(2.0 / n_in) * np.cos(np.pi * np.outer(2 * n + 1, k) / (2 * n_in))
    basis[:, 0] = np.sqrt(1.0 / n_in)
    basis.setflags(write=False)  # cached: callers must not be able to alter later results
    return basis


def dct_matrix(n_in: int, n_out: int | None = None) -> np.ndarray:
    """Orthonormal DCT-II as a read-only float64 ``[n_in, n_out]`` matrix (cached).

    ``x @ D`` equals ``scipy.fft.dct(x, type=2, norm="ortho")[..., :n_out]``:
    ``D[n, k] = s_k cos(pi k (2n + 1) / (2 n_in))`` with ``s_0 = sqrt(1 / n_in)`` and
    ``s_k = sqrt(2 / n_in)``. The square matrix is orthogonal (``D.T @ D = I``).
    """
    n_in = _checks.positive_int("n_in", n_in)
    n_out = n_in if n_out is None else _checks.positive_int("n_out", n_out)
    if n_out > n_in:
        raise ValueError(f"n_out must be <= n_in={n_in}, got {n_out}")
    return _dct_matrix(n_in, n_out)


def lifter_weights(n_mfcc: int, lifter: int) -> np.ndarray:
    """librosa's sinusoidal lifter ``1 + (L / 2) sin(pi n / L)`` for ``n = 1 .. n_mfcc``.

    librosa counts from 1 at c0 (HTK counts from 0 at c0, leaving c0 unscaled). ``lifter=0``
    gives ones. Returns float64 ``[n_mfcc]``.
    """
    n_mfcc = _checks.positive_int("n_mfcc", n_mfcc)
    lifter = _checks.nonnegative_int("lifter", lifter)
    if lifter == 0:
        return np.ones(n_mfcc)
    return 1.0 + (lifter / 2.0) * np.sin(np.pi * np.arange(1, n_mfcc + 1) / lifter)


def mfcc_from_log_mel(log_mel: jax.Array, *, n_mfcc: int = 13, lifter: int = 0) -> jax.Array:
    """MFCCs: orthonormal DCT-II over mel bands, first ``n_mfcc``, optionally liftered.

    Equals ``librosa.feature.mfcc(S=log_mel.T, n_mfcc=n_mfcc, lifter=lifter).T`` (``dct_type=2``,
    ``norm="ortho"``).

    Args:
      log_mel: float ``[..., frames, n_mels]``, e.g. ``dsp.power_to_db`` of a mel spectrogram.
      n_mfcc: number of coefficients, ``<= n_mels``.
      lifter: librosa's lifter parameter ``L`` (0 disables), see ``lifter_weights``.

    Returns:
      ``[..., frames, n_mfcc]`` in ``log_mel``'s dtype.
    """
    log_mel = _checks.float_array("log_mel", log_mel)
    n_mfcc = _checks.positive_int("n_mfcc", n_mfcc)
    if n_mfcc > log_mel.shape[-1]:
        raise ValueError(f"n_mfcc must be <= n_mels={log_mel.shape[-1]}, got {n_mfcc}")
    # The lifter is diagonal, so it folds into the DCT matrix: one constant, one matmul.
    basis = dct_matrix(log_mel.shape[-1], n_mfcc) * lifter_weights(n_mfcc, lifter)
    return jnp.matmul(
        log_mel, jnp.asarray(basis, log_mel.dtype), precision=jax.lax.Precision.HIGHEST
    )
