"""Helpers for the data tests: the real data root (tests skip without it) and file writers."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest
import soundfile as sf


def _real_root() -> pathlib.Path | None:
    value = os.environ.get("SERJAX_DATA_DIR")
    return pathlib.Path(value) if value else None


def real_folder(*parts: str) -> pathlib.Path:
    """A folder under $SERJAX_DATA_DIR, or a skip saying why it is unavailable."""
    root = _real_root()
    if root is None:
        pytest.skip("SERJAX_DATA_DIR is not set")
    folder = root.joinpath(*parts)
    if not folder.is_dir():
        pytest.skip(f"{folder} does not exist")
    return folder


def touch(root: pathlib.Path, *relpaths: str) -> list[pathlib.Path]:
    """Empty files (enough for name parsing, which reads no audio)."""
    paths = []
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        paths.append(path)
    return paths


def tone(
    seconds: float, sample_rate: int, freq: float = 440.0, amplitude: float = 0.5
) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_audio(
    path: pathlib.Path, x: np.ndarray, sample_rate: int, audio_format: str | None = None
) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sample_rate, format=audio_format, subtype="PCM_16")
    return path
