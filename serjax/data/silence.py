"""Non-speech at the edges of a recording and a constant offset: what preprocessing removes.

Two rules find where speech starts and ends:

- :func:`trim_bounds` is ``librosa.effects.trim``'s rule: a frame is speech when its power is
  within ``top_db`` of the loudest frame's. It keeps any noise floor less than ``top_db`` below
  the speech (at 60 dB, nearly every real recording's), so it only removes digital silence.
- :func:`speech_bounds`, the one :class:`serjax.data.Preprocessing` applies, adds an estimate
  of the noise floor, after the minimum-statistics idea (R. Martin, "Noise power spectral
  density estimation based on optimal smoothing and minimum statistics", IEEE Trans. Speech and
  Audio Processing 9(5), 2001: the noise level is read from the quietest stretches of the
  signal). A frame is speech when it is within ``top_db`` of the loudest frame *and* more than
  ``noise_margin_db`` above the floor; frames within ``speech_range_db`` of the loudest are
  speech whatever the floor, so a recording without any pause (whose quietest frames are
  speech) is not cut into. Digital silence does not count towards the floor, so padding a
  recording with zeros does not move its bounds, and padding it with a steady noise below the
  speech moves them little.

:func:`dc_offset` is the mean of a signal; removing it keeps a constant offset (a cheap
interface's bias) from being read as sound.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NOISE_MARGIN_DB",
    "NOISE_PERCENTILE",
    "SPEECH_RANGE_DB",
    "TRIM_FRAME_LENGTH",
    "TRIM_HOP_LENGTH",
    "TRIM_PAD_SECONDS",
    "TRIM_TOP_DB",
    "dc_offset",
    "frame_levels",
    "speech_bounds",
    "speech_threshold",
    "trim_bounds",
]

# librosa.effects.trim's defaults (frames in samples, threshold in dB below the loudest frame),
# which the reference systems' silence trimming used.
TRIM_FRAME_LENGTH = 2048
TRIM_HOP_LENGTH = 512
TRIM_TOP_DB = 60.0
# The noise floor is this percentile of the levels of the frames that are not digital silence.
NOISE_PERCENTILE = 10.0
# Speech is this far above the noise floor: steady noise varies by about 1 dB from frame to
# frame at these frame lengths, so 10 dB leaves room for hum and hiss that are not steady.
NOISE_MARGIN_DB = 10.0
# Frames within this range of the loudest are speech whatever the floor: speech's own level
# varies by some 30 dB between vowels and weak consonants (Emo-DB: its frames' 10th percentile
# lies a median 23 dB below the loudest frame).
SPEECH_RANGE_DB = 35.0
# Kept on each side of the speech found: onsets and releases quieter than the threshold.
TRIM_PAD_SECONDS = 0.05
# Frames whose power is below -80 dBFS are digital silence (or dither) and carry no noise floor.
_SILENT_FRAME_DB = -80.0
_AMIN = 1e-10  # librosa's power floor, -100 dB


def dc_offset(x: np.ndarray) -> float:
    """The mean of samples ``[T]`` (accumulated in float64), 0.0 for an empty signal."""
    return float(np.mean(x, dtype=np.float64)) if x.shape[0] else 0.0


def frame_levels(
    x: np.ndarray, frame_length: int = TRIM_FRAME_LENGTH, hop_length: int = TRIM_HOP_LENGTH
) -> np.ndarray:
    """Mean power of centred frames in dB (re full scale, floored at -100 dB), float64 ``[F]``.

    As ``librosa.feature.rms(..., center=True, pad_mode="constant")`` squared: frame ``i`` is
    centred on sample ``i * hop_length`` and the signal is zero-padded by ``frame_length // 2``.
    """
    x = np.asarray(x, dtype=np.float64)
    pad = frame_length // 2
    energy = np.concatenate([[0.0], np.cumsum(np.pad(x, pad) ** 2)])
    starts = np.arange(0, x.shape[0] + 1, hop_length)
    power = (energy[starts + frame_length] - energy[starts]) / frame_length
    return 10.0 * np.log10(np.maximum(power, _AMIN))


def _bounds(speech: np.ndarray, n: int, hop_length: int) -> tuple[int, int]:
    """Sample bounds from the first speech frame's start to the last one's end (librosa's)."""
    found = np.flatnonzero(speech)
    if found.size == 0:
        return 0, 0
    return int(found[0] * hop_length), min(n, int((found[-1] + 1) * hop_length))


def trim_bounds(
    x: np.ndarray,
    *,
    top_db: float = TRIM_TOP_DB,
    frame_length: int = TRIM_FRAME_LENGTH,
    hop_length: int = TRIM_HOP_LENGTH,
) -> tuple[int, int]:
    """``(start, end)`` sample bounds of ``x`` without leading and trailing silence.

    Same rule as ``librosa.effects.trim``: centred frames (zero-padded by ``frame_length // 2``)
    whose mean power is within ``top_db`` of the loudest frame are speech; the bounds run from
    the first speech frame's start to the last one's end (clipped to the signal).
    """
    db = frame_levels(x, frame_length, hop_length)
    return _bounds(db - db.max() > -top_db, x.shape[0], hop_length)


def speech_threshold(
    levels_db: np.ndarray,
    *,
    top_db: float = TRIM_TOP_DB,
    noise_margin_db: float = NOISE_MARGIN_DB,
    speech_range_db: float = SPEECH_RANGE_DB,
) -> float:
    """The frame level (dB) above which a frame is speech, from the levels of all frames.

    ``max(loudest - top_db, min(floor + noise_margin_db, loudest - speech_range_db))``, where
    the floor is the :data:`NOISE_PERCENTILE` th percentile of the frames above -80 dBFS (no
    floor when there are none).
    """
    loudest = float(levels_db.max())
    audible = levels_db[levels_db > _SILENT_FRAME_DB]
    threshold = loudest - top_db
    if audible.size:
        floor = float(np.percentile(audible, NOISE_PERCENTILE))
        threshold = max(threshold, min(floor + noise_margin_db, loudest - speech_range_db))
    return threshold


def speech_bounds(
    x: np.ndarray,
    sample_rate: int,
    *,
    top_db: float = TRIM_TOP_DB,
    noise_margin_db: float = NOISE_MARGIN_DB,
    speech_range_db: float = SPEECH_RANGE_DB,
    pad_seconds: float = TRIM_PAD_SECONDS,
    frame_length: int = TRIM_FRAME_LENGTH,
    hop_length: int = TRIM_HOP_LENGTH,
) -> tuple[int, int]:
    """``(start, end)`` sample bounds of the speech in ``x``, robust to a noise floor.

    Frames as in :func:`trim_bounds`; a frame is speech when its level exceeds
    :func:`speech_threshold` (see the module's description); the bounds run from the first
    speech frame's start to the last one's end, widened by ``pad_seconds`` on each side and
    clipped to the signal. ``(0, 0)`` when no frame is speech (an all-zero signal).

    Args:
      x: float samples ``[T]`` at ``sample_rate`` Hz, without DC offset.
      sample_rate: Hz, for ``pad_seconds``.
      top_db: never keep frames more than this far below the loudest (librosa's threshold).
      noise_margin_db: how far above the noise floor speech must be.
      speech_range_db: frames within this range of the loudest are always speech.
      pad_seconds: kept on each side of the speech found.
    """
    n = x.shape[0]
    db = frame_levels(x, frame_length, hop_length)
    threshold = speech_threshold(
        db, top_db=top_db, noise_margin_db=noise_margin_db, speech_range_db=speech_range_db
    )
    start, end = _bounds(db > threshold, n, hop_length)
    if end <= start:
        return 0, 0
    pad = round(pad_seconds * sample_rate)
    return max(0, start - pad), min(n, end + pad)
