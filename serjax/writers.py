"""Run outputs: TensorBoard summaries and confusion-matrix plots.

This is the only module that imports tensorboardX. Figures are drawn with matplotlib's
object-oriented API on an Agg canvas, never through ``pyplot``: no global figure registry to
leak, no dependence on the user's configured backend, and safe from any thread. Plots are saved
atomically (:func:`serjax.files.atomic_open`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from serjax.files import atomic_open

__all__ = [
    "MetricWriter",
    "figure_to_rgb",
    "plot_confusion_matrix",
]

HParamValue = bool | int | float | str


# --------------------------------------------------------------------------------------------
# Figures


def plot_confusion_matrix(
    cm: Any,
    class_names: Sequence[str],
    path: str | Path | None = None,
    *,
    normalize: bool = True,
    title: str | None = None,
    dpi: int = 100,
) -> Figure | Path:
    """Draws a confusion matrix as a heat map with the counts written in each cell.

    Args:
      cm: ``[K, K]`` counts, rows true classes, columns predicted classes.
      class_names: K names, in class-index order.
      path: where to save a PNG (atomically); None returns the figure instead.
      normalize: colour (and print) each row as fractions of its true-class total, so that the
        diagonal reads as per-class recall; counts are still printed in brackets. A row with no
        examples stays 0.
      title: optional title.
      dpi: resolution of the saved PNG or of ``figure_to_rgb``.

    Returns:
      The matplotlib ``Figure`` when ``path`` is None, otherwise ``path`` as a ``Path``.
    """
    fig = _confusion_figure(cm, class_names, normalize=normalize, title=title, dpi=dpi)
    if path is None:
        return fig
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    return Path(path)


def _confusion_figure(
    cm: Any,
    class_names: Sequence[str],
    *,
    normalize: bool,
    title: str | None,
    dpi: int = 100,
) -> Figure:
    counts = np.asarray(cm)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"cm must be [{k}, {k}] for {k} class names, got shape {counts.shape}")
    if normalize:
        totals = counts.sum(axis=1, keepdims=True).astype(np.float64)
        values = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
        vmax = 1.0
    else:
        values = counts.astype(np.float64)
        vmax = max(float(values.max()), 1.0)

    side = 1.6 + 0.55 * k
    fig = Figure(figsize=(side + 1.2, side), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    fontsize = 9 if k <= 6 else 7
    for i in range(k):
        for j in range(k):
            text = f"{values[i, j]:.2f}\n({int(counts[i, j])})" if normalize else str(counts[i, j])
            # White text on dark cells keeps the numbers readable.
            color = "white" if values[i, j] > 0.5 * vmax else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=fontsize)
    return fig


def figure_to_rgb(fig: Figure) -> np.ndarray:
    """Renders a figure to an ``[H, W, 3]`` uint8 RGB array."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.array(canvas.buffer_rgba())[..., :3]


# --------------------------------------------------------------------------------------------
# TensorBoard


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def _hparam_value(value: Any) -> HParamValue:
    """Coerces a config value to a type the TensorBoard hparams plugin displays."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    # Tuples, lists, None: shown as their text, which keeps runs comparable by eye.
    return str(value)


class MetricWriter:
    """TensorBoard summaries of one run (a thin wrapper of ``tensorboardX.SummaryWriter``).

    Usable as a context manager; ``close`` flushes everything to disk.
    """

    def __init__(self, logdir: str | Path, *, flush_secs: int = 30) -> None:
        from tensorboardX import SummaryWriter

        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(logdir=str(self.logdir), flush_secs=flush_secs)
        self._closed = False

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Adds one scalar per entry (tag -> value) at ``step``.

        Raises:
          TypeError: a value is not a real number (naming its tag).
        """
        for tag, value in values.items():
            try:
                number = float(value)
            except (TypeError, ValueError) as e:
                raise TypeError(f"scalar {tag!r} is not a number: {value!r}") from e
            self._writer.add_scalar(tag, number, global_step=int(step))

    def confusion_matrix(
        self,
        step: int,
        tag: str,
        cm: Any,
        class_names: Sequence[str],
        *,
        normalize: bool = True,
    ) -> None:
        """Adds the confusion matrix as an RGB image summary under ``tag``."""
        fig = _confusion_figure(cm, class_names, normalize=normalize, title=tag)
        image = figure_to_rgb(fig)
        self._writer.add_image(tag, image, global_step=int(step), dataformats="HWC")

    def text(self, step: int, tag: str, text: str) -> None:
        """Adds a text summary (e.g. a classification report) under ``tag``."""
        # TensorBoard renders text as Markdown; indenting by four spaces keeps a table aligned.
        markdown = "\n".join("    " + line for line in text.splitlines())
        self._writer.add_text(tag, markdown, global_step=int(step))

    def hparams(
        self,
        hparams: Mapping[str, Any],
        metrics: Mapping[str, float],
        *,
        name: str = "hparams",
    ) -> None:
        """Records the run's hyper-parameters and final metrics for TensorBoard's HPARAMS tab.

        Nested mappings (a config as a dict) are flattened to dotted names; values that are not
        bool/int/float/str are shown as their text. tensorboardX stores the session in the
        sub-folder ``logdir/name``, as TensorBoard expects one session per run folder.

        Metric tags should not repeat a tag written with ``scalars`` (TensorBoard would show
        that curve instead): prefix them, e.g. ``"hparam/test_ua"``.
        """
        flat = {key: _hparam_value(value) for key, value in _flatten(hparams)}
        numbers: dict[str, float] = {}
        for tag, value in metrics.items():
            number = float(value) if value is not None else math.nan
            numbers[tag] = number
        self._writer.add_hparams(flat, numbers, name=name)

    def flush(self) -> None:
        """Writes pending events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file; further calls are no-ops."""
        if not self._closed:
            self._writer.close()
            self._closed = True

    def __enter__(self) -> MetricWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
