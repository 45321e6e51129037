"""Files a run writes: atomically (temporary name, then rename) and as JSON.

Every file goes to a temporary name in the destination folder first and is then
``os.replace``-d over the final name, so a reader (or a crash) never sees a half-written file.
This module imports nothing heavier than NumPy, so inference and data code can use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["atomic_open", "json_default", "write_json_atomic", "write_text_atomic"]


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str) -> Iterator[IO[Any]]:
    """Opens a temporary sibling of ``path``; on clean exit it replaces ``path``.

    The temporary file sits in the same folder so that ``os.replace`` is a rename within one
    file system, which POSIX and Windows both perform atomically. It is created with mode 0o666
    so the final file gets the usual umask-derived permissions rather than mkstemp's 0o600.
    Parent folders are created. On an exception the temporary file is removed and ``path`` is
    left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            # Without fsync a power loss after the rename can leave an empty file behind it.
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically, creating parent folders. Returns path."""
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def json_default(obj: Any) -> Any:
    """``json.dumps`` ``default=`` hook for the types runs produce.

    NumPy/JAX scalars become Python numbers, arrays become nested lists, paths become strings,
    sets become sorted lists (tuples are lists already).

    Raises:
      TypeError: any other type, as ``json.dumps`` itself would.
    """
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    if hasattr(obj, "__array__"):  # np.ndarray, jax.Array
        return np.asarray(obj).tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def write_json_atomic(path: str | Path, obj: Any, *, indent: int = 2) -> Path:
    """Writes ``obj`` as JSON to ``path`` atomically (see ``json_default`` for extra types).

    The text is produced before the file is opened, so an unserialisable object leaves any
    existing file untouched.
    """
    text = json.dumps(obj, indent=indent, default=json_default) + "\n"
    return write_text_atomic(path, text)
