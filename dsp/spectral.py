"""Short-time Fourier transform and its magnitude and power spectrograms.

Layout is ``(..., frames, n_fft // 2 + 1)``: time before frequency, the transpose of librosa's
``(..., 1 + n_fft // 2, frames)``, because models read features frame by frame.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dsp import _checks
from dsp.framing import frame, padded_window


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
) -> jax.Array:
    """Complex STFT, equal to ``librosa.stft(x, ...)`` transposed to ``(..., frames, freq)``.

    Each frame is multiplied by a periodic ``window`` of ``win_length`` points zero-padded
    centrally to ``n_fft``, then transformed with ``jnp.fft.rfft``.

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

    Returns:
      complex ``[..., frames, n_fft // 2 + 1]`` (complex64 for float32 input, complex128 for
      float64), ``frames = 1 + (T' - n_fft) // hop_length`` with ``T'`` the padded length.
    """
    n_fft, hop_length, win_length = _checks.frame_params(
        n_fft=n_fft, hop_length=hop_length, win_length=win_length
    )
    x = _checks.float_array("x", x)
    dtype = _checks.compute_dtype(x)
    taper = padded_window(window, win_length=win_length, n_fft=n_fft)
    frames = frame(
        x.astype(dtype),
        frame_length=n_fft,
        hop_length=hop_length,
        center=center,
        pad_mode=pad_mode,
        lengths=lengths,
    )
    return jnp.fft.rfft(frames * jnp.asarray(taper, dtype), n=n_fft, axis=-1)


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
) -> jax.Array:
    """``|STFT|^2``, computed as ``re^2 + im^2`` so that its gradient is finite everywhere.

    Arguments as ``dsp.stft``. Returns real ``[..., frames, n_fft // 2 + 1]``, equal to
    ``np.abs(librosa.stft(x, ...)) ** 2`` transposed.
    """
    spectrum = stft(
        x,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        lengths=lengths,
    )
    return jnp.square(spectrum.real) + jnp.square(spectrum.imag)


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
        )
    )
