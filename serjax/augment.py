"""Data augmentation: on the device inside the jitted train step, and S2's offline copies.

On the device, every transform sits where it acts, between the padded waveform batch and the
model, and each example of the batch draws its own parameters from the step's key:

    waveforms [B, T] ── gain ── noise (white or pink, at an SNR) ── speed (resampling; lengths
    change) ── dsp.power_stage ──► power [B, F, n_freq] ── pitch shift (frequency-axis warp) ──
    time stretch (frame-axis resampling; valid frames change) ── dsp.features_from_power with a
    VTLP-warped filterbank ──► [B, F, D] ── SpecAugment time and frequency masks ── summary ──►
    model input [B, S, D]

Shapes never change, so the train step compiles once per length bucket: an example made longer
(slowed down or stretched) is cut at the batch's padded length. Each transform touches only the
examples it was drawn for; the others come through bit for bit. With every transform off,
:func:`augmented_inputs` is :func:`serjax.features.model_inputs`.

Pitch shift and time stretch act on the STFT power before the mel filterbank: a phase vocoder's
shift or stretch changes what magnitude features see in exactly these two ways (frequencies
scaled by ``2 ** (semitones / 12)``; frames resampled by the stretch rate, magnitudes linearly
interpolated), without the cost of resynthesising a waveform.

Mixup mixes model inputs and returns the pairing, so that the loss mixes the labels with it.

S2's offline augmentation (three extra copies of each training file: noisy, pitch-shifted and
time-stretched) runs once on the host, in NumPy and soxr, with librosa's phase-vocoder
algorithms (:func:`stretch_waveform`, :func:`shift_waveform`, :func:`expand_offline`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import soxr

import dsp
from serjax.features import FeatureSpec, model_inputs, summarize

NOISE_COLORS = ("white", "pink")

# Speed perturbation: upsampling factor and Lagrange interpolation points after it (see
# change_speed), and zeros appended to the waveform before its FFT against wrap-around.
SPEED_OVERSAMPLE = 2
SPEED_TAPS = 6
_SPEED_GUARD = 1024
# VTLP warps frequencies linearly up to this fraction of Nyquist, then maps the rest linearly
# onto what is left, so that Nyquist stays Nyquist (Jaitly & Hinton 2013: 4.8 kHz at 16 kHz).
VTLP_BOUNDARY = 0.6
# The warped filterbank interpolates triangles sampled this many times finer than the FFT bins.
_VTLP_OVERSAMPLE = 8

# Offline copies use librosa.effects' STFT: 2048-point periodic Hann, hop 512, centred.
OFFLINE_N_FFT = 2048
OFFLINE_HOP = 512


# ---------------------------------------------------------------------------------------------
# Configuration


def _range(name: str, value, *, positive: bool = False) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"augment.{name} must be a pair (low, high), got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"augment.{name} must be finite with low <= high, got {value!r}")
    if positive and low <= 0:
        raise ValueError(f"augment.{name} must be positive, got {value!r}")
    return low, high


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """What augmentation the train step applies; frozen and hashable (a static jit argument).

    Every on-device transform is off at probability 0 (or count 0), the default. A range
    ``(low, high)`` draws uniformly per example; equal bounds fix the value.

    Attributes:
      noise_prob, snr_db, noise_colors: add noise at an SNR (dB, over the valid samples) drawn
        from ``snr_db``, of a color drawn uniformly from ``noise_colors`` ("white", "pink").
      gain_prob, gain_db: scale the waveform by a gain in dB.
      speed_prob, speed: resample the waveform by a factor (> 1 faster and higher, as sox
        ``speed``); the valid length becomes ``round(length / factor)``.
      pitch_prob, semitones: scale the power spectrum's frequency axis by
        ``2 ** (semitones / 12)``, tempo unchanged.
      stretch_prob, stretch: resample the frame axis by a rate (> 1 faster); the valid frame
        count becomes ``round(n_frames / rate)``, pitch unchanged.
      vtlp_prob, vtlp_alpha: warp the mel filterbank's frequency axis by a factor alpha
        (piecewise linear, Nyquist fixed; alpha > 1 moves content up).
      time_masks, time_mask_frames: SpecAugment masks of 0..``time_mask_frames`` frames each,
        inside the valid frames.
      freq_masks, freq_mask_bins: SpecAugment masks of 0..``freq_mask_bins`` mel bands (or
        cepstral coefficients) each, the same bands in the static, Δ and ΔΔ blocks.
      mixup_alpha: > 0 enables mixup with a Beta(alpha, alpha) weight per example.
      offline: S2's literal host-side copies (see :func:`expand_offline`), with parameters
        drawn from ``snr_db``, ``semitones`` and ``stretch``; independent of the others.
    """

    noise_prob: float = 0.0
    snr_db: tuple[float, float] = (10.0, 30.0)
    noise_colors: tuple[str, ...] = NOISE_COLORS
    gain_prob: float = 0.0
    gain_db: tuple[float, float] = (-6.0, 6.0)
    speed_prob: float = 0.0
    speed: tuple[float, float] = (0.9, 1.1)
    pitch_prob: float = 0.0
    semitones: tuple[float, float] = (-2.0, 2.0)
    stretch_prob: float = 0.0
    stretch: tuple[float, float] = (0.8, 1.25)
    vtlp_prob: float = 0.0
    vtlp_alpha: tuple[float, float] = (0.9, 1.1)
    time_masks: int = 0
    time_mask_frames: int = 20
    freq_masks: int = 0
    freq_mask_bins: int = 8
    mixup_alpha: float = 0.0
    offline: bool = False

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)
        for name in (
            "noise_prob",
            "gain_prob",
            "speed_prob",
            "pitch_prob",
            "stretch_prob",
            "vtlp_prob",
        ):
            prob = float(getattr(self, name))
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"augment.{name} must be in [0, 1], got {prob}")
            set_(name, prob)
        for name in ("snr_db", "gain_db", "semitones"):
            set_(name, _range(name, getattr(self, name)))
        for name in ("speed", "stretch", "vtlp_alpha"):
            set_(name, _range(name, getattr(self, name), positive=True))
        colors = tuple(self.noise_colors)
        if not colors or any(c not in NOISE_COLORS for c in colors):
            raise ValueError(
                f"augment.noise_colors must be a non-empty selection of {', '.join(NOISE_COLORS)}, "
                f"got {self.noise_colors!r}"
            )
        set_("noise_colors", colors)
        for name in ("time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 0:
                raise ValueError(f"augment.{name} must be a non-negative integer, got {value!r}")
            set_(name, int(value))
        alpha = float(self.mixup_alpha)
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"augment.mixup_alpha must be >= 0, got {self.mixup_alpha!r}")
        set_("mixup_alpha", alpha)
        set_("offline", bool(self.offline))

    @property
    def waveform_transforms(self) -> bool:
        """Whether any transform acts on the waveform (gain, noise, speed)."""
        return self.gain_prob > 0 or self.noise_prob > 0 or self.speed_prob > 0

    @property
    def spectral_transforms(self) -> bool:
        """Whether any transform needs the dsp front end (pitch, stretch, VTLP, masks)."""
        return (
            self.pitch_prob > 0
            or self.stretch_prob > 0
            or self.vtlp_prob > 0
            or (self.time_masks > 0 and self.time_mask_frames > 0)
            or (self.freq_masks > 0 and self.freq_mask_bins > 0)
        )

    @property
    def transforms_inputs(self) -> bool:
        """Whether :func:`augmented_inputs` differs from ``model_inputs``."""
        return self.waveform_transforms or self.spectral_transforms

    @property
    def enabled(self) -> bool:
        """Whether the train step augments at all (input transforms or mixup)."""
        return self.transforms_inputs or self.mixup_alpha > 0

    def off(self) -> AugmentConfig:
        """The same ranges with every on-device transform off (``offline`` kept)."""
        return dataclasses.replace(
            self,
            noise_prob=0.0,
            gain_prob=0.0,
            speed_prob=0.0,
            pitch_prob=0.0,
            stretch_prob=0.0,
            vtlp_prob=0.0,
            time_masks=0,
            freq_masks=0,
            mixup_alpha=0.0,
        )

    @classmethod
    def from_config(cls, augment: ml_collections.ConfigDict) -> AugmentConfig:
        """Builds the config from ``config.augment``.

        Every field of this class is read where ``augment`` has it (lists become tuples);
        ``augment.enabled = False`` turns every on-device transform off and keeps ``offline``.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        values = {}
        for key, value in augment.items():
            if key in names:
                values[key] = tuple(value) if isinstance(value, list | tuple) else value
        aug = cls(**values)
        return aug if augment.get("enabled", True) else aug.off()


# ---------------------------------------------------------------------------------------------
# Waveform transforms, on [B, T] batches with valid lengths [B]


def sample_mask(lengths: jax.Array, num_samples: int) -> jax.Array:
    """bool ``[B, num_samples]``: True on each example's first ``lengths`` samples."""
    return jnp.arange(num_samples, dtype=jnp.int32) < lengths[..., None]


def apply_gain(x: jax.Array, gain_db: jax.Array) -> jax.Array:
    """Scales each waveform ``[B, T]`` by ``10 ** (gain_db / 20)`` (``gain_db [B]`` in dB)."""
    return x * (10.0 ** (gain_db / 20.0)).astype(x.dtype)[..., None]


def pink_noise(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """Gaussian noise ``shape = [..., T]`` with a 1/f power spectrum (-3 dB per octave).

    The level is arbitrary; :func:`add_noise` sets it from the SNR.
    """
    return _pinken(jax.random.normal(key, shape, dtype))


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
    valid = sample_mask(lengths, x.shape[-1])
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
    x = jnp.where(sample_mask(lengths, num), x, 0).astype(jnp.float32)
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
    return jnp.where(sample_mask(new_lengths, num), y, 0), new_lengths


# ---------------------------------------------------------------------------------------------
# Power-spectrogram transforms, on [B, F, n_freq] with valid frames [B]


def _lerp_magnitudes(power: jax.Array, source: jax.Array, axis: int) -> jax.Array:
    """Power at fractional positions ``source`` along ``axis`` (-1 or -2), by linear
    interpolation of magnitudes as the phase vocoder interpolates them; ``source`` is already
    clamped to ``[0, size - 1]`` and broadcasts against ``power`` along the other axes."""
    size = power.shape[axis]
    magnitude = jnp.sqrt(power)
    low = jnp.floor(source)
    frac = (source - low).astype(power.dtype)
    low = low.astype(jnp.int32)
    high = jnp.minimum(low + 1, size - 1)
    left = jnp.take_along_axis(magnitude, low, axis=axis)
    right = jnp.take_along_axis(magnitude, high, axis=axis)
    return jnp.square((1 - frac) * left + frac * right)


def shift_pitch(power: jax.Array, semitones: jax.Array) -> jax.Array:
    """Pitch shift without tempo change, as magnitude features see it.

    Bin k of the output reads the input at bin ``k / ratio`` with ``ratio = 2 ** (semitones /
    12)``: a tone at bin k0 moves to bin ``ratio * k0`` (one octave up doubles its bin) with
    its peak height kept. Content shifted past Nyquist is dropped and, shifting down, the top
    bins are left empty, as after a resampling pitch shift.

    Args:
      power: float ``[B, F, n_freq]`` power spectrograms.
      semitones: float ``[B]`` shifts (0 is the identity).

    Returns:
      ``[B, F, n_freq]``; frames and padded frames as in ``power``.
    """
    n_freq = power.shape[-1]
    ratio = 2.0 ** (semitones.astype(jnp.float32) / 12.0)
    source = jnp.arange(n_freq, dtype=jnp.float32)[None, :] / ratio[:, None]  # [B, n_freq]
    inside = source <= n_freq - 1
    source = jnp.minimum(source, n_freq - 1)[:, None, :]
    shifted = _lerp_magnitudes(power, source, axis=-1)
    return jnp.where(inside[:, None, :], shifted, 0)


def stretch_time(
    power: jax.Array, n_frames: jax.Array, rate: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Time stretch without pitch change, as magnitude features see it.

    Output frame t reads the input at frame ``t * rate`` (magnitudes linearly interpolated, as
    ``librosa.phase_vocoder`` does), clamped to the last valid frame, so the spectrum of every
    frame keeps its frequencies and padding is never read.

    Args:
      power: float ``[B, F, n_freq]`` power spectrograms.
      n_frames: int ``[B]`` valid frames.
      rate: float ``[B]`` stretch rates (> 1 faster, fewer frames; 1 is the identity).

    Returns:
      ``(power [B, F, n_freq], new_n_frames [B])``: ``new_n_frames = min(F, round(n_frames /
      rate))`` (halves up; at least 1 for a non-empty example), frames past it zero.
    """
    num = power.shape[-2]
    rate = rate.astype(jnp.float32)
    new_frames = jnp.clip(jnp.floor(n_frames.astype(jnp.float32) / rate + 0.5), 1, num)
    new_frames = jnp.where(n_frames > 0, new_frames, 0).astype(jnp.int32)
    last = jnp.maximum(n_frames - 1, 0).astype(jnp.float32)
    source = jnp.arange(num, dtype=jnp.float32)[None, :] * rate[:, None]
    source = jnp.minimum(source, last[:, None])[:, :, None]  # [B, F, 1]
    stretched = _lerp_magnitudes(power, source, axis=-2)
    return jnp.where(dsp.frame_mask(new_frames, num)[..., None], stretched, 0), new_frames


def vtlp_warp(freqs, alpha, *, nyquist: float, boundary: float = VTLP_BOUNDARY):
    """VTLP's piecewise-linear frequency warp (Jaitly & Hinton, 2013), elementwise.

    ``f -> alpha f`` up to ``f0 = boundary * nyquist * min(alpha, 1) / alpha``; above it, the
    line through ``(f0, alpha f0)`` and ``(nyquist, nyquist)``. Works on NumPy or JAX arrays.

    Args:
      freqs: frequencies in Hz, ``0 <= f <= nyquist``.
      alpha: warp factors (> 0), broadcasting against ``freqs``.
      nyquist: ``sample_rate / 2`` in Hz.
      boundary: fraction of Nyquist where the warp turns.
    """
    xp = jnp if isinstance(freqs, jax.Array) or isinstance(alpha, jax.Array) else np
    knee = boundary * nyquist * xp.minimum(alpha, 1.0)
    turn = knee / alpha
    upper = nyquist - (nyquist - knee) / (nyquist - turn) * (nyquist - freqs)
    return xp.where(freqs <= turn, alpha * freqs, upper)


@functools.lru_cache(maxsize=32)
def _fine_filterbank(config: dsp.FeatureConfig) -> np.ndarray:
    return config.filterbank(n_fft=config.n_fft * _VTLP_OVERSAMPLE)


def vtlp_filterbank(config: dsp.FeatureConfig, alpha: jax.Array) -> jax.Array:
    """Per-example mel filterbanks with VTLP-warped frequency axes.

    Filter m's weight on FFT bin k is the unwarped triangle m evaluated at
    ``vtlp_warp(f_k, alpha)``: a tone at f lands in the bands of ``alpha * f`` (below the
    knee), so alpha > 1 sounds like a shorter vocal tract. The triangles are taken from
    ``dsp.mel_filterbank`` sampled 8 times finer than the bins and interpolated linearly.

    Args:
      config: the front end whose filterbank is warped.
      alpha: float ``[B]`` warp factors (1 gives ``dsp.mel_filterbank`` within float error).

    Returns:
      float32 ``[B, n_freq, n_mels]``, for ``dsp.features_from_power(mel_basis=...)``.
    """
    fine = jnp.asarray(_fine_filterbank(config), jnp.float32)
    nyquist = config.sample_rate / 2
    freqs = jnp.asarray(np.fft.rfftfreq(config.n_fft, d=1.0 / config.sample_rate), jnp.float32)
    warped = vtlp_warp(freqs[None, :], alpha.astype(jnp.float32)[:, None], nyquist=nyquist)
    position = jnp.clip(warped / (nyquist / (fine.shape[0] - 1)), 0, fine.shape[0] - 1)
    low = jnp.floor(position)
    frac = (position - low)[..., None]
    low = low.astype(jnp.int32)
    high = jnp.minimum(low + 1, fine.shape[0] - 1)
    return (1 - frac) * fine[low] + frac * fine[high]


# ---------------------------------------------------------------------------------------------
# SpecAugment masks, on features [B, F, D] with valid frames [B]


def _span_mask(positions: jax.Array, starts: jax.Array, widths: jax.Array) -> jax.Array:
    """bool ``[B, P]``: positions ``[P]`` inside any span ``[start, start + width)``, ``[B, M]``."""
    p = positions[None, None, :]
    inside = (p >= starts[..., None]) & (p < (starts + widths)[..., None])
    return jnp.any(inside, axis=1)


def _time_mask(n_frames: jax.Array, num: int, starts: jax.Array, widths: jax.Array) -> jax.Array:
    """bool ``[B, F, 1]``: frames inside a span and inside the valid frames."""
    masked = _span_mask(jnp.arange(num), starts, widths) & dsp.frame_mask(n_frames, num)
    return masked[..., None]


def _feature_mask(
    n_frames: jax.Array, shape: tuple[int, ...], starts: jax.Array, widths: jax.Array, block: int
) -> jax.Array:
    """bool ``[B, F, D]``: bins whose index within a block is inside a span, on valid frames."""
    bins = jnp.arange(shape[-1]) % block
    masked = _span_mask(bins, starts, widths)[:, None, :]  # [B, 1, D]
    return masked & dsp.frame_mask(n_frames, shape[-2])[..., None]


def mask_time(
    feats: jax.Array, n_frames: jax.Array, starts: jax.Array, widths: jax.Array
) -> jax.Array:
    """Replaces frames ``[start, start + width)`` of each example by its mean valid frame.

    The fill is the per-feature mean over the valid frames, i.e. 0 after CMVN, as SpecAugment
    fills normalised features. Padded frames stay as they are.

    Args:
      feats: float ``[B, F, D]``; n_frames: int ``[B]``.
      starts, widths: int ``[B, M]``, M masks per example.
    """
    fill, _ = dsp.masked_mean_var(feats, n_frames)
    return jnp.where(_time_mask(n_frames, feats.shape[-2], starts, widths), fill, feats)


def mask_features(
    feats: jax.Array, n_frames: jax.Array, starts: jax.Array, widths: jax.Array, *, block: int
) -> jax.Array:
    """Replaces feature bins ``[start, start + width)`` of every ``block`` by the mean valid frame.

    Static, Δ and ΔΔ features of one band sit ``block`` apart (``D = block * (deltas + 1)``),
    so a band is masked in all of them. Only valid frames are touched.

    Args:
      feats: float ``[B, F, D]``; n_frames: int ``[B]``.
      starts, widths: int ``[B, M]``, bins within a block (``0 <= start``,
        ``start + width <= block``).
      block: features per block (``n_mels`` or ``n_mfcc``).
    """
    fill, _ = dsp.masked_mean_var(feats, n_frames)
    masked = _feature_mask(n_frames, feats.shape, starts, widths, block)
    return jnp.where(masked, fill, feats)


def random_spans(
    key: jax.Array, limit: jax.Array, count: int, max_width: int
) -> tuple[jax.Array, jax.Array]:
    """SpecAugment's draw: ``count`` spans per example, width uniform in ``0..max_width`` (cut
    to ``limit``), start uniform in ``0..limit - width``. Returns int32 ``[B, count]`` each."""
    width_key, start_key = jax.random.split(key)
    shape = (limit.shape[0], count)
    widths = jax.random.randint(width_key, shape, 0, max_width + 1)
    widths = jnp.minimum(widths, limit[:, None])
    room = (limit[:, None] - widths + 1).astype(jnp.float32)
    starts = jnp.floor(jax.random.uniform(start_key, shape) * room).astype(jnp.int32)
    starts = jnp.minimum(starts, limit[:, None] - widths)
    return starts.astype(jnp.int32), widths.astype(jnp.int32)


# ---------------------------------------------------------------------------------------------
# The augmented model input


def _keys(key: jax.Array) -> dict[str, jax.Array]:
    # One fixed stream per transform: turning one on or off leaves the others' draws unchanged.
    names = ("gain", "noise", "speed", "pitch", "stretch", "vtlp", "time_masks", "freq_masks")
    return {name: jax.random.fold_in(key, i) for i, name in enumerate(names)}


def _draw(key: jax.Array, prob: float, bounds: tuple[float, float], batch: int):
    """Which examples a transform picks (bool ``[B]``) and each one's parameter (``[B]``)."""
    pick_key, value_key = jax.random.split(key)
    picked = jax.random.bernoulli(pick_key, prob, (batch,))
    value = jax.random.uniform(value_key, (batch,), jnp.float32, bounds[0], bounds[1])
    return picked, value


def augment_waveforms(
    key: jax.Array, waveforms: jax.Array, lengths: jax.Array, aug: AugmentConfig
) -> tuple[jax.Array, jax.Array]:
    """The waveform stage: gain, then noise, then speed, each on the examples it picks.

    Args:
      key: PRNG key; waveforms: float ``[B, T]``; lengths: int ``[B]``; aug: static config.

    Returns:
      ``(waveforms [B, T], lengths [B])``; lengths change only under speed perturbation.
    """
    keys = _keys(key)
    batch = waveforms.shape[0]
    x = waveforms
    lengths = lengths.astype(jnp.int32)
    if aug.gain_prob > 0:
        picked, gain = _draw(keys["gain"], aug.gain_prob, aug.gain_db, batch)
        x = jnp.where(picked[:, None], apply_gain(x, gain), x)
    if aug.noise_prob > 0:
        picked, snr = _draw(keys["noise"], aug.noise_prob, aug.snr_db, batch)
        pink = None
        if "pink" in aug.noise_colors:
            color_key = jax.random.fold_in(keys["noise"], 1)
            color = jax.random.randint(color_key, (batch,), 0, len(aug.noise_colors))
            pink = jnp.asarray([c == "pink" for c in aug.noise_colors])[color]
        noise_key = jax.random.fold_in(keys["noise"], 2)
        x = jnp.where(picked[:, None], add_noise(noise_key, x, lengths, snr, pink), x)
    if aug.speed_prob > 0:
        picked, factor = _draw(keys["speed"], aug.speed_prob, aug.speed, batch)
        fast, fast_lengths = change_speed(x, lengths, factor)
        x = jnp.where(picked[:, None], fast, x)
        lengths = jnp.where(picked, fast_lengths, lengths)
    return x, lengths


def augment_power(
    key: jax.Array,
    power: jax.Array,
    n_frames: jax.Array,
    config: dsp.FeatureConfig,
    aug: AugmentConfig,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """The power-spectrogram stage: pitch shift, time stretch and VTLP's filterbank.

    Args:
      key: PRNG key; power: float ``[B, F, n_freq]``; n_frames: int ``[B]``; config: the
        front end (static); aug: static config.

    Returns:
      ``(power [B, F, n_freq], n_frames [B], mel_basis)``: ``mel_basis`` is None without VTLP,
      else float32 ``[B, n_freq, n_mels]`` (the plain filterbank for examples not picked).
    """
    keys = _keys(key)
    batch = power.shape[0]
    if aug.pitch_prob > 0:
        picked, semitones = _draw(keys["pitch"], aug.pitch_prob, aug.semitones, batch)
        power = jnp.where(picked[:, None, None], shift_pitch(power, semitones), power)
    if aug.stretch_prob > 0:
        picked, rate = _draw(keys["stretch"], aug.stretch_prob, aug.stretch, batch)
        stretched, stretched_frames = stretch_time(power, n_frames, rate)
        power = jnp.where(picked[:, None, None], stretched, power)
        n_frames = jnp.where(picked, stretched_frames, n_frames)
    basis = None
    if aug.vtlp_prob > 0:
        picked, alpha = _draw(keys["vtlp"], aug.vtlp_prob, aug.vtlp_alpha, batch)
        plain = jnp.asarray(config.filterbank(), jnp.float32)
        basis = jnp.where(picked[:, None, None], vtlp_filterbank(config, alpha), plain)
    return power, n_frames, basis


def augment_features(
    key: jax.Array,
    feats: jax.Array,
    n_frames: jax.Array,
    config: dsp.FeatureConfig,
    aug: AugmentConfig,
) -> jax.Array:
    """The feature stage: SpecAugment time masks, then frequency masks.

    Args:
      key: PRNG key; feats: float ``[B, F, D]`` from the front end ``config``; n_frames: int
        ``[B]``; aug: static config.

    Returns:
      ``[B, F, D]``, changed only on valid frames.
    """
    keys = _keys(key)
    batch, num, _ = feats.shape
    masked = jnp.zeros((batch, 1, 1), bool)
    if aug.time_masks > 0 and aug.time_mask_frames > 0:
        starts, widths = random_spans(
            keys["time_masks"], n_frames, aug.time_masks, aug.time_mask_frames
        )
        masked = masked | _time_mask(n_frames, num, starts, widths)
    if aug.freq_masks > 0 and aug.freq_mask_bins > 0:
        block = config.num_features // (config.deltas + 1)
        starts, widths = random_spans(
            keys["freq_masks"], jnp.full((batch,), block), aug.freq_masks, aug.freq_mask_bins
        )
        masked = masked | _feature_mask(n_frames, feats.shape, starts, widths, block)
    if masked.shape == (batch, 1, 1):
        return feats
    # Both kinds of mask take the mean valid frame computed before either is applied.
    fill, _ = dsp.masked_mean_var(feats, n_frames)
    return jnp.where(masked, fill, feats)


def augmented_inputs(
    key: jax.Array,
    waveforms: jax.Array,
    lengths: jax.Array,
    spec: FeatureSpec,
    aug: AugmentConfig | None,
) -> tuple[jax.Array, jax.Array]:
    """``serjax.features.model_inputs`` with the configured augmentation, for training.

    Args:
      key: PRNG key of this step (e.g. ``fold_in(seed_key, step)``); each example draws its
        own parameters from it.
      waveforms: float ``[B, T]``, zero-padded; lengths: int ``[B]`` valid samples.
      spec: the feature spec (static).
      aug: the augmentation (static); None or all off returns exactly ``model_inputs``.

    Returns:
      ``(x [B, S, D], steps [B])``, the shapes of ``model_inputs``.

    Raises:
      ValueError: for spectral transforms with a raw-waveform front end.
    """
    if aug is None or not aug.transforms_inputs:
        return model_inputs(waveforms, lengths, spec)
    if spec.frontend is None and aug.spectral_transforms:
        raise ValueError(
            "augment: pitch, stretch, vtlp and SpecAugment masks need spectral features; "
            "features.kind='waveform' allows only gain, noise and speed"
        )
    x, lengths = augment_waveforms(key, waveforms, lengths, aug)
    if spec.frontend is None:
        return model_inputs(x, lengths, spec)
    config = spec.frontend
    if aug.pitch_prob > 0 or aug.stretch_prob > 0 or aug.vtlp_prob > 0:
        power, n_frames = dsp.power_stage(x, lengths, config)
        power, n_frames, basis = augment_power(key, power, n_frames, config, aug)
        feats = dsp.features_from_power(power, n_frames, config, mel_basis=basis)
    else:
        feats, n_frames = dsp.features(x, lengths, config)
    feats = augment_features(key, feats, n_frames, config, aug)
    return summarize(feats, n_frames, spec)


# ---------------------------------------------------------------------------------------------
# Mixup


class MixupPairing(NamedTuple):
    """How :func:`mixup` mixed a batch: example i became ``weight[i] * x[i] + (1 - weight[i]) *
    x[partner[i]]``; the loss mixes the labels the same way (see :func:`mixup_targets`)."""

    partner: jax.Array  # int32 [B]
    weight: jax.Array  # float32 [B], in [0, 1]; 1 on padding rows


def mixup(
    key: jax.Array, x: jax.Array, steps: jax.Array, mask: jax.Array, alpha: float
) -> tuple[jax.Array, jax.Array, MixupPairing]:
    """Mixup of model inputs (Zhang et al., 2018), pairing only real rows of the batch.

    Each real example (``mask`` True) draws its own weight from Beta(alpha, alpha) and is mixed
    with a partner from a random permutation of the real examples; padding rows are left as
    they are. The mixed sequence is as long as the longer of the two.

    Args:
      key: PRNG key.
      x: float ``[B, S, D]`` model inputs, zero past ``steps``.
      steps: int ``[B]`` valid steps; mask: bool ``[B]``, False on padding rows.
      alpha: Beta parameter (> 0).

    Returns:
      ``(x [B, S, D], steps [B], pairing)``.
    """
    batch = x.shape[0]
    weight_key, order_key = jax.random.split(key)
    weight = jax.random.beta(weight_key, alpha, alpha, (batch,), jnp.float32)
    weight = jnp.where(mask, weight, 1.0)
    index = jnp.arange(batch)
    # Real rows in order, then padding rows; and real rows shuffled, then padding rows: mapping
    # one onto the other permutes the real rows among themselves and fixes the padding rows.
    real_rows = jnp.argsort(jnp.where(mask, index, batch + index))
    shuffled = jnp.argsort(jnp.where(mask, jax.random.uniform(order_key, (batch,)), 2.0 + index))
    partner = jnp.zeros(batch, jnp.int32).at[real_rows].set(shuffled.astype(jnp.int32))
    w = weight.reshape((batch,) + (1,) * (x.ndim - 1)).astype(x.dtype)
    mixed = w * x + (1 - w) * x[partner]
    steps = jnp.where(mask, jnp.maximum(steps, steps[partner]), steps)
    return mixed, steps, MixupPairing(partner, weight)


def mixup_targets(labels: jax.Array, num_classes: int, pairing: MixupPairing) -> jax.Array:
    """Soft targets ``[B, K]``: ``weight * onehot(labels) + (1 - weight) * onehot(partner's)``."""
    own = jax.nn.one_hot(labels, num_classes)
    other = jax.nn.one_hot(labels[pairing.partner], num_classes)
    w = pairing.weight[:, None]
    return w * own + (1 - w) * other


def training_inputs(
    key: jax.Array,
    waveforms: jax.Array,
    lengths: jax.Array,
    mask: jax.Array,
    spec: FeatureSpec,
    aug: AugmentConfig | None,
) -> tuple[jax.Array, jax.Array, MixupPairing | None]:
    """The train step's model input: :func:`augmented_inputs`, then :func:`mixup` if enabled.

    Args:
      key: PRNG key of this step; split here between the input transforms and mixup.
      waveforms: float ``[B, T]``; lengths: int ``[B]``; mask: bool ``[B]``, False on rows
        that only pad the batch (never mixed into real rows).
      spec, aug: static.

    Returns:
      ``(x [B, S, D], steps [B], pairing)``; ``pairing`` is None without mixup, else the loss
      should use ``mixup_targets(labels, num_classes, pairing)``.
    """
    inputs_key, mixup_key = jax.random.split(key)
    x, steps = augmented_inputs(inputs_key, waveforms, lengths, spec, aug)
    if aug is None or aug.mixup_alpha <= 0:
        return x, steps, None
    return mixup(mixup_key, x, steps, mask, aug.mixup_alpha)


# ---------------------------------------------------------------------------------------------
# S2's offline copies, on the host (NumPy and soxr; librosa's algorithms, not librosa)


def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def _stft(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``librosa.stft(y, n_fft, hop)`` (centred, zero-padded) as ``[frames, n_fft // 2 + 1]``."""
    padded = np.pad(y, n_fft // 2)
    count = 1 + (len(padded) - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:count]
    return np.fft.rfft(frames * _periodic_hann(n_fft), axis=-1)


def _istft(spectrum: np.ndarray, hop: int, length: int) -> np.ndarray:
    """``librosa.istft(..., length=length)``: windowed overlap-add over the squared-window sum."""
    n_fft = 2 * (spectrum.shape[-1] - 1)
    window = _periodic_hann(n_fft)
    count = min(spectrum.shape[0], math.ceil((length + 2 * (n_fft // 2)) / hop))
    frames = np.fft.irfft(spectrum[:count], n=n_fft, axis=-1) * window
    total = n_fft + hop * (count - 1)
    y = np.zeros(total)
    norm = np.zeros(total)
    for t in range(count):
        y[t * hop : t * hop + n_fft] += frames[t]
        norm[t * hop : t * hop + n_fft] += window**2
    start = n_fft // 2
    y = np.pad(y[start : start + length], (0, max(0, length - (total - start))))
    norm = np.pad(norm[start : start + length], (0, max(0, length - (total - start))))
    nonzero = norm > np.finfo(norm.dtype).tiny
    y[nonzero] /= norm[nonzero]
    return y


def _phase_vocoder(spectrum: np.ndarray, rate: float, hop: int) -> np.ndarray:
    """``librosa.phase_vocoder`` on ``[frames, freq]``: magnitudes interpolated between frames,
    phases advanced by each bin's measured instantaneous frequency."""
    n_frames, n_freq = spectrum.shape
    steps = np.arange(0, n_frames, rate, dtype=np.float64)
    padded = np.pad(spectrum, ((0, 2), (0, 0)))
    low = steps.astype(np.int64)
    frac = np.mod(steps, 1.0)[:, None]
    left, right = padded[low], padded[low + 1]
    magnitude = (1.0 - frac) * np.abs(left) + frac * np.abs(right)
    advance = hop * np.fft.rfftfreq(2 * (n_freq - 1), d=1.0 / (2 * np.pi))
    dphase = np.angle(right) - np.angle(left) - advance
    dphase -= 2.0 * np.pi * np.round(dphase / (2.0 * np.pi))
    # Accumulated in librosa's order: start at frame 0's phase, add one frame's advance per step.
    increments = np.concatenate([np.angle(spectrum[:1]), (advance + dphase)[:-1]], axis=0)
    phase = np.cumsum(increments, axis=0)
    return magnitude * np.exp(1j * phase)


def stretch_waveform(y: np.ndarray, rate: float) -> np.ndarray:
    """Time stretch by a phase vocoder, ``librosa.effects.time_stretch(y, rate=rate)``.

    Args:
      y: float ``[L]`` waveform; rate: > 1 faster.

    Returns:
      ``[round(L / rate)]`` in ``y``'s dtype, pitch unchanged.
    """
    if rate <= 0:
        raise ValueError(f"stretch rate must be positive, got {rate}")
    y = np.asarray(y)
    spectrum = _stft(y.astype(np.float64), OFFLINE_N_FFT, OFFLINE_HOP)
    stretched = _phase_vocoder(spectrum, rate, OFFLINE_HOP)
    return _istft(stretched, OFFLINE_HOP, int(round(len(y) / rate))).astype(y.dtype)


def shift_waveform(y: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Pitch shift without tempo change, ``librosa.effects.pitch_shift(y, sr=..., n_steps=...)``:
    a phase-vocoder stretch by ``2 ** (-semitones / 12)`` resampled back to the original length
    with soxr (high quality).

    Args:
      y: float ``[L]`` waveform; sample_rate: Hz; semitones: the shift.

    Returns:
      ``[L]`` in ``y``'s dtype.
    """
    y = np.asarray(y)
    rate = 2.0 ** (-float(semitones) / 12.0)
    stretched = stretch_waveform(y.astype(np.float64), rate)
    shifted = soxr.resample(stretched, float(sample_rate) / rate, sample_rate, quality="soxr_hq")
    size = int(np.ceil(len(stretched) * rate))
    shifted = _fix_length(_fix_length(shifted, size), len(y))
    return shifted.astype(y.dtype)


def _fix_length(y: np.ndarray, size: int) -> np.ndarray:
    return y[:size] if len(y) >= size else np.pad(y, (0, size - len(y)))


def noisy_waveform(y: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``y`` plus white Gaussian noise at exactly ``snr_db`` dB over the whole file."""
    y = np.asarray(y)
    noise = rng.standard_normal(len(y))
    signal_power = float(np.sum(np.square(y, dtype=np.float64)))
    noise_power = float(np.sum(np.square(noise)))
    if signal_power == 0 or noise_power == 0:
        return y.copy()
    noise *= math.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (y + noise).astype(y.dtype)


def offline_copies(
    y: np.ndarray, *, sample_rate: int, aug: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S2's three extra copies of one file: noisy, pitch-shifted and time-stretched.

    The SNR, the shift in semitones and the stretch rate are drawn uniformly from
    ``aug.snr_db``, ``aug.semitones`` and ``aug.stretch`` (equal bounds fix them).

    Returns:
      ``(noisy [L], shifted [L], stretched [round(L / rate)])`` in ``y``'s dtype.
    """
    snr = rng.uniform(*aug.snr_db)
    semitones = rng.uniform(*aug.semitones)
    rate = rng.uniform(*aug.stretch)
    noisy = noisy_waveform(y, snr, rng)
    return noisy, shift_waveform(y, sample_rate, semitones), stretch_waveform(y, rate)


def expand_offline(
    waveforms: Sequence[np.ndarray], *, sample_rate: int, aug: AugmentConfig, seed: int
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """S2's ×4 training data: the files, then each file's three copies.

    File i's copies use the generator ``np.random.default_rng([seed, i])``, so they do not
    depend on the other files or their order.

    Args:
      waveforms: the training part's waveforms (never validation or test).
      sample_rate: Hz; aug: the copies' parameter ranges; seed: the run's seed.

    Returns:
      ``(waveforms, source)``: ``4 N`` waveforms (the N originals first, then the noisy,
      shifted and stretched copies of file 0, of file 1, ...) and int ``[4 N]`` the index of
      each one's original, to repeat labels and utterance records with.
    """
    out = list(waveforms)
    source = list(range(len(waveforms)))
    for i, y in enumerate(waveforms):
        rng = np.random.default_rng([seed, i])
        out.extend(offline_copies(y, sample_rate=sample_rate, aug=aug, rng=rng))
        source.extend([i] * 3)
    return tuple(out), np.asarray(source, np.int64)
