"""Argument validation shared by the public functions.

Every check runs in Python on static arguments or on shapes and dtypes, which are known at trace
time, so a bad call fails with a ``ValueError`` naming the argument before anything is traced.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import jax.numpy as jnp
import numpy as np


def _is_int(value: Any) -> bool:
    # bool is an int subclass; True as an FFT size is always a mistake.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def positive_int(name: str, value: Any) -> int:
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def nonnegative_int(name: str, value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """A finite real in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    is_real = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if not is_real or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")
    return value


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def choice(name: str, value: Any, options: Iterable[Any]) -> Any:
    options = tuple(options)
    if _is_int(value):
        value = int(value)  # NumPy integers count as ints
    # Compare types too, so that 0 is not accepted for False or 1.0 for 1.
    if not any(value is o or (type(value) is type(o) and value == o) for o in options):
        raise ValueError(f"{name} must be one of {options!r}, got {value!r}")
    return value


def config(value: Any, cls: type) -> Any:
    """``value`` when it is a ``cls`` (a frozen config dataclass), else a ValueError naming it."""
    if not isinstance(value, cls):
        raise ValueError(f"config must be a dsp.{cls.__name__}, got {type(value).__name__}")
    return value


def frame_params(*, n_fft: Any, hop_length: Any, win_length: Any = None) -> tuple[int, int, int]:
    """Validates an STFT geometry; ``win_length=None`` means ``n_fft``."""
    n_fft = positive_int("n_fft", n_fft)
    hop_length = positive_int("hop_length", hop_length)
    win_length = n_fft if win_length is None else positive_int("win_length", win_length)
    if win_length > n_fft:
        raise ValueError(
            f"n_fft must be >= win_length (the window is zero-padded up to n_fft), "
            f"got n_fft={n_fft} < win_length={win_length}"
        )
    return n_fft, hop_length, win_length


def frequency_range(*, sample_rate: Any, fmin: Any, fmax: Any) -> tuple[int, float, float]:
    """Validates ``0 <= fmin < fmax <= sample_rate / 2``; ``fmax=None`` means Nyquist."""
    sample_rate = positive_int("sample_rate", sample_rate)
    nyquist = sample_rate / 2
    fmin = real("fmin", fmin, low=0.0)
    fmax = nyquist if fmax is None else real("fmax", fmax, low=0.0, low_open=True)
    if fmax > nyquist:
        raise ValueError(
            f"fmax must be <= sample_rate / 2 = {nyquist} (Nyquist), got fmax={fmax} "
            f"with sample_rate={sample_rate}"
        )
    if fmin >= fmax:
        raise ValueError(f"fmin must be < fmax, got fmin={fmin} and fmax={fmax}")
    return sample_rate, fmin, fmax


def _dtype_of(x: Any) -> np.dtype:
    dtype = getattr(x, "dtype", None)
    return np.asarray(x).dtype if dtype is None else dtype


def float_array(name: str, x: Any, *, min_ndim: int = 1) -> jnp.ndarray:
    """``x`` as a real floating JAX array of rank ``>= min_ndim``."""
    dtype = _dtype_of(x)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"{name} must have a real floating dtype, got {dtype}")
    if np.ndim(x) < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s), got shape {np.shape(x)}"
        )
    return jnp.asarray(x)


def int_array(name: str, x: Any, *, shape: tuple[int, ...] | None = None) -> jnp.ndarray:
    """``x`` as an int32 JAX array; floats are refused because a length counts samples."""
    dtype = _dtype_of(x)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(f"{name} must have an integer dtype, got {dtype}")
    if shape is not None and tuple(np.shape(x)) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(np.shape(x))}")
    return jnp.asarray(x, dtype=jnp.int32)


def bool_array(name: str, x: Any) -> jnp.ndarray:
    """``x`` as a boolean JAX array; numbers are refused, so that a weight is not read as a mask."""
    dtype = _dtype_of(x)
    if dtype != np.bool_:
        raise ValueError(f"{name} must have a boolean dtype, got {dtype}")
    return jnp.asarray(x)


def compute_dtype(x: jnp.ndarray) -> jnp.dtype:
    """float64 stays float64 (where x64 is enabled); every other float computes in float32."""
    return jnp.dtype(jnp.float64) if x.dtype == jnp.float64 else jnp.dtype(jnp.float32)
