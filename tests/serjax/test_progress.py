"""The status line and durations shared by downloads, training and inference."""

import io
import logging
from pathlib import Path

import pytest

from serjax import progress
from serjax.progress import StatusLine, format_duration, quiet_libraries


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


def _record(pathname: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("absl", level, pathname, 1, "message", None, None)


def test_log_filter_keeps_the_package_and_drops_libraries_wherever_the_clone_is(tmp_path):
    # A virtual environment inside a clone named "serjax": its libraries' paths hold /serjax/.
    venv_library = tmp_path / "serjax" / ".venv" / "lib" / "python3.11" / "site-packages"
    assert not quiet_libraries(_record(str(venv_library / "orbax" / "checkpoint.py")))
    assert not quiet_libraries(_record(str(venv_library / "jax" / "_src" / "xla_bridge.py")))
    assert not quiet_libraries(_record("/elsewhere/serjax/serjax_extras/module.py"))
    assert quiet_libraries(_record(str(venv_library / "orbax" / "x.py"), logging.WARNING))
    package = Path(progress.__file__).resolve().parent
    assert quiet_libraries(_record(str(package / "experiments.py")))
    assert quiet_libraries(_record(str(package / "data" / "corpora.py")))
