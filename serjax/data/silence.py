"""Non-speech at the edges of a recording and a constant offset: what preprocessing removes.

Two rules find where speech starts and ends:

- :func:`trim_bounds` is ``librosa.effects.trim``'s rule: a frame is speech when its power is
  within ``top_db`` of the loudest frame's. It keeps any noise floor less than ``top_db`` below
  the speech (at 60 dB, nearly every real recording's), so it only removes digital silence.
- :func:`speech_bounds`, the one :class:`serjax.data.Preprocessing` applies, judges frames
  without the DC offset and takes its threshold from the speech itself: the activity
  threshold of ITU-T Rec. P.56 ("Objective measurement of active speech level", method B),
  15.9 dB below the active speech level (the mean power of the active frames), but never lower
  than librosa's 60 dB below the loudest frame. A steady noise floor more than about 16 dB
  below the speech's active level is therefore cut, whatever its level relative to the
  loudest frame, and the speech's own level sets where it starts, so padding a recording with
  noise below that threshold moves its bounds little. Digital silence (a run of identical
  samples: zeros, or a constant offset) at either end is cut to the sample (keeping one), so
  that padding a recording with zeros gives back the recording itself, give or take a sample.

:func:`dc_offset` is the mean of a signal; removing it keeps a constant offset (a cheap
interface's bias) from being read as sound.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ACTIVITY_MARGIN_DB",
    "FINE_FRAME_LENGTH",
    "FINE_HOP_LENGTH",
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
# ITU-T P.56's margin between the active speech level and the activity threshold.
ACTIVITY_MARGIN_DB = 15.9
# Short frames that place the bounds once the long ones have found the speech: 16 ms at 16 kHz.
FINE_FRAME_LENGTH = 256
FINE_HOP_LENGTH = 64
# Kept on each side of the speech found: onsets and releases quieter than the threshold.
TRIM_PAD_SECONDS = 0.01
# Frames whose power is below -80 dBFS are digital silence (or dither), not speech's activity.
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


def speech_threshold(levels_db: np.ndarray, *, top_db: float = TRIM_TOP_DB) -> float:
    """The frame level (dB) above which a frame is speech, from the levels of all frames.

    ``max(loudest - top_db, active - ACTIVITY_MARGIN_DB)``, where ``active`` is the active
    speech level in the sense of P.56: the mean power of the largest set of loudest frames
    that all lie within ``ACTIVITY_MARGIN_DB`` of it (frames below -80 dBFS never count).
    """
    loudest = float(levels_db.max())
    threshold = loudest - top_db
    audible = np.sort(levels_db[levels_db > _SILENT_FRAME_DB])[::-1]
    if audible.size:
        mean_power = np.cumsum(10.0 ** (audible / 10.0)) / np.arange(1, audible.size + 1)
        active = 10.0 * np.log10(mean_power)
        # The loudest frame alone is within the margin, so there is always one.
        k = np.flatnonzero(active - audible <= ACTIVITY_MARGIN_DB)[-1]
        threshold = max(threshold, float(active[k]) - ACTIVITY_MARGIN_DB)
    return threshold


def _digital_silence_bounds(x: np.ndarray) -> tuple[int, int]:
    """Bounds without the runs of identical samples at either end (zeros, a constant), but
    for the one sample of each next to the sound."""
    n = x.shape[0]
    changes = np.flatnonzero(x[1:] != x[:-1])  # x[i] != x[i + 1]
    if changes.size == 0:
        return 0, 0
    # Each run keeps its sample next to the sound: the signal may well start from that value.
    return int(changes[0]), min(n, int(changes[-1]) + 2)


def speech_bounds(
    x: np.ndarray,
    sample_rate: int,
    *,
    top_db: float = TRIM_TOP_DB,
    pad_seconds: float = TRIM_PAD_SECONDS,
) -> tuple[int, int]:
    """``(start, end)`` sample bounds of the speech in ``x``, robust to a noise floor.

    The levels of ``x`` without its mean, in librosa's frames (2048 samples every 512), give
    the threshold (:func:`speech_threshold`) and the first and last speech frames; short
    frames (256 samples every 64) place the bounds: from the start of the first short frame
    above the threshold to the end of the last one, within half a long frame of the long
    frames' bounds. The bounds are widened by ``pad_seconds`` on each side, then narrowed to
    exclude digital silence (runs of identical samples) at either end. ``(0, 0)`` when no frame
    is speech (a constant signal).

    Args:
      x: float samples ``[T]`` at ``sample_rate`` Hz.
      sample_rate: Hz, for ``pad_seconds``.
      top_db: never keep frames more than this far below the loudest (librosa's threshold).
      pad_seconds: kept on each side of the speech found.
    """
    n = x.shape[0]
    ac = np.asarray(x, dtype=np.float64) - dc_offset(x)
    coarse = frame_levels(ac)
    threshold = speech_threshold(coarse, top_db=top_db)
    start, end = _bounds(coarse > threshold, n, TRIM_HOP_LENGTH)
    if end <= start:
        return 0, 0
    fine = frame_levels(ac, FINE_FRAME_LENGTH, FINE_HOP_LENGTH)
    centres = np.arange(fine.shape[0]) * FINE_HOP_LENGTH
    near = (centres >= start - TRIM_FRAME_LENGTH // 2) & (centres < end + TRIM_FRAME_LENGTH // 2)
    found = np.flatnonzero(near & (fine > threshold))
    if found.size:  # else the long frames' bounds stand
        half = FINE_FRAME_LENGTH // 2
        start, end = int(centres[found[0]]) - half, int(centres[found[-1]]) + half
    pad = round(pad_seconds * sample_rate)
    first, last = _digital_silence_bounds(x)
    start, end = max(first, start - pad), min(last, end + pad)
    return (start, end) if end > start else (0, 0)
