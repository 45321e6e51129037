"""The status line and durations shared by downloads, training and inference."""

import io

import pytest

from serjax.progress import StatusLine, format_duration


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0m00s"), (59.6, "1m00s"), (245, "4m05s"), (3723, "1h02m03s")]
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_status_line_redraws_in_place_and_clears():
    out = _Terminal()
    line = StatusLine(out)
    line.show("1/3")
    line.show("2/3")
    line.clear()
    line.redraw()
    line.finish()
    assert out.getvalue() == "\r\033[K1/3\r\033[K2/3\r\033[K\r\033[K2/3\n"


def test_status_line_is_silent_off_a_terminal_and_throttles():
    quiet = io.StringIO()
    line = StatusLine(quiet)
    line.show("x", force=True)
    line.finish()
    assert quiet.getvalue() == ""
    out = _Terminal()
    slow = StatusLine(out, min_interval=3600)
    slow.show("first")
    slow.show("skipped")
    slow.show("forced", force=True)
    assert out.getvalue() == "\r\033[Kfirst\r\033[Kforced"
