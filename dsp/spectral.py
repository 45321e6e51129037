"""Short-time Fourier transform and its magnitude and power spectrograms.

Layout is ``(..., frames, n_fft // 2 + 1)``: time before frequency, the transpose of librosa's
``(..., 1 + n_fft // 2, frames)``, because models read features frame by frame.

Two ways to take the DFT of the windowed frames, equal within float rounding:

  ``dft="fft"``: ``jnp.fft.rfft`` of the frames times the window (the default);
  ``dft="matmul"``: one matrix product of the frames with a cached real DFT basis, the window
      folded in and its zero padding cut off: ``[..., win_length] @ [win_length, 2 * n_freq]``.
      Some 35 times the FFT's arithmetic for a 400-point window and a 512-point FFT, but one
      dense product, the shape of work that matrix units (and BLAS) are built for.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from dsp import _checks
from dsp.framing import WINDOWS, frame, padded_window

DFT_METHODS = ("fft", "matmul")


@functools.lru_cache(maxsize=32)
def _dft_basis(n_fft: int, win_length: int, window: str) -> np.ndarray:
    left = (n_fft - win_length) // 2  # where librosa.util.pad_center puts the window
    n = np.arange(left, left + win_length)[:, None]
    k = np.arange(n_fft // 2 + 1)[None, :]
    angle = 2.0 * np.pi * ((n * k) % n_fft) / n_fft  # reduced mod n_fft: exact angles
    taper = padded_window(window, win_length=win_length, n_fft=n_fft)[left : left + win_length]
    basis = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1) * taper[:, None]
    basis.setflags(write=False)
    return basis


def dft_basis(n_fft: int, *, win_length: int | None = None, window: str = "hann") -> np.ndarray:
    """The windowed real DFT basis of ``dft="matmul"`` (a cached read-only NumPy constant).

    ``frames[..., left:left + win_length] @ basis`` with ``left = (n_fft - win_length) // 2``
    gives ``[re | im]`` of ``rfft(frames * padded_window, n_fft)``: column ``k`` holds
    ``w[n] cos(2 pi k (n + left) / n_fft)``, column ``n_freq + k`` its ``-sin``.

    Returns:
      float64 ``[win_length, 2 * (n_fft // 2 + 1)]``.
    """
    n_fft, _, win_length = _checks.frame_params(n_fft=n_fft, hop_length=1, win_length=win_length)
    window = _checks.choice("window", window, WINDOWS)
    return _dft_basis(n_fft, win_length, window)


def _spectrum_parts(
    x: jax.Array,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None,
    window: str,
    center: bool,
    pad_mode: str,
    lengths: jax.typing.ArrayLike | None,
    dft: str,
) -> tuple[jax.Array, jax.Array] | jax.Array:
    """The complex STFT (``dft="fft"``) or its ``(real, imaginary)`` parts (``"matmul"``)."""
    n_fft, hop_length, win_length = _checks.frame_params(
        n_fft=n_fft, hop_length=hop_length, win_length=win_length
    )
    dft = _checks.choice("dft", dft, DFT_METHODS)
    x = _checks.float_array("x", x)
    dtype = _checks.compute_dtype(x)
    frames = frame(
        x.astype(dtype),
        frame_length=n_fft,
        hop_length=hop_length,
        center=center,
        pad_mode=pad_mode,
        lengths=lengths,
    )
    if dft == "fft":
        taper = padded_window(window, win_length=win_length, n_fft=n_fft)
        return jnp.fft.rfft(frames * jnp.asarray(taper, dtype), n=n_fft, axis=-1)
    left = (n_fft - win_length) // 2
    basis = jnp.asarray(dft_basis(n_fft, win_length=win_length, window=window), dtype)
    parts = jnp.matmul(
        frames[..., left : left + win_length], basis, precision=jax.lax.Precision.HIGHEST
    )
    n_freq = n_fft // 2 + 1
    return parts[..., :n_freq], parts[..., n_freq:]


def stft(
    x: jax.Array,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    lengths: jax.typing.ArrayLike | None = None,
    dft: str = "fft",
) -> jax.Array:
    """Complex STFT, equal to ``librosa.stft(x, ...)`` transposed to ``(..., frames, freq)``.

    Each frame is multiplied by a periodic ``window`` of ``win_length`` points zero-padded
    centrally to ``n_fft``, then transformed with ``jnp.fft.rfft`` (or, with ``dft="matmul"``,
    multiplied by ``dsp.dft_basis``).

    Args:
      x: float ``[..., T]`` waveform.
      n_fft: FFT size; ``n_fft // 2 + 1`` frequency bins from 0 to ``sample_rate / 2``.
      hop_length: frame shift in samples.
      win_length: window length ``<= n_fft``; None means ``n_fft``.
      window: ``"hann"`` or ``"hamming"`` (periodic).
      center: pad by ``n_fft // 2`` on each side so that frame ``t`` is centred on
        ``t * hop_length``.
      pad_mode: ``"constant"`` (zeros, librosa's default) or ``"reflect"``.
      lengths: optional int ``[...]`` valid samples per example; see ``dsp.frame``.
      dft: ``"fft"`` or ``"matmul"`` (see the module docstring); equal within float rounding.

    Returns:
      complex ``[..., frames, n_fft // 2 + 1]`` (complex64 for float32 input, complex128 for
      float64), ``frames = 1 + (T' - n_fft) // hop_length`` with ``T'`` the padded length.
    """
    spectrum = _spectrum_parts(
        x,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        lengths=lengths,
        dft=dft,
    )
    return spectrum if dft == "fft" else jax.lax.complex(*spectrum)


def power_spectrogram(
    x: jax.Array,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    lengths: jax.typing.ArrayLike | None = None,
    dft: str = "fft",
) -> jax.Array:
    """``|STFT|^2``, computed as ``re^2 + im^2`` so that its gradient is finite everywhere.

    Arguments as ``dsp.stft``. Returns real ``[..., frames, n_fft // 2 + 1]``, equal to
    ``np.abs(librosa.stft(x, ...)) ** 2`` transposed.
    """
    spectrum = _spectrum_parts(
        x,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        lengths=lengths,
        dft=dft,
    )
    real, imag = (spectrum.real, spectrum.imag) if dft == "fft" else spectrum
    return jnp.square(real) + jnp.square(imag)


def magnitude_spectrogram(
    x: jax.Array,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    lengths: jax.typing.ArrayLike | None = None,
    dft: str = "fft",
) -> jax.Array:
    """``|STFT|``; arguments as ``dsp.stft``.

    Returns real ``[..., frames, n_fft // 2 + 1]``. The gradient is undefined where a bin is
    exactly 0; differentiate ``power_spectrogram`` instead.
    """
    return jnp.sqrt(
        power_spectrogram(
            x,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=window,
            center=center,
            pad_mode=pad_mode,
            lengths=lengths,
            dft=dft,
        )
    )
