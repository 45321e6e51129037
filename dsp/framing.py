"""Pre-emphasis, analysis windows and framing.

Conventions follow librosa: periodic windows by default (what ``librosa.stft`` uses through
``scipy.signal.get_window(..., fftbins=True)``), a window shorter than the FFT zero-padded on both
sides (``librosa.util.pad_center``), and ``center=True`` padding of ``n_fft // 2`` samples on
each side of the signal.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from dsp import _checks

WINDOWS = ("hann", "hamming")
PAD_MODES = ("constant", "reflect")

# Generalised cosine windows a0 - a1 cos(2 pi n / M), as scipy defines them.
_COSINE_WINDOW_COEFS = {"hann": (0.5, 0.5), "hamming": (0.54, 0.46)}


def preemphasis(x: jax.Array, *, coef: float = 0.97) -> jax.Array:
    """First-order pre-emphasis ``y[n] = x[n] - coef * x[n - 1]`` along the last axis.

    The filter starts from rest, ``y[0] = x[0]`` (``scipy.signal.lfilter([1, -coef], [1], x)``,
    or ``librosa.effects.preemphasis(x, coef=coef, zi=0)``; librosa's default ``zi=None``
    extrapolates a sample before ``x[0]`` instead).

    Args:
      x: float ``[..., T]`` waveform.
      coef: filter coefficient in ``[0, 1]``; 0 returns ``x`` unchanged.

    Returns:
      ``[..., T]`` in ``x``'s dtype.
    """
    coef = _checks.real("coef", coef, low=0.0, high=1.0)
    x = _checks.float_array("x", x)
    if coef == 0.0:
        return x
    previous = jnp.pad(x[..., :-1], [(0, 0)] * (x.ndim - 1) + [(1, 0)])
    return x - jnp.asarray(coef, x.dtype) * previous


@functools.lru_cache(maxsize=64)
def _window(name: str, length: int, periodic: bool) -> np.ndarray:
    a0, a1 = _COSINE_WINDOW_COEFS[name]
    if length == 1:  # scipy's guard: a one-point window is [1.]
        window = np.ones(1)
    else:
        denominator = length if periodic else length - 1
        window = a0 - a1 * np.cos(2.0 * np.pi * np.arange(length) / denominator)
    window.setflags(write=False)  # cached: callers must not be able to alter later results
    return window


def get_window(name: str, win_length: int, *, periodic: bool = True) -> np.ndarray:
    """A Hann or Hamming window as a read-only float64 NumPy constant (cached).

    Args:
      name: ``"hann"`` (``0.5 - 0.5 cos``) or ``"hamming"`` (``0.54 - 0.46 cos``).
      win_length: number of points.
      periodic: True for the periodic ("DFT-even") window that spectral analysis wants
        (``scipy.signal.get_window(name, N, fftbins=True)``, librosa's default); False for the
        symmetric one (``np.hanning`` / ``np.hamming``, or ``fftbins=False``).

    Returns:
      float64 ``[win_length]``.
    """
    name = _checks.choice("window", name, WINDOWS)
    win_length = _checks.positive_int("win_length", win_length)
    periodic = _checks.boolean("periodic", periodic)
    return _window(name, win_length, periodic)


@functools.lru_cache(maxsize=64)
def _padded_window(name: str, win_length: int, n_fft: int, periodic: bool) -> np.ndarray:
    # librosa.util.pad_center: the extra sample of an odd difference goes to the right.
    left = (n_fft - win_length) // 2
    window = np.pad(_window(name, win_length, periodic), (left, n_fft - win_length - left))
    window.setflags(write=False)
    return window


def padded_window(name: str, *, win_length: int, n_fft: int, periodic: bool = True) -> np.ndarray:
    """A ``win_length`` window zero-padded centrally to ``n_fft`` points, as ``librosa.stft``.

    Returns:
      read-only float64 ``[n_fft]`` (cached).
    """
    name = _checks.choice("window", name, WINDOWS)
    n_fft, _, win_length = _checks.frame_params(n_fft=n_fft, hop_length=1, win_length=win_length)
    periodic = _checks.boolean("periodic", periodic)
    return _padded_window(name, win_length, n_fft, periodic)


def _reflect_at_lengths(x: jax.Array, pad: int, lengths: jax.Array) -> jax.Array:
    """Reflect-pads each example by ``pad`` on both sides about its own last valid sample.

    Indices follow NumPy's ``reflect`` (no edge repeat, repeated reflection when ``pad`` exceeds
    the signal), i.e. the even periodic extension with period ``2 (L - 1)``. Samples beyond the
    right padding of a short example are zero; they belong to no valid frame.
    """
    j = jnp.arange(x.shape[-1] + 2 * pad, dtype=jnp.int32) - pad
    length = lengths[..., None]
    period = jnp.maximum(2 * (length - 1), 1)
    m = jnp.mod(j, period)
    # The clip only matters for an empty example, whose frames are all invalid anyway.
    source = jnp.clip(jnp.where(m >= length, period - m, m), 0, x.shape[-1] - 1)
    source = jnp.broadcast_to(source, x.shape[:-1] + j.shape)
    padded = jnp.take_along_axis(x, source, axis=-1)
    return jnp.where(j < length + pad, padded, 0)


def _gather_frames(x: jax.Array, *, frame_length: int, hop_length: int) -> jax.Array:
    """``[..., T] -> [..., frames, frame_length]``, frame ``t`` starting at ``t * hop_length``.

    One gather with a constant index table: on CPU it measured several times faster than
    slicing a ``[blocks, hop]`` reshape and concatenating the slices.
    """
    n_frames = 1 + (x.shape[-1] - frame_length) // hop_length
    starts = np.arange(n_frames, dtype=np.int32)[:, None] * hop_length
    index = starts + np.arange(frame_length, dtype=np.int32)[None, :]
    return x[..., index]


def frame(
    x: jax.Array,
    *,
    frame_length: int,
    hop_length: int,
    center: bool = True,
    pad_mode: str = "constant",
    lengths: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Cuts a signal into overlapping frames, as ``librosa.stft`` does before its FFT.

    With ``center``, the signal is padded by ``frame_length // 2`` on each side (zeros for
    ``"constant"``, mirror images for ``"reflect"``), so frame ``t`` is centred on sample
    ``t * hop_length``.

    Args:
      x: float ``[..., T]``.
      frame_length: samples per frame (``n_fft``).
      hop_length: samples between frame starts.
      center: pad as above; otherwise frame ``t`` starts at sample ``t * hop_length``.
      pad_mode: ``"constant"`` or ``"reflect"``.
      lengths: optional int ``[...]``, valid samples per example. Samples at or past an
        example's length are treated as absent: they are zeroed, and ``"reflect"`` reflects about
        the example's own last sample, so that each example's valid frames equal those of the
        unpadded signal framed alone.

    Returns:
      ``[..., frames, frame_length]`` with ``frames = 1 + (T' - frame_length) // hop_length``,
      ``T'`` the (padded) length.
    """
    frame_length = _checks.positive_int("frame_length", frame_length)
    hop_length = _checks.positive_int("hop_length", hop_length)
    center = _checks.boolean("center", center)
    pad_mode = _checks.choice("pad_mode", pad_mode, PAD_MODES)
    x = _checks.float_array("x", x)
    total = x.shape[-1]
    if total == 0:
        raise ValueError(f"x must not be empty, got shape {x.shape}")
    if lengths is not None:
        lengths = jnp.clip(_checks.int_array("lengths", lengths, shape=x.shape[:-1]), 0, total)
        x = jnp.where(jnp.arange(total) < lengths[..., None], x, 0)
    if center:
        pad = frame_length // 2
        if pad_mode == "reflect" and lengths is not None:
            x = _reflect_at_lengths(x, pad, lengths)
        else:
            mode = "reflect" if pad_mode == "reflect" else "constant"
            x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode=mode)
    if x.shape[-1] < frame_length:
        raise ValueError(
            f"x is too short: {total} samples give no full frame of frame_length={frame_length} "
            f"with center={center}"
        )
    return _gather_frames(x, frame_length=frame_length, hop_length=hop_length)
