"""The one preprocessing of audio, shared by training, evaluation and inference.

:class:`Preprocessing` is built from a run's ``config.data`` (and the STFT window of
``config.features``) and applied to every file training reads and every file or array inference
is given, so that "inference preprocesses exactly like training" holds by construction:

    file or array ── decode / down-mix / reject empty, non-finite, silent ── [remove DC] ──
      resample (soxr) ── [trim leading and trailing non-speech] ── [remove DC] ──
      [peak-normalise] ── [cut or zero-pad to a fixed duration] ── [cut at a maximum duration]
      ──► float32 [T] at the run's sample rate

Steps in brackets are off unless the config turns them on. Silence is judged without the DC
offset whether or not it is removed, so a file holding only a constant is rejected as silent.
The DC offset (the mean) is removed before resampling, so that the resampler does not ring on
the offset's step at both ends, and again after trimming (in :meth:`Preprocessing.finish`), so
that what the features see has no offset however much was trimmed, and a segment cut from a
stream gets it too. Trimming uses :func:`serjax.data.silence.speech_bounds`: ITU-T P.56's
activity threshold (15.9 dB below the active speech level, never lower than librosa's 60 dB
below the loudest frame), so that it removes low-level noise as well as digital silence,
keeping 10 ms on each side.

A :class:`Preprocessing` built directly does only the steps it is given; the base config
(``serjax.config_lib.base_config``) turns trimming and DC removal on for new runs.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import ml_collections
import numpy as np

from serjax.data.audio import (
    AudioCache,
    AudioError,
    as_mono_float32,
    check_usable,
    decode,
    to_rate,
    without_dc,
)
from serjax.data.silence import TRIM_TOP_DB, speech_bounds

__all__ = ["RESAMPLER_QUALITY", "Preprocessing", "load_audio"]

# soxr's best quality: it costs little next to decoding.
RESAMPLER_QUALITY = "VHQ"


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """Everything between an audio file (or array) and the waveform the features see.

    Attributes:
      sample_rate: output rate, Hz; inputs at other rates are resampled with soxr.
      trim_silence: cut leading and trailing non-speech (``silence.speech_bounds``: digital
        silence and low-level noise), keeping 10 ms on each side.
      trim_top_db: trimming never keeps frames more than this many dB below the loudest.
      remove_dc: subtract the mean (the DC offset), before resampling and after trimming.
      peak_normalize: scale so that the largest absolute sample is 1.
      fixed_seconds: > 0: cut (keeping the start) or zero-pad (at the end) to this duration.
      max_seconds: > 0: cut longer signals to this duration (bounds a batch's padded length).
      min_samples: fewer samples than this (before and after trimming) is an error: one STFT
        window, since a shorter signal has no full analysis frame.
      quality: soxr quality (``QQ``, ``LQ``, ``MQ``, ``HQ`` or ``VHQ``).
    """

    sample_rate: int = 16000
    trim_silence: bool = False
    trim_top_db: float = TRIM_TOP_DB
    remove_dc: bool = False
    peak_normalize: bool = False
    fixed_seconds: float = 0.0
    max_seconds: float = 0.0
    min_samples: int = 1
    quality: str = RESAMPLER_QUALITY

    def __post_init__(self):
        if not isinstance(self.sample_rate, int | np.integer) or self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive integer, got {self.sample_rate!r}")
        if self.fixed_seconds < 0 or self.max_seconds < 0:
            raise ValueError(
                f"fixed_seconds and max_seconds must be >= 0 (0: off), got "
                f"{self.fixed_seconds} and {self.max_seconds}"
            )

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> Preprocessing:
        """The preprocessing of a run: ``config.data`` and ``config.features.win_length``."""
        cfg = config.data
        return cls(
            sample_rate=int(cfg.sample_rate),
            trim_silence=bool(cfg.trim_silence),
            remove_dc=bool(cfg.remove_dc),
            peak_normalize=bool(cfg.peak_normalize),
            fixed_seconds=float(cfg.fixed_seconds or 0.0),
            max_seconds=float(cfg.max_seconds or 0.0),
            min_samples=int(config.features.win_length),
        )

    @property
    def fixed_samples(self) -> int:
        """The fixed length in samples; 0 when lengths vary."""
        return round(self.fixed_seconds * self.sample_rate) if self.fixed_seconds else 0

    @property
    def max_samples(self) -> int:
        """The maximum length in samples; 0 when there is none."""
        return int(self.max_seconds * self.sample_rate) if self.max_seconds else 0

    def too_short(self, n: int) -> str:
        """The reason given for a signal of ``n`` samples below ``min_samples``."""
        return (
            f"too short ({n} samples at {self.sample_rate} Hz; one analysis window is "
            f"{self.min_samples})"
        )

    def finish(self, x: np.ndarray, name: str | os.PathLike[str]) -> np.ndarray:
        """The steps after decoding, on float32 mono ``[T]`` at ``sample_rate``.

        Raises:
          AudioError: shorter than ``min_samples``, before or after trimming silence.
        """
        if x.shape[0] < self.min_samples:
            raise AudioError(name, self.too_short(x.shape[0]))
        if self.trim_silence:
            start, end = speech_bounds(x, self.sample_rate, top_db=self.trim_top_db)
            x = x[start:end]
            if x.shape[0] < self.min_samples:
                raise AudioError(name, self.too_short(x.shape[0]) + " after trimming silence")
        if self.remove_dc:
            x = without_dc(x)
        if self.peak_normalize:
            peak = np.abs(x).max(initial=0.0)
            if peak > 0:
                x = (x / peak).astype(np.float32)
        if n := self.fixed_samples:
            x = x[:n] if x.shape[0] >= n else np.pad(x, (0, n - x.shape[0]))
        if limit := self.max_samples:
            x = x[:limit]
        return x

    def load(self, path: str | os.PathLike[str], cache: AudioCache | None = None) -> np.ndarray:
        """One file, decoded (through ``cache`` when given) and preprocessed.

        Raises:
          AudioError: missing, empty, undecodable, non-finite, silent or too short.
        """
        if cache is not None:
            x = cache.decoded(path, self.sample_rate, remove_dc=self.remove_dc)
        else:
            x = decode(path, self.sample_rate, quality=self.quality, remove_dc=self.remove_dc)
        return self.finish(x, path)

    def from_array(
        self, waveform: np.ndarray, sample_rate: int, name: str = "waveform"
    ) -> np.ndarray:
        """An array of samples, preprocessed exactly as a file with its content would be.

        Args:
          waveform: ``[T]`` mono or ``[T, C]`` multi-channel samples (soundfile's layout),
            float in [-1, 1] or integer PCM.
          sample_rate: its rate, Hz.
          name: how errors refer to it.

        Raises:
          AudioError: empty, non-finite, silent or too short.
          ValueError: not 1-D or ``[T, C]``.
        """
        x = check_usable(as_mono_float32(waveform, name), name)
        if self.remove_dc:
            x = without_dc(x)
        return self.finish(to_rate(x, sample_rate, self.sample_rate, quality=self.quality), name)


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int,
    *,
    peak_normalize: bool = False,
    trim_silence: bool = False,
    trim_top_db: float = TRIM_TOP_DB,
    remove_dc: bool = False,
    fixed_seconds: float | None = None,
) -> np.ndarray:
    """One file as float32 ``[T]`` mono at ``sample_rate``: ``Preprocessing(...).load(path)``.

    Raises:
      AudioError: the file cannot be used (the exception names it and says why).
      ValueError: a negative ``fixed_seconds``.
    """
    if fixed_seconds is not None and fixed_seconds <= 0:
        raise ValueError(f"fixed_seconds must be positive, got {fixed_seconds}")
    return Preprocessing(
        sample_rate=sample_rate,
        peak_normalize=peak_normalize,
        trim_silence=trim_silence,
        trim_top_db=trim_top_db,
        remove_dc=remove_dc,
        fixed_seconds=fixed_seconds or 0.0,
    ).load(Path(path))
