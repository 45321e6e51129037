"""S2's offline augmentation on the host: three extra copies of each training file (noisy,
pitch-shifted and time-stretched), in NumPy and soxr, with librosa's phase-vocoder algorithms
(``librosa.effects.time_stretch`` and ``pitch_shift``) but not librosa itself."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import soxr

import dsp
from serjax.augment.config import AugmentConfig

# Offline copies use librosa.effects' STFT: 2048-point periodic Hann, hop 512, centred.
OFFLINE_N_FFT = 2048
OFFLINE_HOP = 512


# The window is dsp's (periodic Hann, as librosa's); the transforms are NumPy. dsp.stft computes
# the same centred STFT, but in JAX: in float32 unless x64 is enabled, which misses librosa's
# float64 phase-vocoder output by far more than the 1e-9 the copies match it to, and compiled
# anew for every file length, which the host pays once per training file. dsp has no inverse.


def _stft(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``librosa.stft(y, n_fft, hop)`` (centred, zero-padded) as ``[frames, n_fft // 2 + 1]``."""
    padded = np.pad(y, n_fft // 2)
    count = 1 + (len(padded) - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:count]
    return np.fft.rfft(frames * dsp.get_window("hann", n_fft), axis=-1)


def _istft(spectrum: np.ndarray, hop: int, length: int) -> np.ndarray:
    """``librosa.istft(..., length=length)``: windowed overlap-add over the squared-window sum."""
    n_fft = 2 * (spectrum.shape[-1] - 1)
    window = dsp.get_window("hann", n_fft)
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
