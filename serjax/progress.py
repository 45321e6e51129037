"""Progress on long work: one status line redrawn in place, and durations people read.

The training loop logs its progress (``epoch 3: step 120/204 ... ETA 1m20s``); downloads and
the inference command draw a status line on standard error. Both use :func:`format_duration`,
and every status line is a :class:`StatusLine`.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["StatusLine", "format_duration"]


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
