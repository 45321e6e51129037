"""What inference returns: a file's prediction, its timeline's segments, or why it failed."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

__all__ = [
    "FileFailure",
    "FileResult",
    "LowSampleRateWarning",
    "PredictorError",
    "Segment",
    "duration_weighted",
    "ranked",
]


class PredictorError(RuntimeError):
    """A workdir or checkpoint that cannot be used for inference; the message says why."""


class LowSampleRateWarning(UserWarning):
    """An input sampled below the model's rate: upsampled, it lacks the band above its own
    Nyquist frequency that the model's training audio had, and accuracy suffers."""


def ranked(probabilities: np.ndarray, class_names: Sequence[str]) -> list[tuple[str, float]]:
    """``(class, probability)`` pairs from the most to the least likely."""
    order = np.argsort(-np.asarray(probabilities), kind="stable")
    return [(class_names[i], float(probabilities[i])) for i in order]


@dataclasses.dataclass(frozen=True)
class Segment:
    """One segment of a timeline.

    Attributes:
      start, end: seconds from the start of the recording.
      probabilities: float32 ``[K]`` in class order, or None when the segment was skipped.
      skipped: why the segment was not classified (silent, below the energy gate, too short).
    """

    start: float
    end: float
    probabilities: np.ndarray | None = None
    skipped: str | None = None


def duration_weighted(segments: Sequence[Segment]) -> np.ndarray:
    """float32 ``[K]``: the mean of the classified segments' probabilities, each weighted by
    its duration (``end - start``), so that a short tail counts for what it lasts.

    Raises:
      ValueError: no classified segment.
    """
    kept = [s for s in segments if s.probabilities is not None]
    if not kept:
        raise ValueError("no classified segment")
    weights = np.array([s.end - s.start for s in kept], np.float64)
    probs = np.stack([s.probabilities for s in kept]).astype(np.float64)
    return (weights @ probs / weights.sum()).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class FileResult:
    """The prediction for one input.

    Attributes:
      source: the path as given (``"-"`` for standard input).
      class_names: the model's classes, the order of ``probabilities``.
      probabilities: float32 ``[K]``: the whole-file prediction, or with segments (or blocks)
        the duration-weighted mean over the classified segments (:func:`duration_weighted`).
      seconds: duration analysed, in seconds (after training's preprocessing when not segmented).
      segments: the timeline when the file was segmented, the blocks when a long file was
        classified in blocks, else empty.
      upsampled_from: the input's sample rate when it was below the model's (see
        :class:`LowSampleRateWarning`), else None.
    """

    source: str
    class_names: tuple[str, ...]
    probabilities: np.ndarray
    seconds: float
    segments: tuple[Segment, ...] = ()
    upsampled_from: int | None = None

    @property
    def ranking(self) -> list[tuple[str, float]]:
        """``(class, probability)`` from the most to the least likely."""
        return ranked(self.probabilities, self.class_names)

    @property
    def emotion(self) -> str:
        """The most likely class."""
        return self.ranking[0][0]

    @property
    def probability(self) -> float:
        """The probability of the most likely class."""
        return self.ranking[0][1]

    @property
    def skipped(self) -> int:
        """Segments that were not classified."""
        return sum(s.skipped is not None for s in self.segments)


@dataclasses.dataclass(frozen=True)
class FileFailure:
    """An input that gave no prediction: ``source`` as given and the ``reason``."""

    source: str
    reason: str
