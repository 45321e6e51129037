"""Audio read as a stream: standard input, files read block by block, and segment cutting.

Inference reads long recordings and live input with these, so that memory stays bounded
whatever the input's length: :func:`mono_blocks` yields down-mixed blocks, and
:class:`SegmentCutter` keeps only the samples a later segment still needs.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from serjax.data.audio import AudioError
from serjax.data.listing import undecodable_reason

__all__ = [
    "DEFAULT_VAD_DB",
    "STDIN",
    "SegmentCutter",
    "is_live_stdin",
    "mono_blocks",
    "open_audio",
    "open_stdin",
    "rms_db",
]

# The name that stands for standard input, on the command line and in the Python API.
STDIN = "-"
# Default threshold of the energy gate: a segment whose RMS level is below it holds no speech
# worth classifying (quiet speech sits around -40 to -25 dBFS, room noise well below -50).
DEFAULT_VAD_DB = -45.0


def rms_db(x: np.ndarray) -> float:
    """RMS level of float samples ``[T]`` in dBFS (floored at -200 dB)."""
    return 10.0 * math.log10(max(float(np.mean(np.square(x, dtype=np.float64))), 1e-20))


def is_live_stdin() -> bool:
    """Whether standard input is a pipe or device (live audio), not a redirected file."""
    return not stat.S_ISREG(os.fstat(sys.stdin.fileno()).st_mode)


def _relay(head: bytes, source: int, sink: int) -> None:
    """Copies ``head`` then everything from fd ``source`` to fd ``sink``, then closes ``sink``."""
    try:
        with os.fdopen(sink, "wb", buffering=0) as out:
            out.write(head)
            while chunk := os.read(source, 1 << 16):
                out.write(chunk)
    except (BrokenPipeError, OSError):
        pass  # the reader stopped (an error, or it had all it wanted)


@contextlib.contextmanager
def open_stdin() -> Iterator[sf.SoundFile]:
    """Standard input as a SoundFile: streamed for WAV, read whole for other formats.

    libsndfile reads WAV from a pipe as it arrives, so live input works; other formats (FLAC)
    need a seekable file, so a piped stream of those is first read into memory.
    """
    if sys.stdin.isatty():
        raise AudioError(STDIN, "standard input is a terminal: pipe audio into it")
    fd = sys.stdin.fileno()
    if stat.S_ISREG(os.fstat(fd).st_mode):  # redirected from a file: seekable, any format
        with sf.SoundFile(fd, closefd=False) as f:
            yield f
        return
    head = b""
    while len(head) < 12 and (chunk := os.read(fd, 12 - len(head))):
        head += chunk
    if not head:
        raise AudioError(STDIN, "empty file (0 bytes)")
    if head[:4] in (b"RIFF", b"RIFX", b"RF64"):
        # The bytes already read go back in front through a pipe of our own.
        read_end, write_end = os.pipe()
        thread = threading.Thread(target=_relay, args=(head, fd, write_end), daemon=True)
        thread.start()
        try:
            with sf.SoundFile(read_end, closefd=False) as f:
                yield f
        finally:
            os.close(read_end)
        return
    with sf.SoundFile(io.BytesIO(head + sys.stdin.buffer.read())) as f:
        yield f


@contextlib.contextmanager
def open_audio(source: str | os.PathLike[str]) -> Iterator[sf.SoundFile]:
    """An open SoundFile of a path or of ``"-"`` (standard input).

    Raises:
      AudioError: missing, empty or undecodable, with the same reasons as
        ``serjax.data.decode``.
    """
    with contextlib.ExitStack() as stack:
        try:
            if str(source) == STDIN:
                f = stack.enter_context(open_stdin())
            else:
                path = Path(source)
                if not path.is_file():
                    raise AudioError(path, "no such file")
                if path.stat().st_size == 0:
                    raise AudioError(path, "empty file (0 bytes)")
                f = stack.enter_context(sf.SoundFile(path))
        except (sf.SoundFileError, RuntimeError, OSError) as e:
            # libsndfile's own words, without the name of an in-memory stream.
            words = getattr(e, "error_string", e)
            if str(source) == STDIN:
                raise AudioError(source, f"cannot decode ({words})") from e
            raise AudioError(source, undecodable_reason(source, words)) from e
        yield f


def mono_blocks(f: sf.SoundFile, source: str, frames: int) -> Iterator[np.ndarray]:
    """Down-mixed float32 blocks of at most ``frames`` input frames, checked to be finite."""
    while True:
        try:
            block = f.read(frames, dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError) as e:
            raise AudioError(source, f"cannot decode ({e})") from e
        if block.shape[0] == 0:
            return
        mono = block.mean(axis=1, dtype=np.float32)
        if not np.isfinite(mono).all():
            raise AudioError(source, "non-finite samples")
        yield mono


class SegmentCutter:
    """Cuts a stream of sample blocks into segments of ``seg_len`` every ``hop_len`` samples.

    Only the samples a later segment still needs are kept, so memory is about one segment
    plus one block, whatever the stream's length.
    """

    def __init__(self, seg_len: int, hop_len: int):
        self.seg_len, self.hop_len = seg_len, hop_len
        self.buffer = np.zeros(0, np.float32)
        self.buffer_start = 0  # stream position of buffer[0]
        self.next_start = 0  # stream position of the next segment
        self.total = 0  # samples fed so far
        self.cut_end = 0  # end of the last segment cut
        self.largest_buffer = 0  # the most samples held at once

    def feed(self, x: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Appends ``x``; returns the ``(start, samples)`` of the segments now complete."""
        self.buffer = np.concatenate([self.buffer, x])
        self.total += x.shape[0]
        self.largest_buffer = max(self.largest_buffer, self.buffer.shape[0])
        out = []
        while self.total >= self.next_start + self.seg_len:
            offset = self.next_start - self.buffer_start
            out.append((self.next_start, self.buffer[offset : offset + self.seg_len].copy()))
            self.cut_end = self.next_start + self.seg_len
            self.next_start += self.hop_len
        drop = min(self.next_start - self.buffer_start, self.buffer.shape[0])
        self.buffer, self.buffer_start = self.buffer[drop:], self.buffer_start + drop
        return out

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """The last, shorter segment, when the stream's end is not covered yet."""
        if self.next_start < self.total and self.cut_end < self.total:
            return [(self.next_start, self.buffer[self.next_start - self.buffer_start :].copy())]
        return []
