"""A recording read as a stream and cut into segments, each preprocessed as a file would be.

:func:`cut_stream` turns down-mixed blocks at the file's rate into :class:`Pending` segments at
the model's rate: a streaming resampler, a :class:`serjax.data.stream.SegmentCutter` and
:meth:`serjax.data.Preprocessing.finish` per segment, so that memory is about one segment and
one block whatever the recording's length; :func:`classify` batches them for the model.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import soxr

from serjax.data.audio import SILENCE_PEAK, SILENT, AudioError, ac_peak, without_dc
from serjax.data.preprocess import Preprocessing
from serjax.data.stream import SegmentCutter, rms_db
from serjax.predict.results import Segment

__all__ = ["Pending", "classify", "cut_stream", "read_head", "segment_input"]


@dataclasses.dataclass(frozen=True)
class Pending:
    """A cut segment waiting for its batch: the model input, or why it is skipped.

    Attributes:
      start, end: seconds from the start of the recording.
      wave: the preprocessed samples, or None when the segment is skipped.
      reason: why it is skipped (silent, below the energy gate, too short).
    """

    start: float
    end: float
    wave: np.ndarray | None
    reason: str | None


class _Levels:
    """Running minimum, maximum and mean of a stream: its :func:`ac_peak` at the end."""

    def __init__(self):
        self.low, self.high, self.total, self.count = np.inf, -np.inf, 0.0, 0

    def add(self, x: np.ndarray) -> None:
        if x.shape[0]:
            self.low = min(self.low, float(x.min()))
            self.high = max(self.high, float(x.max()))
            self.total += float(np.sum(x, dtype=np.float64))
            self.count += x.shape[0]

    def ac_peak(self) -> float:
        if not self.count:
            return 0.0
        mean = self.total / self.count
        return max(self.high - mean, mean - self.low)


def segment_input(
    start: int,
    x: np.ndarray,
    preprocessing: Preprocessing,
    vad_db: float | None,
    name: str,
) -> Pending:
    """A cut segment (samples at the model's rate from ``start``), preprocessed as a file is,
    or why it is skipped. Silence and the energy gate are judged without the DC offset."""
    wave, reason = None, None
    if x.shape[0] < preprocessing.min_samples:
        reason = preprocessing.too_short(x.shape[0])
    elif ac_peak(x) < SILENCE_PEAK:
        reason = "silent"
    elif vad_db is not None and (level := rms_db(without_dc(x))) < vad_db:
        reason = f"below the energy gate ({level:.1f} dBFS < {vad_db:g} dBFS)"
    else:
        try:
            wave = preprocessing.finish(x, name)
        except AudioError as e:
            reason = e.reason
    rate = preprocessing.sample_rate
    return Pending(start / rate, (start + x.shape[0]) / rate, wave, reason)


def cut_stream(
    blocks: Iterable[np.ndarray],
    rate: int,
    preprocessing: Preprocessing,
    seg_len: int,
    hop_len: int,
    vad_db: float | None,
    name: str,
) -> Iterator[Pending]:
    """The segments of a stream, in order, as soon as each is complete.

    Args:
      blocks: float32 mono blocks of the recording at ``rate`` Hz.
      rate: the recording's sample rate; resampled to the preprocessing's with soxr's
        streaming resampler.
      preprocessing: the run's (applied to each segment as to a file).
      seg_len, hop_len: segment length and hop, samples at the model's rate.
      vad_db: if set, segments whose RMS level is below this many dBFS are skipped.
      name: how errors refer to the recording.

    Raises:
      AudioError: once the whole stream is read, if it held no samples, was silent as a whole
        (without its DC offset) or was shorter than one analysis window. The segments before
        are yielded first.
    """
    resampler = None
    if rate != preprocessing.sample_rate:
        resampler = soxr.ResampleStream(
            rate, preprocessing.sample_rate, 1, dtype="float32", quality=preprocessing.quality
        )
    cutter = SegmentCutter(seg_len, hop_len)
    levels = _Levels()
    for mono in itertools.chain(blocks, [None]):
        if mono is None:  # end of input: what the resampler still holds
            if resampler is None:
                break
            mono = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        else:
            levels.add(mono)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=False)
        for start, x in cutter.feed(mono):
            yield segment_input(start, x, preprocessing, vad_db, name)
    # The same checks as a whole file gets, once the whole stream has been seen.
    if cutter.total == 0:
        raise AudioError(name, "no audio samples")
    if levels.ac_peak() < SILENCE_PEAK:
        raise AudioError(name, SILENT)
    if cutter.total < preprocessing.min_samples:
        raise AudioError(name, preprocessing.too_short(cutter.total))
    for start, x in cutter.finish():
        yield segment_input(start, x, preprocessing, vad_db, name)


def read_head(blocks: Iterator[np.ndarray], limit: float) -> tuple[list[np.ndarray], bool]:
    """The first blocks of a stream, read until more than ``limit`` samples have come.

    Returns:
      ``(head, more)``: the blocks read, and whether the stream goes on (then ``blocks``
      continues after ``head``).
    """
    head, count = [], 0
    for block in blocks:
        head.append(block)
        count += block.shape[0]
        if count > limit:
            return head, True
    return head, False


def classify(
    pending: Iterable[Pending], run: Callable[[list[np.ndarray]], np.ndarray], rows: int
) -> Iterator[Segment]:
    """Segments in order, classified by ``run`` (waveforms -> probabilities ``[N, K]``) as soon
    as ``rows`` model inputs are waiting, and the rest at the end."""
    waiting: list[Pending] = []
    for p in pending:
        waiting.append(p)
        if sum(w.wave is not None for w in waiting) >= rows:
            yield from _classified(waiting, run)
            waiting = []
    yield from _classified(waiting, run)


def _classified(pending: Sequence[Pending], run: Callable) -> list[Segment]:
    waves = [p.wave for p in pending if p.wave is not None]
    probs = iter(run(waves) if waves else ())
    return [
        Segment(p.start, p.end, None if p.wave is None else next(probs), p.reason) for p in pending
    ]
