"""On-device waveform transforms on zero-padded batches ``[B, T]`` with valid lengths ``[B]``:
gain, noise at an SNR (white or pink) and speed perturbation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import dsp

# Speed perturbation: upsampling factor and Lagrange interpolation points after it (see
# change_speed), and zeros appended to the waveform before its FFT against wrap-around.
SPEED_OVERSAMPLE = 2
SPEED_TAPS = 6
_SPEED_GUARD = 1024


def apply_gain(x: jax.Array, gain_db: jax.Array) -> jax.Array:
    """Scales each waveform ``[B, T]`` by ``10 ** (gain_db / 20)`` (``gain_db [B]`` in dB)."""
    return x * (10.0 ** (gain_db / 20.0)).astype(x.dtype)[..., None]


def _pinken(white: jax.Array) -> jax.Array:
    """White noise ``[..., T]`` shaped to 1/f: bin k scaled by ``1 / sqrt(k)``, DC removed."""
    n = white.shape[-1]
    k = np.arange(n // 2 + 1, dtype=np.float64)
    shaping = np.where(k > 0, 1.0 / np.sqrt(np.maximum(k, 1.0)), 0.0)
    spectrum = jnp.fft.rfft(white, axis=-1) * jnp.asarray(shaping, white.dtype)
    return jnp.fft.irfft(spectrum, n=n, axis=-1).astype(white.dtype)


def add_noise(
    key: jax.Array,
    x: jax.Array,
    lengths: jax.Array,
    snr_db: jax.Array,
    pink: jax.Array | None = None,
) -> jax.Array:
    """Adds noise at an exact SNR over each example's valid samples.

    The noise is scaled so that ``10 log10(sum(x^2) / sum(noise^2))`` over the first
    ``lengths`` samples equals ``snr_db``; padding stays untouched. A silent example stays
    silent (its SNR is undefined).

    Args:
      key: PRNG key.
      x: float ``[B, T]`` waveforms.
      lengths: int ``[B]`` valid samples.
      snr_db: float ``[B]`` signal-to-noise ratios in dB.
      pink: optional bool ``[B]``: pink noise where True, white elsewhere (None: all white).

    Returns:
      ``[B, T]`` in ``x``'s dtype.
    """
    valid = dsp.frame_mask(lengths, x.shape[-1])
    noise = jax.random.normal(key, x.shape, x.dtype)
    if pink is not None:
        noise = jnp.where(pink[:, None], _pinken(noise), noise)
    noise = jnp.where(valid, noise, 0)
    signal_power = jnp.sum(jnp.square(jnp.where(valid, x, 0)), axis=-1)
    noise_power = jnp.sum(jnp.square(noise), axis=-1)
    target = signal_power / (10.0 ** (snr_db / 10.0))
    scale = jnp.sqrt(target / jnp.where(noise_power > 0, noise_power, 1.0))
    scale = jnp.where(noise_power > 0, scale, 0.0)
    return x + scale.astype(x.dtype)[:, None] * noise


def read_positions(num: int, step: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Integer and fractional parts of ``n * step`` for ``n = 0 .. num - 1``, exactly enough.

    A float32 product ``n * step`` loses the fraction as n grows: float32 numbers near 300,000
    are 1/32 apart. Here ``step = whole + d / 2**s + fine`` with integers ``whole`` and ``d``:
    the first two products are exact in int32, and only ``n * fine`` (``|fine| <= 2**-(s+1)``,
    a few units at most) is rounded, in float32.

    Args:
      num: how many positions (static).
      step: float ``[B]``, > 0.

    Returns:
      ``(low [B, num] int32, frac [B, num] float32)`` with ``low + frac = n * step`` and
      ``0 <= frac < 1``.
    """
    bits = max(1, int(num).bit_length())
    if bits > 26:
        raise ValueError(f"read_positions supports up to 2**26 positions, got {num}")
    shift = max(0, min(12, 30 - bits))  # keeps n * d inside int32
    step = step.astype(jnp.float32)[:, None]
    whole = jnp.round(step)
    rest = step - whole  # exact (Sterbenz), |rest| <= 1/2
    scaled = jnp.round(rest * 2.0**shift)
    fine = rest - scaled / 2.0**shift  # exact again
    n = jnp.arange(num, dtype=jnp.int32)[None, :]
    product = n * scaled.astype(jnp.int32)
    carried = jnp.floor_divide(product, 2**shift)
    remainder = (product - carried * 2**shift).astype(jnp.float32) / 2.0**shift
    remainder = remainder + n.astype(jnp.float32) * fine
    lift = jnp.floor(remainder)
    low = n * whole.astype(jnp.int32) + carried + lift.astype(jnp.int32)
    return low, remainder - lift


def change_speed(
    x: jax.Array, lengths: jax.Array, factor: jax.Array, *, oversample: int = SPEED_OVERSAMPLE
) -> tuple[jax.Array, jax.Array]:
    """Speed perturbation: resamples each waveform so that it plays ``factor`` times faster.

    Output sample n is the input's band-limited interpolant at ``n * factor``. Like sox
    ``speed`` (Kaldi's speed perturbation) this scales every frequency by ``factor`` and divides
    the duration by it. The waveform is upsampled ``oversample`` times by zero-padding its
    spectrum (after a brick-wall low-pass at ``Nyquist / factor`` for ``factor > 1``, so that
    nothing folds back), then read by six-point Lagrange interpolation: on tones spread
    evenly up to 7.2 kHz at 16 kHz the result is within about -44 dB of exact band-limited
    resampling, and closer on speech, whose energy sits lower. Two FFTs and six gathers per
    example, far cheaper on a CPU than a long interpolation filter at every output sample.

    Args:
      x: float ``[B, T]`` waveforms, read only on their valid samples.
      lengths: int ``[B]`` valid samples.
      factor: float ``[B]`` speed factors (> 0; 1 is the identity up to float error).
      oversample: upsampling factor before the interpolation.

    Returns:
      ``(y [B, T], new_lengths [B])`` with ``new_lengths = min(T, round(lengths / factor))``
      (halves up) and ``y`` zero past them; a slowed example longer than ``T`` is cut.
    """
    num, dtype = x.shape[-1], x.dtype
    factor = factor.astype(jnp.float32)
    new_lengths = jnp.floor(lengths.astype(jnp.float32) / factor + 0.5)
    new_lengths = jnp.clip(new_lengths, 0, num).astype(jnp.int32)
    x = jnp.where(dsp.frame_mask(lengths, num), x, 0).astype(jnp.float32)
    # Zeros past T keep the FFT's periodic interpolant from wrapping the start onto the end.
    size = -(-(num + _SPEED_GUARD) // 512) * 512
    spectrum = jnp.fft.rfft(x, n=size, axis=-1)
    bins = jnp.arange(size // 2 + 1, dtype=jnp.float32)
    keep = bins[None, :] <= (size / 2) / jnp.maximum(factor, 1.0)[:, None]
    # The Nyquist bin stands for a cosine counted once; in the longer transform it is an
    # ordinary bin that irfft counts twice.
    half = np.ones(size // 2 + 1, np.float32)
    half[-1] = 0.5
    spectrum = jnp.where(keep, spectrum * jnp.asarray(half), 0)
    up = jnp.fft.irfft(spectrum, n=size * oversample, axis=-1) * oversample
    low, frac = read_positions(num, factor * oversample)
    taps = np.arange(-(SPEED_TAPS // 2) + 1, SPEED_TAPS // 2 + 1)

    def tap(k, y):
        # Lagrange weight of the sample k after `low`: prod over the other taps m of
        # (frac - m) / (k - m).
        weight = jnp.ones_like(frac)
        for m in taps:
            denominator = jnp.where(k == m, 1, k - m).astype(frac.dtype)
            weight = weight * jnp.where(k == m, 1.0, (frac - m) / denominator)
        # The upsampled signal is periodic: taps before its start read its silent guard end.
        index = jnp.remainder(low + k, up.shape[-1])
        return y + weight * jnp.take_along_axis(up, index, axis=-1)

    # A loop over the taps, not an unrolled sum: XLA would fuse an unrolled one into the STFT
    # framing that reads the result and redo it for every frame that reads a sample.
    y = jax.lax.fori_loop(int(taps[0]), int(taps[-1]) + 1, tap, jnp.zeros_like(frac))
    y = y.astype(dtype)
    return jnp.where(dsp.frame_mask(new_lengths, num), y, 0), new_lengths
