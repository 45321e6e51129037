"""Tests of serjax.writers: event files read back record by record, and plots."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboardX.proto import event_pb2, plugin_hparams_pb2
from tensorboardX.record_writer import masked_crc32c

from serjax import writers


def read_events(folder: Path) -> list[event_pb2.Event]:
    """Parses every TFRecord in the folder's event files, checking both CRCs of each record."""
    events = []
    files = sorted(folder.glob("events.out.tfevents.*"))
    assert files, f"no event file in {folder}"
    for file in files:
        data = file.read_bytes()
        pos = 0
        while pos < len(data):
            header = data[pos : pos + 8]
            (length,) = struct.unpack("<Q", header)
            (header_crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
            assert header_crc == masked_crc32c(header)
            payload = data[pos + 12 : pos + 12 + length]
            (payload_crc,) = struct.unpack("<I", data[pos + 12 + length : pos + 16 + length])
            assert payload_crc == masked_crc32c(payload)
            events.append(event_pb2.Event.FromString(payload))
            pos += 16 + length
    return events


def summary_values(events: list[event_pb2.Event]) -> list[tuple[int, event_pb2.Summary.Value]]:
    return [(e.step, v) for e in events if e.HasField("summary") for v in e.summary.value]


def test_scalars_are_written_with_steps(tmp_path):
    with writers.MetricWriter(tmp_path) as writer:
        writer.scalars(1, {"train/loss": 2.5, "val/ua": np.float32(0.25)})
        writer.scalars(2, {"train/loss": 1.25})
    scalars = [(s, v.tag, v.simple_value) for s, v in summary_values(read_events(tmp_path))]
    assert scalars == [(1, "train/loss", 2.5), (1, "val/ua", 0.25), (2, "train/loss", 1.25)]


def test_scalars_reject_non_numbers(tmp_path):
    with (
        writers.MetricWriter(tmp_path) as writer,
        pytest.raises(TypeError, match="'val/name' is not a number"),
    ):
        writer.scalars(0, {"val/name": "abc"})


def test_confusion_matrix_is_an_rgb_image(tmp_path):
    cm = np.array([[3, 1, 0], [0, 4, 0], [1, 0, 2]])
    with writers.MetricWriter(tmp_path) as writer:
        writer.confusion_matrix(7, "val/confusion", cm, ["sadness", "neutral", "anger"])
    (step, value), *_ = summary_values(read_events(tmp_path))
    assert (step, value.tag) == (7, "val/confusion")
    png = Image.open(io.BytesIO(value.image.encoded_image_string))
    assert png.format == "PNG"
    assert png.size == (value.image.width, value.image.height)
    pixels = np.asarray(png.convert("RGB"))
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    # Not a blank canvas: the heat map puts saturated blue on the diagonal.
    blue = (pixels[..., 2] > 100) & (pixels[..., 0] < 60)
    assert blue.sum() > 100


def test_hparams_session_holds_flattened_values(tmp_path):
    hparams = {"model": {"name": "lstm", "hidden": 64}, "lr": np.float32(0.5), "classes": ("a",)}
    with writers.MetricWriter(tmp_path) as writer:
        writer.hparams(hparams, {"hparam/test_ua": 0.75})
    values = [v for _, v in summary_values(read_events(tmp_path / "hparams"))]
    start = next(v for v in values if v.tag == "_hparams_/session_start_info")
    assert start.metadata.plugin_data.plugin_name == "hparams"
    info = plugin_hparams_pb2.HParamsPluginData.FromString(start.metadata.plugin_data.content)
    hp = info.session_start_info.hparams
    assert hp["model.name"].string_value == "lstm"
    assert hp["model.hidden"].number_value == 64.0
    assert hp["lr"].number_value == 0.5
    assert hp["classes"].string_value == "('a',)"
    metric = next(v for v in values if v.tag == "hparam/test_ua")
    assert metric.simple_value == 0.75


def test_text_summary_is_written(tmp_path):
    with writers.MetricWriter(tmp_path) as writer:
        writer.text(3, "test/report", "a  b\n1  2")
    (step, value), *_ = summary_values(read_events(tmp_path))
    assert step == 3 and value.tag.startswith("test/report")
    assert b"    a  b\n    1  2" in value.tensor.string_val[0]


def test_plot_confusion_matrix_returns_figure_or_saves_png(tmp_path):
    cm = np.array([[2, 0], [1, 1]])
    fig = writers.plot_confusion_matrix(cm, ["a", "b"])
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["0.00\n(0)", "0.50\n(1)", "0.50\n(1)", "1.00\n(2)"]
    raw = writers.plot_confusion_matrix(cm, ["a", "b"], normalize=False)
    assert sorted(t.get_text() for t in raw.axes[0].texts) == ["0", "1", "1", "2"]

    out = writers.plot_confusion_matrix(cm, ["a", "b"], tmp_path / "plots" / "cm.png")
    assert out == tmp_path / "plots" / "cm.png"
    assert Image.open(out).format == "PNG"
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["cm.png"]


def test_plot_confusion_matrix_empty_row_and_bad_shape():
    fig = writers.plot_confusion_matrix(np.array([[0, 0], [0, 3]]), ["a", "b"])
    assert "0.00\n(0)" in [t.get_text() for t in fig.axes[0].texts]
    with pytest.raises(ValueError, match=r"cm must be \[3, 3\]"):
        writers.plot_confusion_matrix(np.zeros((2, 2)), ["a", "b", "c"])
