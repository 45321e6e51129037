"""Tests of serjax.files: atomic writes and the JSON encoder."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from serjax import files


def test_write_json_atomic_converts_numpy_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    obj = {"ua": np.float32(0.5), "cm": np.array([[1, 2], [3, 4]]), "n": np.int64(3), "p": path}
    files.write_json_atomic(path, obj)
    assert json.loads(path.read_text()) == {
        "ua": 0.5,
        "cm": [[1, 2], [3, 4]],
        "n": 3,
        "p": str(path),
    }
    assert os.listdir(path.parent) == ["metrics.json"]


def test_failed_json_write_keeps_previous_file(tmp_path):
    path = tmp_path / "metrics.json"
    files.write_json_atomic(path, {"ua": 0.5})
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        files.write_json_atomic(path, {"ua": object()})
    assert json.loads(path.read_text()) == {"ua": 0.5}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_interrupted_text_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "report.txt"
    files.write_text_atomic(path, "old")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        files.write_text_atomic(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.txt"]


def test_write_text_atomic_overwrites(tmp_path):
    path = tmp_path / "report.txt"
    files.write_text_atomic(path, "old")
    files.write_text_atomic(path, "new text\n")
    assert path.read_text() == "new text\n"
