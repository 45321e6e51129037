"""Inference: a trained run applied to new audio, from Python or from the command line.

    python -m serjax.predict --workdir runs/emodb_lstm clip.wav recordings/
    python -m serjax.predict --workdir runs/emodb_lstm --segment 2 --hop 1 --vad long.flac
    sox -d -t wav - | python -m serjax.predict --workdir runs/emodb_lstm --segment 2 -

    predictor = Predictor.from_workdir("runs/emodb_lstm")
    probabilities = predictor.predict(waveform, sample_rate)  # [K], in predictor.class_names order

Everything the model needs travels with the checkpoint: the training config (feature settings,
preprocessing, model hyper-parameters) and the class names are saved in its metadata, so a
workdir describes itself. Audio goes through training's own preprocessing (decode, down-mix,
resample with soxr, optional silence trimming, peak normalisation, fixed or maximum duration,
all from ``config.data``) and then through the very jitted function the training evaluation
runs (:func:`serjax.train.eval_step`: dsp features and model in one XLA program), so there is a
single feature path and the probabilities match the training report's.

Many inputs are padded into full batches whose lengths come from a fixed ladder of octaves
(0.1 s, 0.2 s, 0.4 s, ...), so XLA compiles a handful of shapes whatever the input; a single
input runs alone. Long recordings can be cut into overlapping segments (``segment``/``hop``):
the file is read and resampled in blocks, segments are batched, and memory stays bounded however
long the file is. Compilation dominates a short run on a CPU; setting JAX's
``JAX_COMPILATION_CACHE_DIR`` keeps the compiled programs between runs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import functools
import io
import itertools
import json
import math
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import jax
import ml_collections
import numpy as np
import soundfile as sf
import soxr
from flax import nnx

from serjax import config_lib, data, train
from serjax.checkpointing import Checkpointer, CheckpointError
from serjax.data.audio import SILENCE_PEAK, postprocess
from serjax.features import FeatureSpec

__all__ = [
    "DEFAULT_VAD_DB",
    "STDIN",
    "FileFailure",
    "FileResult",
    "Predictor",
    "PredictorError",
    "Segment",
    "expand_inputs",
    "main",
    "resolve_run_dir",
]

# The name that stands for standard input, on the command line and in the Python API.
STDIN = "-"
# Default threshold of the energy gate: a segment whose RMS level is below it holds no speech
# worth classifying (quiet speech sits around -40 to -25 dBFS, room noise well below -50).
DEFAULT_VAD_DB = -45.0
# Blocks read while streaming: a quarter of a second keeps live input responsive, and is large
# enough that per-block overhead is negligible.
_BLOCK_SECONDS = 0.25
# Whole-file inputs decoded ahead of one round of batching: bounds memory on huge folders while
# leaving enough files per length bucket to fill batches.
_FILES_PER_ROUND = 256
_QUALITY = "VHQ"  # soxr quality; the same as training's decode
_STEP_DIR = "checkpoints"


class PredictorError(RuntimeError):
    """A workdir or checkpoint that cannot be used for inference; the message says why."""


# ---------------------------------------------------------------------------------------------
# Results


def _ranked(probabilities: np.ndarray, class_names: Sequence[str]) -> list[tuple[str, float]]:
    order = np.argsort(-np.asarray(probabilities), kind="stable")
    return [(class_names[i], float(probabilities[i])) for i in order]


@dataclasses.dataclass(frozen=True)
class Segment:
    """One segment of a timeline.

    Attributes:
      start, end: seconds from the start of the recording.
      probabilities: float32 ``[K]`` in class order, or None when the segment was skipped.
      skipped: why the segment was not classified (silent, below the energy gate, too short).
    """

    start: float
    end: float
    probabilities: np.ndarray | None = None
    skipped: str | None = None


@dataclasses.dataclass(frozen=True)
class FileResult:
    """The prediction for one input.

    Attributes:
      source: the path as given (``"-"`` for standard input).
      class_names: the model's classes, the order of ``probabilities``.
      probabilities: float32 ``[K]``: the whole-file prediction, or with segments the mean over
        the classified segments.
      seconds: duration analysed, in seconds (after training's preprocessing when not segmented).
      segments: the timeline when the file was segmented, else empty.
    """

    source: str
    class_names: tuple[str, ...]
    probabilities: np.ndarray
    seconds: float
    segments: tuple[Segment, ...] = ()

    @property
    def ranking(self) -> list[tuple[str, float]]:
        """``(class, probability)`` from the most to the least likely."""
        return _ranked(self.probabilities, self.class_names)

    @property
    def emotion(self) -> str:
        """The most likely class."""
        return self.ranking[0][0]

    @property
    def probability(self) -> float:
        """The probability of the most likely class."""
        return self.ranking[0][1]

    @property
    def skipped(self) -> int:
        """Segments that were not classified."""
        return sum(s.skipped is not None for s in self.segments)


@dataclasses.dataclass(frozen=True)
class FileFailure:
    """An input that gave no prediction: ``source`` as given and the ``reason``."""

    source: str
    reason: str


# ---------------------------------------------------------------------------------------------
# Workdirs and checkpoints


def resolve_run_dir(workdir: str | os.PathLike[str], fold: str | None = None) -> Path:
    """The folder holding one run's ``checkpoints/``: the workdir itself, or a LOSO fold of it.

    Raises:
      PredictorError: the workdir does not exist, is a multi-fold workdir and ``fold`` is None
        (the message lists the folds), or names a fold it does not have.
    """
    workdir = Path(workdir).expanduser()
    if not workdir.is_dir():
        raise PredictorError(f"workdir {workdir} does not exist or is not a folder")
    folds_dir = workdir / "folds"
    folds = sorted(p.name for p in folds_dir.iterdir() if p.is_dir()) if folds_dir.is_dir() else []
    if fold is None:
        if folds and not (workdir / _STEP_DIR).is_dir():
            raise PredictorError(
                f"{workdir} holds one run per fold; choose one with --fold (Python: fold=...). "
                f"Folds: {', '.join(folds)}"
            )
        return workdir
    if not folds:
        raise PredictorError(f"--fold {fold} given, but {workdir} has no folds/ (a single run)")
    if fold not in folds:
        raise PredictorError(f"{workdir} has no fold {fold!r}; folds: {', '.join(folds)}")
    return folds_dir / fold


def _saved_steps(checkpoints: Path, which: str) -> list[int]:
    """Finished checkpoint steps of one set; a save still being written has a temporary name."""
    folder = checkpoints / which
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_dir())


def _choose_checkpoint(checkpoints: Path, checkpoint: str | int) -> tuple[str, int]:
    """``(set, step)`` for ``"best"``, ``"latest"`` or a step number."""
    saved = {which: _saved_steps(checkpoints, which) for which in ("best", "latest")}
    if isinstance(checkpoint, str) and checkpoint in saved:
        if not saved[checkpoint]:
            others = [f"{w}: {s}" for w, s in saved.items() if s]
            raise PredictorError(
                f"no {checkpoint} checkpoint in {checkpoints}"
                + (f" (saved: {'; '.join(others)})" if others else "; the run saved none yet")
            )
        return checkpoint, saved[checkpoint][-1]
    try:
        step = int(checkpoint)
    except (TypeError, ValueError):
        raise PredictorError(
            f"--checkpoint must be best, latest or a step number, got {checkpoint!r}"
        ) from None
    for which in ("latest", "best"):
        if step in saved[which]:
            return which, step
    listing = sorted(set(saved["best"]) | set(saved["latest"]))
    raise PredictorError(f"no checkpoint for step {step} in {checkpoints}; saved steps: {listing}")


def _config_from_meta(meta: dict[str, Any], where: Path) -> tuple[ml_collections.ConfigDict, tuple]:
    if "config" not in meta or "class_names" not in meta:
        raise PredictorError(
            f"checkpoint {where} has no config or class names in its metadata, so it cannot be "
            "used for inference (was it saved by serjax.train?)"
        )
    config = ml_collections.ConfigDict(meta["config"])
    class_names = tuple(str(c) for c in meta["class_names"])
    try:
        config_lib.validate(config)
    except (ValueError, KeyError, AttributeError, TypeError) as e:
        raise PredictorError(f"checkpoint {where} holds an unusable config: {e}") from e
    if len(class_names) < 2:
        raise PredictorError(f"checkpoint {where} lists {len(class_names)} class(es); need 2+")
    return config, class_names


def _build(config: ml_collections.ConfigDict, num_classes: int) -> tuple[nnx.Module, nnx.Optimizer]:
    """The model and optimizer training built, whose joint state the checkpoint holds."""
    return train.build_model_and_optimizer(config, num_classes)


# ---------------------------------------------------------------------------------------------
# Batching helpers


def _length_ladder(longest: int, unit: int) -> tuple[int, ...]:
    """Padded lengths ``unit`` times 1, 2, 4, 8, ..., up to one that holds ``longest``.

    On a CPU, compiling a shape costs about as much as running hundreds of utterances, so
    octave-spaced lengths (a handful for any corpus) beat a finer ladder that pads less.
    """
    ladder = [unit]
    while ladder[-1] < longest:
        ladder.append(2 * ladder[-1])
    return tuple(ladder)


_EVAL_CACHE: dict[tuple[str, int], Callable] = {}


def _compiled_eval(config_key: str, graphdef: Any, step: train.StepConfig) -> Callable:
    """The jitted eval step, shared by predictors built from the same config.

    Equal configs build structurally identical models, so a second predictor (a reloaded
    checkpoint, or the command line inside a running program) reuses the compiled programs
    instead of compiling every shape again.
    """
    key = (config_key, step.num_classes)
    if key not in _EVAL_CACHE:
        _EVAL_CACHE[key] = jax.jit(functools.partial(train.eval_step, graphdef, step=step))
    return _EVAL_CACHE[key]


def _as_float(waveform: Any) -> np.ndarray:
    """float32 samples; integer PCM scaled to [-1, 1) as soundfile scales it."""
    x = np.asarray(waveform)
    if np.issubdtype(x.dtype, np.integer):
        half = float(2 ** (8 * x.dtype.itemsize - 1))
        offset = half if np.issubdtype(x.dtype, np.unsignedinteger) else 0.0  # 8-bit WAV
        return ((x - offset) / half).astype(np.float32)
    return x.astype(np.float32, copy=False)


def _rms_db(x: np.ndarray) -> float:
    return 10.0 * math.log10(max(float(np.mean(np.square(x, dtype=np.float64))), 1e-20))


# ---------------------------------------------------------------------------------------------
# Streaming input


def _relay(head: bytes, source: int, sink: int) -> None:
    """Copies ``head`` then everything from fd ``source`` to fd ``sink``, then closes ``sink``."""
    try:
        with os.fdopen(sink, "wb", buffering=0) as out:
            out.write(head)
            while chunk := os.read(source, 1 << 16):
                out.write(chunk)
    except (BrokenPipeError, OSError):
        pass  # the reader stopped (an error, or it had all it wanted)


@contextlib.contextmanager
def _open_stdin() -> Iterator[sf.SoundFile]:
    """Standard input as a SoundFile: streamed for WAV, read whole for other formats.

    libsndfile reads WAV from a pipe as it arrives, so live input works; other formats (FLAC)
    need a seekable file, so a piped stream of those is first read into memory.
    """
    if sys.stdin.isatty():
        raise data.AudioError(STDIN, "standard input is a terminal: pipe audio into it")
    fd = sys.stdin.fileno()
    if stat.S_ISREG(os.fstat(fd).st_mode):  # redirected from a file: seekable, any format
        with sf.SoundFile(fd, closefd=False) as f:
            yield f
        return
    head = b""
    while len(head) < 12 and (chunk := os.read(fd, 12 - len(head))):
        head += chunk
    if not head:
        raise data.AudioError(STDIN, "empty file (0 bytes)")
    if head[:4] in (b"RIFF", b"RIFX", b"RF64"):
        # The bytes already read go back in front through a pipe of our own.
        read_end, write_end = os.pipe()
        thread = threading.Thread(target=_relay, args=(head, fd, write_end), daemon=True)
        thread.start()
        try:
            with sf.SoundFile(read_end, closefd=False) as f:
                yield f
        finally:
            os.close(read_end)
        return
    with sf.SoundFile(io.BytesIO(head + sys.stdin.buffer.read())) as f:
        yield f


@contextlib.contextmanager
def _open_audio(source: str | os.PathLike[str]) -> Iterator[sf.SoundFile]:
    """An open SoundFile; the same reasons as ``serjax.data.decode`` for unusable input."""
    with contextlib.ExitStack() as stack:
        try:
            if str(source) == STDIN:
                f = stack.enter_context(_open_stdin())
            else:
                path = Path(source)
                if not path.is_file():
                    raise data.AudioError(path, "no such file")
                if path.stat().st_size == 0:
                    raise data.AudioError(path, "empty file (0 bytes)")
                f = stack.enter_context(sf.SoundFile(path))
        except (sf.SoundFileError, RuntimeError, OSError) as e:
            # libsndfile's own words, without the name of an in-memory stream.
            raise data.AudioError(source, f"cannot decode ({getattr(e, 'error_string', e)})") from e
        yield f


def _mono_blocks(f: sf.SoundFile, source: str, frames: int) -> Iterator[np.ndarray]:
    """Down-mixed float32 blocks of at most ``frames`` input frames, checked to be finite."""
    while True:
        try:
            block = f.read(frames, dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError) as e:
            raise data.AudioError(source, f"cannot decode ({e})") from e
        if block.shape[0] == 0:
            return
        mono = block.mean(axis=1, dtype=np.float32)
        if not np.isfinite(mono).all():
            raise data.AudioError(source, "non-finite samples")
        yield mono


class _Cutter:
    """Cuts a stream of sample blocks into segments of ``seg_len`` every ``hop_len`` samples.

    Only the samples a later segment still needs are kept, so memory is about one segment
    plus one block, whatever the stream's length.
    """

    def __init__(self, seg_len: int, hop_len: int):
        self.seg_len, self.hop_len = seg_len, hop_len
        self.buffer = np.zeros(0, np.float32)
        self.buffer_start = 0  # stream position of buffer[0]
        self.next_start = 0  # stream position of the next segment
        self.total = 0  # samples fed so far
        self.cut_end = 0  # end of the last segment cut
        self.largest_buffer = 0  # the most samples held at once

    def feed(self, x: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Appends ``x``; returns the ``(start, samples)`` of the segments now complete."""
        self.buffer = np.concatenate([self.buffer, x])
        self.total += x.shape[0]
        self.largest_buffer = max(self.largest_buffer, self.buffer.shape[0])
        out = []
        while self.total >= self.next_start + self.seg_len:
            offset = self.next_start - self.buffer_start
            out.append((self.next_start, self.buffer[offset : offset + self.seg_len].copy()))
            self.cut_end = self.next_start + self.seg_len
            self.next_start += self.hop_len
        drop = min(self.next_start - self.buffer_start, self.buffer.shape[0])
        self.buffer, self.buffer_start = self.buffer[drop:], self.buffer_start + drop
        return out

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """The last, shorter segment, when the stream's end is not covered yet."""
        if self.next_start < self.total and self.cut_end < self.total:
            return [(self.next_start, self.buffer[self.next_start - self.buffer_start :].copy())]
        return []


@dataclasses.dataclass(frozen=True)
class _Pending:
    """A cut segment waiting for its batch: the model input, or why it is skipped."""

    start: float
    end: float
    wave: np.ndarray | None
    reason: str | None


# ---------------------------------------------------------------------------------------------
# The predictor


class Predictor:
    """A trained model with training's preprocessing, ready for audio at any rate.

    Build one with :meth:`from_workdir`. Probabilities are float32 in :attr:`class_names`
    order.

    Args:
      config: the training config (as saved in the checkpoint).
      class_names: the model's classes, in output order.
      graphdef, state: the split ``(model, optimizer)`` in eval mode, as the training's eval
        step takes them.
      batch_size: most rows per batch (default: the config's ``train.eval_batch_size``).
      checkpoint: where the weights came from, for messages.
    """

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        class_names: Sequence[str],
        graphdef: Any,
        state: Any,
        *,
        batch_size: int | None = None,
        checkpoint: str = "",
    ):
        self.config = config
        self.class_names = tuple(class_names)
        self.checkpoint = checkpoint
        self.batch_size = int(batch_size or config.train.eval_batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        cfg = config.data
        self.sample_rate = int(cfg.sample_rate)
        self._fixed = round(cfg.fixed_seconds * self.sample_rate) if cfg.fixed_seconds else 0
        self._limit = int(cfg.max_seconds * self.sample_rate) if cfg.max_seconds else 0
        # One analysis window: fewer samples cannot make a single full STFT frame.
        self.min_samples = int(config.features.win_length)
        self._step = train.StepConfig(
            spec=FeatureSpec.from_config(config), num_classes=len(self.class_names)
        )
        self._state = jax.device_put(state)
        key = json.dumps(config.to_dict(), sort_keys=True, default=str)
        self._eval = _compiled_eval(key, graphdef, self._step)

    @classmethod
    def from_workdir(
        cls,
        workdir: str | os.PathLike[str],
        checkpoint: str | int = "best",
        *,
        fold: str | None = None,
        batch_size: int | None = None,
    ) -> Predictor:
        """The model of a training workdir.

        Args:
          workdir: the training run's ``--workdir``.
          checkpoint: ``"best"`` (by validation UA), ``"latest"`` or a saved step number.
          fold: for a multi-fold (LOSO, k-fold) workdir, the fold's name.
          batch_size: most rows per batch.

        Raises:
          PredictorError: no such workdir, fold or checkpoint; metadata without the config; or
            weights that do not fit the model the saved config describes. The workdir is only
            read, never written.
        """
        run_dir = resolve_run_dir(workdir, fold)
        checkpoints = run_dir / _STEP_DIR
        if not checkpoints.is_dir():
            raise PredictorError(
                f"{run_dir} has no {_STEP_DIR}/ folder: not a training workdir, or its run has "
                "not saved a checkpoint yet"
            )
        which, step = _choose_checkpoint(checkpoints, checkpoint)
        where = checkpoints / which / str(step)
        with Checkpointer(checkpoints, read_only=True) as store:
            try:
                meta = store.read_meta(which, step)
            except CheckpointError as e:
                raise PredictorError(f"cannot read checkpoint {where}: {e}") from e
            config, class_names = _config_from_meta(meta, where)
            try:
                model, optimizer = nnx.eval_shape(lambda: _build(config, len(class_names)))
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                raise PredictorError(
                    f"the config saved in checkpoint {where} does not describe a model this "
                    f"version of serjax can build: {e}"
                ) from e
            model.eval()
            graphdef, state = nnx.split((model, optimizer))
            try:
                stored, _ = store.restore(which, train.abstract_pure_state(state), step)
            except CheckpointError as e:
                raise PredictorError(
                    f"checkpoint {where} does not fit the model its saved config describes "
                    f"(config and weights disagree): {e}"
                ) from e
        nnx.replace_by_pure_dict(state, stored)
        return cls(
            config, class_names, graphdef, state, batch_size=batch_size, checkpoint=str(where)
        )

    @property
    def label_mapping(self) -> dict[str, str]:
        """Corpus labels merged into the model's classes during training (e.g. calm→neutral)."""
        return dict(self.config.data.label_mapping)

    # -- preprocessing ------------------------------------------------------------------------
    def _too_short(self, n: int) -> str:
        return (
            f"too short ({n} samples at {self.sample_rate} Hz; one analysis window is "
            f"{self.min_samples})"
        )

    def _finish(self, x: np.ndarray, source: str | os.PathLike[str]) -> np.ndarray:
        """Training's optional steps (trim, normalise, fixed duration, cut) on a decoded signal."""
        if x.shape[0] < self.min_samples:
            raise data.AudioError(source, self._too_short(x.shape[0]))
        cfg = self.config.data
        x = postprocess(
            x,
            self.sample_rate,
            peak_normalize=cfg.peak_normalize,
            trim_silence=cfg.trim_silence,
            fixed_seconds=cfg.fixed_seconds or None,
        )
        if x.shape[0] < self.min_samples:  # what silence trimming left
            raise data.AudioError(source, self._too_short(x.shape[0]) + " after trimming silence")
        return x[: self._limit] if self._limit else x

    def prepare(self, waveform: Any, sample_rate: int, *, name: str = "waveform") -> np.ndarray:
        """A waveform as the model sees it, preprocessed exactly as training decodes files.

        Args:
          waveform: ``[T]`` mono or ``[T, C]`` multi-channel samples (soundfile's layout),
            float in [-1, 1] or integer PCM.
          sample_rate: its rate, Hz; resampled to the model's with soxr when different.
          name: how errors refer to it.

        Raises:
          AudioError: empty, non-finite, silent or too short.
          ValueError: not 1-D or ``[T, C]``.
        """
        x = _as_float(waveform)
        if x.ndim == 2 and x.shape[1] <= 64:
            x = x.mean(axis=1, dtype=np.float32)
        elif x.ndim != 1:
            raise ValueError(
                f"{name} has shape {x.shape}; expected [samples] or [samples, channels]"
            )
        if x.shape[0] == 0:
            raise data.AudioError(name, "no audio samples")
        if not np.isfinite(x).all():
            raise data.AudioError(name, "non-finite samples")
        if np.abs(x).max() < SILENCE_PEAK:
            raise data.AudioError(name, "silent (peak below -80 dBFS)")
        if int(sample_rate) != self.sample_rate:
            x = soxr.resample(x, int(sample_rate), self.sample_rate, quality=_QUALITY)
        return self._finish(np.ascontiguousarray(x, dtype=np.float32), name)

    def load(self, source: str | os.PathLike[str]) -> np.ndarray:
        """A file (or ``"-"``: standard input) decoded and preprocessed as training does.

        Raises:
          AudioError: missing, empty, undecodable, non-finite, silent or too short.
        """
        if str(source) != STDIN:
            return self._finish(data.decode(source, self.sample_rate, quality=_QUALITY), source)
        with _open_audio(STDIN) as f:
            rate = f.samplerate
            blocks = list(_mono_blocks(f, STDIN, 1 << 16))
        if not blocks:
            raise data.AudioError(STDIN, "no audio samples")
        return self.prepare(np.concatenate(blocks), rate, name=STDIN)

    # -- the model ----------------------------------------------------------------------------
    def _run(self, waves: Sequence[np.ndarray], length: int, rows: int) -> np.ndarray:
        """Probabilities ``[N, K]`` of preprocessed waveforms, in batches of ``rows`` rows of
        ``length`` samples (partial batches padded with masked rows, so one shape is used)."""
        out = []
        for begin in range(0, len(waves), rows):
            chunk = waves[begin : begin + rows]
            (batch,) = data.iterate_batches(
                chunk,
                np.zeros(len(chunk), np.int32),
                batch_size=rows,
                buckets=(length,),
                shuffle=False,
                seed=0,
            )
            inputs = {
                "waveforms": batch.waveforms,
                "lengths": batch.lengths,
                "labels": batch.labels,
                "mask": batch.mask,
            }
            probs, _ = self._eval(self._state, inputs)
            out.append(np.asarray(probs)[: len(chunk)])
        return np.concatenate(out).astype(np.float32, copy=False)

    def _probabilities(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities ``[N, K]`` of preprocessed waveforms, batched by length bucket."""
        if not waves:
            return np.zeros((0, len(self.class_names)), np.float32)
        lengths = [w.shape[0] for w in waves]
        ladder = _length_ladder(max(lengths), max(self.sample_rate // 10, 1))
        groups: dict[int, list[int]] = {}
        for i, n in enumerate(lengths):
            groups.setdefault(self._fixed or data.bucket_length(n, ladder), []).append(i)
        # A lone input runs alone (the real-time case); anything more in full batches, so that
        # each length compiles once.
        rows = 1 if len(waves) == 1 else self.batch_size
        out = np.zeros((len(waves), len(self.class_names)), np.float32)
        for length, index in groups.items():
            out[index] = self._run([waves[i] for i in index], length, rows)
        return out

    def predict(self, waveform: Any, sample_rate: int) -> np.ndarray:
        """Class probabilities ``[K]`` of one waveform (see :meth:`prepare` for its form)."""
        return self.predict_batch([waveform], sample_rate)[0]

    def predict_batch(self, waveforms: Sequence[Any], sample_rate: int) -> np.ndarray:
        """Class probabilities ``[N, K]`` of waveforms of any lengths, in input order.

        Raises:
          AudioError: a waveform is empty, silent or too short (named by its index).
        """
        prepared = [
            self.prepare(w, sample_rate, name=f"waveform {i}") for i, w in enumerate(waveforms)
        ]
        return self._probabilities(prepared)

    def iter_segments(
        self,
        source: str | os.PathLike[str],
        segment: float,
        hop: float | None = None,
        *,
        vad_db: float | None = None,
        batch_size: int | None = None,
    ) -> Iterator[Segment]:
        """The timeline of a file (or ``"-"``), segment by segment, as it is read.

        The file is read in blocks of a quarter of a second, down-mixed and resampled with a
        streaming resampler, so memory does not depend on the file's length. Segments of
        ``segment`` seconds start every ``hop`` seconds; the last one ends with the file and
        may be shorter. Each segment gets training's preprocessing as if it were a file.

        Args:
          source: an audio file, or ``"-"`` for standard input.
          segment, hop: segment length and step, seconds (hop defaults to ``segment``).
          vad_db: if set, segments whose RMS level is below this many dBFS are skipped.
          batch_size: segments per batch (default: the predictor's); 1 gives each result
            as soon as its segment is read, for live input.

        Raises:
          AudioError: missing, empty, undecodable, non-finite, silent (as a whole) or shorter
            than one analysis window.
          ValueError: bad segment or hop.
        """
        hop = segment if hop is None else hop
        seg_len, hop_len = self._segment_samples(segment, hop)
        return self._timeline(source, seg_len, hop_len, vad_db, batch_size or self.batch_size)

    def _segment_samples(self, segment: float, hop: float) -> tuple[int, int]:
        """Segment length and hop in samples; ValueError for values no timeline can use."""
        seg_len, hop_len = round(segment * self.sample_rate), round(hop * self.sample_rate)
        if not (segment > 0 and hop > 0 and hop_len >= 1):
            raise ValueError(f"segment and hop must be positive, got {segment} and {hop}")
        if seg_len < self.min_samples:
            raise ValueError(
                f"segment of {segment} s is shorter than one analysis window "
                f"({self.min_samples} samples at {self.sample_rate} Hz)"
            )
        return seg_len, hop_len

    def _timeline(
        self,
        source: str | os.PathLike[str],
        seg_len: int,
        hop_len: int,
        vad_db: float | None,
        batch_size: int,
    ) -> Iterator[Segment]:
        name = str(source)
        # Every segment is padded to the same length, so one shape is compiled per timeline.
        length = self._fixed or (min(seg_len, self._limit) if self._limit else seg_len)
        cutter = _Cutter(seg_len, hop_len)
        pending: list[_Pending] = []
        peak = 0.0
        with _open_audio(source) as f:
            resampler = None
            if f.samplerate != self.sample_rate:
                resampler = soxr.ResampleStream(
                    f.samplerate, self.sample_rate, 1, dtype="float32", quality=_QUALITY
                )
            blocks = _mono_blocks(f, name, max(256, round(f.samplerate * _BLOCK_SECONDS)))
            for mono in itertools.chain(blocks, [None]):
                if mono is None:  # end of input: what the resampler still holds
                    if resampler is None:
                        break
                    mono = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                else:
                    peak = max(peak, float(np.abs(mono).max()))
                    if resampler is not None:
                        mono = resampler.resample_chunk(mono, last=False)
                for start, x in cutter.feed(mono):
                    pending.append(self._segment_input(start, x, vad_db, name))
                    if sum(p.wave is not None for p in pending) >= batch_size:
                        yield from self._classify(pending, length, batch_size)
                        pending = []
        # The same checks as a whole file gets, once the whole stream has been seen.
        if cutter.total == 0:
            raise data.AudioError(source, "no audio samples")
        if peak < SILENCE_PEAK:
            raise data.AudioError(source, "silent (peak below -80 dBFS)")
        if cutter.total < self.min_samples:
            raise data.AudioError(source, self._too_short(cutter.total))
        pending += [self._segment_input(start, x, vad_db, name) for start, x in cutter.finish()]
        yield from self._classify(pending, length, batch_size)

    def _segment_input(
        self, start: int, x: np.ndarray, vad_db: float | None, name: str
    ) -> _Pending:
        """A cut segment, preprocessed as training preprocesses a file, or why it is skipped."""
        wave, reason = None, None
        if x.shape[0] < self.min_samples:
            reason = self._too_short(x.shape[0])
        elif np.abs(x).max() < SILENCE_PEAK:
            reason = "silent"
        elif vad_db is not None and (level := _rms_db(x)) < vad_db:
            reason = f"below the energy gate ({level:.1f} dBFS < {vad_db:g} dBFS)"
        else:
            try:
                wave = self._finish(x, name)
            except data.AudioError as e:
                reason = e.reason
        rate = self.sample_rate
        return _Pending(start / rate, (start + x.shape[0]) / rate, wave, reason)

    def _classify(self, pending: Sequence[_Pending], length: int, batch_size: int) -> list[Segment]:
        waves = [p.wave for p in pending if p.wave is not None]
        probs = iter(self._run(waves, length, batch_size) if waves else ())
        return [
            Segment(p.start, p.end, None if p.wave is None else next(probs), p.reason)
            for p in pending
        ]

    def summarize(self, source: str, segments: Sequence[Segment]) -> FileResult:
        """The utterance-level result of a timeline: the mean of its classified segments.

        Raises:
          AudioError: no segment, or every segment skipped.
        """
        classified = [s.probabilities for s in segments if s.probabilities is not None]
        if not segments:
            raise data.AudioError(source, "no segment was read")
        if not classified:
            reasons = sorted({(s.skipped or "").split(" (")[0] for s in segments})
            raise data.AudioError(
                source,
                f"no segment to classify: all {len(segments)} were skipped ({'; '.join(reasons)})",
            )
        probs = np.mean(classified, axis=0).astype(np.float32)
        return FileResult(source, self.class_names, probs, segments[-1].end, tuple(segments))

    def predict_file(
        self,
        path: str | os.PathLike[str],
        segment: float | None = None,
        hop: float | None = None,
        *,
        vad_db: float | None = None,
    ) -> FileResult:
        """The prediction for one file (``"-"``: standard input).

        Without ``segment`` the whole file is one utterance, preprocessed as in training. With
        ``segment`` (and ``hop``, default ``segment``) seconds the result also holds the
        timeline (see :meth:`iter_segments`), and its probabilities are the mean over the
        classified segments.

        Raises:
          AudioError: the file cannot be used (the exception names it and says why).
        """
        if segment is None:
            if hop is not None or vad_db is not None:
                raise ValueError("hop and vad_db need segment")
            x = self.load(path)
            probs = self._probabilities([x])[0]
            return FileResult(str(path), self.class_names, probs, x.shape[0] / self.sample_rate)
        segments = list(self.iter_segments(path, segment, hop, vad_db=vad_db))
        return self.summarize(str(path), segments)

    def predict_files(
        self,
        sources: Iterable[str | os.PathLike[str] | FileFailure],
        segment: float | None = None,
        hop: float | None = None,
        *,
        vad_db: float | None = None,
    ) -> Iterator[FileResult | FileFailure]:
        """Results of many files, in input order; an unusable file gives a ``FileFailure``.

        Whole files are decoded a few hundred at a time and batched by length bucket;
        segmented files are processed one after the other, their segments batched. A
        ``FileFailure`` among ``sources`` (from :func:`expand_inputs`) is passed through.
        """
        if segment is not None:
            for source in sources:
                if isinstance(source, FileFailure):
                    yield source
                    continue
                try:
                    yield self.predict_file(source, segment, hop, vad_db=vad_db)
                except data.AudioError as e:
                    yield FileFailure(str(source), e.reason)
            return
        sources = iter(sources)
        while round_ := [s for _, s in zip(range(_FILES_PER_ROUND), sources, strict=False)]:
            loaded: list[FileFailure | np.ndarray] = []
            for source in round_:
                if isinstance(source, FileFailure):
                    loaded.append(source)
                    continue
                try:
                    loaded.append(self.load(source))
                except data.AudioError as e:
                    loaded.append(FileFailure(str(source), e.reason))
            waves = [x for x in loaded if isinstance(x, np.ndarray)]
            probs = iter(self._probabilities(waves))
            for source, x in zip(round_, loaded, strict=True):
                if isinstance(x, FileFailure):
                    yield x
                else:
                    seconds = x.shape[0] / self.sample_rate
                    yield FileResult(str(source), self.class_names, next(probs), seconds)


def expand_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[str | FileFailure]:
    """Command-line inputs as a list of sources: folders become their audio files, recursively
    and sorted; a folder without audio becomes a ``FileFailure``; ``"-"`` and everything else
    (missing files included, which fail when read) stay as given."""
    out: list[str | FileFailure] = []
    for path in paths:
        path = str(path)
        if path != STDIN and Path(path).is_dir():
            files = data.audio_files(Path(path))
            out += [str(f) for f in files] or [FileFailure(path, "no audio files in this folder")]
        else:
            out.append(path)
    return out


# ---------------------------------------------------------------------------------------------
# Command line: the table, the output file, the progress bar


def _row(
    kind: str,
    source: str,
    start: float | None,
    end: float | None,
    probabilities: np.ndarray | None,
    class_names: Sequence[str],
    reason: str | None = None,
    status: str = "ok",
) -> dict[str, Any]:
    """One record of the output file; the same fields for files, segments and summaries."""
    row: dict[str, Any] = {
        "file": source,
        "kind": kind,
        "start": None if start is None else round(start, 3),
        "end": None if end is None else round(end, 3),
        "status": status,
        "emotion": None,
        "probability": None,
        "runner_up": None,
        "runner_up_probability": None,
        "probabilities": None,
        "reason": reason,
    }
    if probabilities is not None:
        ranking = _ranked(probabilities, class_names)
        row.update(
            emotion=ranking[0][0],
            probability=round(ranking[0][1], 6),
            runner_up=ranking[1][0],
            runner_up_probability=round(ranking[1][1], 6),
            probabilities={
                c: round(float(p), 6) for c, p in zip(class_names, probabilities, strict=True)
            },
        )
    return row


class _OutputFile:
    """``--output``: JSON Lines (``.jsonl``/``.ndjson``) or CSV (``.csv``), by extension."""

    FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}

    @classmethod
    def check(cls, path: str) -> None:
        if Path(path).suffix.lower() not in cls.FORMATS:
            raise ValueError(
                f"--output {path}: the extension picks the format; use one of "
                f"{', '.join(cls.FORMATS)}"
            )

    def __init__(self, path: str, class_names: Sequence[str]):
        self.format = self.FORMATS[Path(path).suffix.lower()]
        self.class_names = tuple(class_names)
        newline = "" if self.format == "csv" else None  # the csv module writes its own line ends
        self.file: IO[str] = open(path, "w", newline=newline)  # noqa: SIM115  (see close)
        if self.format == "csv":
            self.fields = [
                "file",
                "kind",
                "start",
                "end",
                "status",
                "emotion",
                "probability",
                "runner_up",
                "runner_up_probability",
                *(f"p_{c}" for c in self.class_names),
                "reason",
            ]
            self.csv = csv.DictWriter(self.file, self.fields)
            self.csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        if self.format == "jsonl":
            self.file.write(json.dumps(row) + "\n")
            return
        flat = {k: v for k, v in row.items() if k != "probabilities"}
        for c in self.class_names:
            flat[f"p_{c}"] = (row["probabilities"] or {}).get(c)
        self.csv.writerow({k: "" if v is None else v for k, v in flat.items()})

    def close(self) -> None:
        self.file.close()


class _Progress:
    """A one-line progress bar on standard error, cleared around each printed row."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done = total, enabled, 0
        self.started = time.monotonic()

    def clear(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")

    def draw(self) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} files"
            f"  {rate:.1f} files/s"
        )
        sys.stderr.flush()

    def advance(self) -> None:
        self.done += 1
        self.draw()


class _Table:
    """The readable table on standard output."""

    def __init__(self, class_names: Sequence[str], file_width: int, progress: _Progress):
        self.name_width = max(9, *(len(c) for c in class_names))
        self.file_width = max(4, min(file_width, 60))
        self.progress = progress

    def print(self, line: str) -> None:
        self.progress.clear()
        print(line, flush=True)
        self.progress.draw()

    def _file(self, source: str) -> str:
        w = self.file_width
        return source if len(source) <= w else "..." + source[-(w - 3) :]

    def _ranking(self, probabilities: np.ndarray, class_names: Sequence[str]) -> str:
        (top, p), (second, q) = _ranked(probabilities, class_names)[:2]
        n = self.name_width
        return f"{top:<{n}} {p:5.3f}  {second:<{n}} {q:5.3f}"

    def header(self) -> None:
        n = self.name_width
        head = f"{'emotion':<{n}} {'prob':>5}  {'runner-up':<{n}} {'prob':>5}"
        self.print(f"{'file':<{self.file_width}}  {head}")

    def file_row(self, result: FileResult | FileFailure) -> None:
        name = f"{self._file(result.source):<{self.file_width}}"
        if isinstance(result, FileFailure):
            self.print(f"{name}  ERROR: {result.reason}")
        else:
            self.print(f"{name}  {self._ranking(result.probabilities, result.class_names)}")

    def timeline_header(self, source: str) -> None:
        n = self.name_width
        self.print(f"{source}")
        self.print(
            f"  {'start':>8} {'end':>8}  {'emotion':<{n}} {'prob':>5}  {'runner-up':<{n}} "
            f"{'prob':>5}"
        )

    def segment_row(self, segment: Segment, class_names: Sequence[str]) -> None:
        times = f"  {segment.start:8.2f} {segment.end:8.2f}"
        if segment.probabilities is None:
            self.print(f"{times}  (skipped: {segment.skipped})")
        else:
            self.print(f"{times}  {self._ranking(segment.probabilities, class_names)}")

    def summary_row(self, result: FileResult | FileFailure, interrupted: bool = False) -> None:
        if isinstance(result, FileFailure):
            self.print(f"  ERROR: {result.reason}")
            return
        n = len(result.segments)
        note = ", interrupted" if interrupted else ""
        self.print(
            f"  summary ({result.seconds:.1f} s, {n - result.skipped} of {n} segments "
            f"classified{note}): {self._ranking(result.probabilities, result.class_names)}"
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serjax.predict",
        description="Emotion probabilities of audio files with a trained serjax model.",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="audio files (any format and rate soundfile reads), folders (searched "
        "recursively), or - for a WAV/FLAC stream on standard input",
    )
    parser.add_argument("--workdir", required=True, help="the training run's --workdir")
    parser.add_argument(
        "--checkpoint", default="best", help="best (default), latest or a saved step number"
    )
    parser.add_argument("--fold", help="the fold of a multi-fold (LOSO, k-fold) workdir")
    parser.add_argument(
        "--segment", type=float, help="cut each file into segments of this many seconds"
    )
    parser.add_argument(
        "--hop", type=float, help="seconds between segment starts (default: --segment)"
    )
    parser.add_argument(
        "--vad", action="store_true", help="skip segments quieter than --vad_db (energy gate)"
    )
    parser.add_argument(
        "--vad_db",
        type=float,
        default=DEFAULT_VAD_DB,
        help=f"energy gate threshold, RMS dBFS (default {DEFAULT_VAD_DB:g})",
    )
    parser.add_argument(
        "--output", help="also write every class probability to FILE.jsonl or FILE.csv"
    )
    parser.add_argument("--batch_size", type=int, help="rows per batch (default: the config's)")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on standard error (default: when it is a terminal and there are "
        "several files)",
    )
    return parser


def _segment_file(
    predictor: Predictor,
    source: str,
    args: argparse.Namespace,
    table: _Table,
    output: _OutputFile | None,
) -> tuple[FileResult | FileFailure, bool]:
    """Prints (and writes) one file's timeline as it is computed; returns its summary."""
    names = predictor.class_names
    # A live stream gets each segment's result as soon as it is read.
    live = source == STDIN and not stat.S_ISREG(os.fstat(sys.stdin.fileno()).st_mode)
    segments: list[Segment] = []
    interrupted = False
    table.timeline_header(source)
    try:
        for seg in predictor.iter_segments(
            source,
            args.segment,
            args.hop,
            vad_db=args.vad_db if args.vad else None,
            batch_size=1 if live else None,
        ):
            segments.append(seg)
            table.segment_row(seg, names)
            if output:
                status = "skipped" if seg.skipped else "ok"
                output.write(
                    _row(
                        "segment",
                        source,
                        seg.start,
                        seg.end,
                        seg.probabilities,
                        names,
                        seg.skipped,
                        status,
                    )
                )
        result: FileResult | FileFailure = predictor.summarize(source, segments)
    except KeyboardInterrupt:
        interrupted = True
        try:
            result = predictor.summarize(source, segments)
        except data.AudioError as e:
            result = FileFailure(source, f"interrupted: {e.reason}")
    except data.AudioError as e:
        result = FileFailure(source, e.reason)
    table.summary_row(result, interrupted)
    return result, interrupted


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status: 0, 1 if any input failed, 2 for an unusable
    workdir or bad arguments, 130 when interrupted."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.segment is None and (args.hop is not None or args.vad):
        parser.error("--hop and --vad act on segments: give --segment too")
    if args.segment is not None and (args.segment <= 0 or (args.hop is not None and args.hop <= 0)):
        parser.error("--segment and --hop must be positive")
    if args.output:
        try:
            _OutputFile.check(args.output)
        except ValueError as e:
            parser.error(str(e))
    try:
        predictor = Predictor.from_workdir(
            args.workdir, args.checkpoint, fold=args.fold, batch_size=args.batch_size
        )
        if args.segment is not None:
            # Checked before reading any input: a bad segment length is a usage error.
            predictor._segment_samples(args.segment, args.hop or args.segment)
    except (PredictorError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    names = predictor.class_names
    sources = expand_inputs(args.paths)
    shown = [s.source if isinstance(s, FileFailure) else s for s in sources]
    several = len(sources) > 1
    progress = _Progress(
        len(sources), several and sys.stderr.isatty() if args.progress is None else args.progress
    )
    table = _Table(names, max(len(s) for s in shown), progress)
    output = _OutputFile(args.output, names) if args.output else None
    failed = 0
    interrupted = False
    try:
        if args.segment is None:
            table.header()
            for result in predictor.predict_files(sources):
                table.file_row(result)
                failed += isinstance(result, FileFailure)
                if output:
                    output.write(_file_record(result, names))
                progress.advance()
        else:
            for source in sources:
                if isinstance(source, FileFailure):
                    result: FileResult | FileFailure = source
                    table.print(f"{source.source}\n  ERROR: {source.reason}")
                else:
                    result, interrupted = _segment_file(predictor, source, args, table, output)
                failed += isinstance(result, FileFailure)
                if output:
                    output.write(_file_record(result, names, kind="summary"))
                progress.advance()
                if interrupted:
                    break
    except KeyboardInterrupt:
        interrupted = True
    except BrokenPipeError:
        # The reader of the table went away (``| head``): stop quietly, as Unix tools do, and
        # let the final flush at exit go nowhere instead of failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1 if failed else 0
    finally:
        progress.clear()
        if output:
            output.close()
    if failed:
        print(f"{failed} of {len(sources)} inputs failed", file=sys.stderr)
    if interrupted:
        return 130
    return 1 if failed else 0


def _file_record(
    result: FileResult | FileFailure, names: Sequence[str], kind: str = "file"
) -> dict[str, Any]:
    if isinstance(result, FileFailure):
        return _row(kind, result.source, None, None, None, names, result.reason, "error")
    return _row(kind, result.source, 0.0, result.seconds, result.probabilities, names)


if __name__ == "__main__":
    sys.exit(main())
