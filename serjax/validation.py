"""Argument checks with one wording everywhere: each error names the field and what is valid.

Imports nothing beyond the standard library, so configs, data code and models can all use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["one_of", "positive"]


def _prefix(owner: str) -> str:
    return f"{owner}: " if owner else ""


def one_of(field: str, value: Any, choices: Iterable[Any], *, owner: str = "") -> Any:
    """``value`` itself when it is one of ``choices``.

    Args:
      field: the name the message uses (``"data.protocol"``, ``"pooling"``).
      owner: what the field belongs to, put in front of the message (a model's name).

    Raises:
      ValueError: ``"<owner>: <field>=<value> is not one of: a, b, c"``.
    """
    choices = tuple(choices)
    if value not in choices:
        valid = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in choices)
        raise ValueError(f"{_prefix(owner)}{field}={value!r} is not one of: {valid}")
    return value


def positive(owner: str = "", **values: float) -> None:
    """Every named value is > 0 (sizes: >= 1).

    Raises:
      ValueError: ``"<owner>: <name> must be positive, got <value>"`` for the first one that
        is not.
    """
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{_prefix(owner)}{name} must be positive, got {value!r}")
