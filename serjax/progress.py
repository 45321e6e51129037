"""Progress on long work: one status line redrawn in place, and durations people read.

The training loop logs its progress (``epoch 3: step 120/204 ... ETA 1m20s``); downloads and
the inference command draw a status line on standard error. Both use :func:`format_duration`,
and every status line is a :class:`StatusLine`. The commands that train keep their console to
serjax's own log lines with :func:`quiet_libraries`.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from typing import TextIO

__all__ = ["StatusLine", "format_duration", "quiet_libraries"]

# Records from files under this folder are serjax's own; everything else is a library's.
_PACKAGE_DIR = os.path.join(os.path.dirname(os.path.realpath(__file__)), "")


def quiet_libraries(record: logging.LogRecord) -> bool:
    """A log filter keeping the console to serjax's own progress: library records below
    WARNING are dropped.

    A record is serjax's when the file that logged it lies in this package's folder, wherever
    the clone is and whatever it is called (a virtual environment inside a clone named
    ``serjax`` holds libraries whose paths contain ``/serjax/`` too).
    """
    return record.levelno >= logging.WARNING or _is_own_file(record.pathname)


@functools.lru_cache(maxsize=1024)
def _is_own_file(pathname: str) -> bool:
    return os.path.realpath(pathname).startswith(_PACKAGE_DIR)


def format_duration(seconds: float) -> str:
    """``"4m05s"``, or ``"1h02m03s"`` from an hour on; rounded to the second."""
    seconds = int(round(max(seconds, 0.0)))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


class StatusLine:
    """One line of status on a terminal, redrawn in place; silent when not enabled.

    Args:
      stream: where to draw (default: standard error).
      enabled: draw at all (default: when ``stream`` is a terminal).
      min_interval: seconds between redraws (``show(..., force=True)`` always draws).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool | None = None,
        min_interval: float = 0.0,
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else bool(enabled)
        self.min_interval = min_interval
        self.text = ""
        self._drawn_at = -float("inf")

    def show(self, text: str, *, force: bool = False) -> None:
        """Replaces the line by ``text``."""
        self.text = text
        now = time.monotonic()
        if self.enabled and (force or now - self._drawn_at >= self.min_interval):
            self._drawn_at = now
            self.stream.write(f"\r\033[K{text}")
            self.stream.flush()

    def clear(self) -> None:
        """Erases the line (before printing something else); ``redraw`` brings it back."""
        if self.enabled and self.text:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def redraw(self) -> None:
        self.show(self.text, force=True)

    def finish(self) -> None:
        """Leaves the last text on its own line."""
        if self.enabled and self.text:
            self.stream.write("\n")
            self.stream.flush()
