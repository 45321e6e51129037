"""The predictor: a trained run's model and preprocessing, applied to new audio.

Everything the model needs travels with the checkpoint: the training config (feature settings,
preprocessing, model hyper-parameters) and the class names are saved in its metadata, so a
workdir describes itself. Audio goes through training's own preprocessing
(:class:`serjax.data.Preprocessing`) and then through :func:`serjax.forward.predict_step`, the
very function the training evaluation runs (dsp features and model in one XLA program), so the
probabilities match the training report's. Only the model's item of the checkpoint is read;
nothing of training (optimizer, writers) is imported.

Inference trims leading and trailing non-speech and removes the DC offset whatever the run's
config says (``trim_silence``/``remove_dc`` turn them off): for a run trained with both (the
base config's default) this is training's preprocessing; for one trained without (older runs,
and the reference configs whose figures were measured without), turning both off reproduces
its ``results.json``.

Many inputs are padded into batches whose lengths come from a ladder of octaves (0.1 s, 0.2 s,
...), so XLA compiles a handful of shapes; a lone input runs alone; a batch holds at most 128 s
of padded audio. A whole file longer than ``block_seconds`` is read in blocks of that length,
each classified as a file, and combined by duration (as a timeline's summary is), so memory is
bounded and a long file is never padded together with short ones. Long recordings can also be
cut into overlapping segments (``segment``/``hop``), read and resampled as a stream. Setting
JAX's ``JAX_COMPILATION_CACHE_DIR`` keeps compiled programs between runs.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from serjax import data, forward
from serjax.data.preprocess import Preprocessing
from serjax.data.stream import DEFAULT_VAD_DB, STDIN, mono_blocks, open_audio
from serjax.features import FeatureSpec
from serjax.predict.results import (
    FileFailure,
    FileResult,
    LowSampleRateWarning,
    Segment,
    duration_weighted,
)
from serjax.predict.run import load_run
from serjax.predict.timeline import Pending, classify, cut_stream, read_head

__all__ = ["DEFAULT_BLOCK_SECONDS", "DEFAULT_VAD_DB", "Predictor", "expand_inputs"]

# Blocks read while streaming: a quarter of a second keeps live input responsive, and is large
# enough that per-block overhead is negligible.
_READ_SECONDS = 0.25
# Whole-file inputs decoded ahead of one round of batching: bounds memory on huge folders while
# leaving enough files per length bucket to fill batches.
_FILES_PER_ROUND = 256
# Whole files longer than this are classified block by block (see the module's description).
DEFAULT_BLOCK_SECONDS = 30.0
# The most padded audio in one batch: bounds a batch's memory whatever the lengths, while short
# clips still fill the configured batch size (32 x 3.2 s).
_BATCH_SECONDS = 128.0


class Predictor:
    """A trained model with training's preprocessing, ready for audio at any rate.

    Build one with :meth:`from_workdir`. Probabilities are float32 in :attr:`class_names`
    order.

    Args:
      config: the training config (as saved in the checkpoint).
      class_names: the model's classes, in output order.
      graphdef, state: the split model (``nnx.split``) in eval mode.
      batch_size: most rows per batch (default: the config's ``train.eval_batch_size``).
      checkpoint: where the weights came from, for messages.
      trim_silence: cut leading and trailing non-speech (default on, whatever the run's
        config says; :class:`serjax.data.Preprocessing`).
      remove_dc: remove the DC offset (default on, whatever the run's config says).
      block_seconds: whole files longer than this are classified in blocks of this length
        (the duration-weighted mean of the blocks'), so that memory stays bounded.
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
        trim_silence: bool = True,
        remove_dc: bool = True,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
    ):
        self.config = config
        self.class_names = tuple(class_names)
        self.checkpoint = checkpoint
        self.batch_size = int(batch_size or config.train.eval_batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        self.preprocessing = dataclasses.replace(
            Preprocessing.from_config(config), trim_silence=trim_silence, remove_dc=remove_dc
        )
        self.sample_rate = self.preprocessing.sample_rate
        self.min_samples = self.preprocessing.min_samples
        if not block_seconds * self.sample_rate >= self.min_samples:
            raise ValueError(f"block_seconds must hold one analysis window, got {block_seconds}")
        self.block_seconds = float(block_seconds)
        self._warned_rate = False
        # Inputs read below the model's rate, by name: their results say so.
        self._low_rates: dict[str, int] = {}
        self._graphdef = graphdef
        self._state = jax.device_put(state)
        self._predict_step = forward.jitted_predict_step(graphdef, FeatureSpec.from_config(config))

    @classmethod
    def from_workdir(
        cls,
        workdir: str | os.PathLike[str],
        checkpoint: str | int = "best",
        *,
        fold: str | None = None,
        batch_size: int | None = None,
        **options: Any,
    ) -> Predictor:
        """The model of a training workdir.

        Args:
          workdir: the training run's ``--workdir``.
          checkpoint: ``"best"`` (by validation UA), ``"latest"`` or a saved step number.
          fold: for a multi-fold (LOSO, k-fold) workdir, the fold's name.
          batch_size: most rows per batch.
          **options: ``trim_silence``, ``remove_dc``, ``block_seconds`` (see the class).

        Raises:
          PredictorError: no such workdir, fold or checkpoint; metadata without the config; or
            weights that do not fit the model the saved config describes. The workdir is only
            read, never written.
        """
        run = load_run(workdir, checkpoint, fold=fold)
        return cls(
            run.config,
            run.class_names,
            run.graphdef,
            run.state,
            batch_size=batch_size,
            checkpoint=str(run.checkpoint),
            **options,
        )

    def adapted(self, waveforms: Sequence[np.ndarray]) -> Predictor:
        """This predictor adapted to one speaker's recordings: see
        :func:`serjax.predict.speaker.adapt` (runs standardised by speaker only)."""
        from serjax.predict import speaker

        return speaker.adapt(self, waveforms)

    @property
    def label_mapping(self) -> dict[str, str]:
        """Corpus labels merged into the model's classes during training (e.g. calm→neutral)."""
        return dict(self.config.data.label_mapping)

    # -- preprocessing ------------------------------------------------------------------------
    def _note_rate(self, rate: int, name: str) -> None:
        """Records an input's rate when it is below the model's, warning once per predictor."""
        if rate >= self.sample_rate:
            self._low_rates.pop(name, None)
            return
        self._low_rates[name] = int(rate)
        if not self._warned_rate:
            self._warned_rate = True
            warnings.warn(
                LowSampleRateWarning(
                    f"{name} is sampled at {rate} Hz, below the model's {self.sample_rate} Hz: "
                    f"it is upsampled, but holds nothing above {rate / 2:g} Hz, where the "
                    f"model's training audio did, so expect lower accuracy (other such inputs "
                    "are not warned about again; their results say upsampled_from)"
                ),
                stacklevel=3,
            )

    def upsampled_from(self, source: str | os.PathLike[str]) -> int | None:
        """The sample rate ``source`` was read at (as last read) when below the model's."""
        return self._low_rates.get(str(source))

    def prepare(self, waveform: Any, sample_rate: int, *, name: str = "waveform") -> np.ndarray:
        """A waveform as the model sees it: :meth:`serjax.data.Preprocessing.from_array`, the
        preprocessing training applies to its files (with this predictor's trimming and DC
        removal). A rate below the model's is warned about once (``LowSampleRateWarning``).

        Args:
          waveform: ``[T]`` mono or ``[T, C]`` multi-channel samples (soundfile's layout),
            float in [-1, 1] or integer PCM.
          sample_rate: its rate, Hz; resampled to the model's with soxr when different.
          name: how errors refer to it.

        Raises:
          AudioError: empty, non-finite, silent or too short.
          ValueError: not 1-D or ``[T, C]``.
        """
        self._note_rate(sample_rate, name)
        return self.preprocessing.from_array(waveform, sample_rate, name)

    def load(self, source: str | os.PathLike[str]) -> np.ndarray:
        """A file (or ``"-"``: standard input) decoded and preprocessed as training does.

        Raises:
          AudioError: missing, empty, undecodable, non-finite, silent or too short.
        """
        if str(source) != STDIN:
            return self.preprocessing.load(source)
        with open_audio(STDIN) as f:
            rate = f.samplerate
            blocks = list(mono_blocks(f, STDIN, 1 << 16))
        if not blocks:
            raise data.AudioError(STDIN, "no audio samples")
        return self.prepare(np.concatenate(blocks), rate, name=STDIN)

    # -- the model ----------------------------------------------------------------------------
    def _rows(self, length: int, wanted: int) -> int:
        """Rows per batch of ``length`` samples: ``wanted``, fewer when they would exceed
        ``_BATCH_SECONDS`` of audio (at least one)."""
        return max(1, min(wanted, round(_BATCH_SECONDS * self.sample_rate) // length))

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
            probs = self._predict_step(self._state, batch.waveforms, batch.lengths, batch.mask)
            out.append(np.asarray(probs)[: len(chunk)])
        return np.concatenate(out).astype(np.float32, copy=False)

    def _probabilities(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities ``[N, K]`` of preprocessed waveforms, batched by length bucket."""
        if not waves:
            return np.zeros((0, len(self.class_names)), np.float32)
        lengths = [w.shape[0] for w in waves]
        ladder = data.length_ladder(max(lengths), max(self.sample_rate // 10, 1))
        groups: dict[int, list[int]] = {}
        for i, n in enumerate(lengths):
            length = self.preprocessing.fixed_samples or data.bucket_length(n, ladder)
            groups.setdefault(length, []).append(i)
        # A lone input runs alone (the real-time case); anything more in full batches, so that
        # each length compiles once.
        wanted = 1 if len(waves) == 1 else self.batch_size
        out = np.zeros((len(waves), len(self.class_names)), np.float32)
        for length, index in groups.items():
            out[index] = self._run([waves[i] for i in index], length, self._rows(length, wanted))
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

    # -- timelines ----------------------------------------------------------------------------
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
        with open_audio(source) as f:
            self._note_rate(f.samplerate, str(source))
            blocks = mono_blocks(f, str(source), max(256, round(f.samplerate * _READ_SECONDS)))
            yield from self._batched(
                cut_stream(
                    blocks, f.samplerate, self.preprocessing, seg_len, hop_len, vad_db, str(source)
                ),
                seg_len,
                batch_size,
            )

    def _batched(
        self, pending: Iterable[Pending], seg_len: int, batch_size: int
    ) -> Iterator[Segment]:
        """Segments of ``seg_len`` samples classified a batch at a time, in order."""
        # Every segment is padded to the same length, so one shape is compiled per timeline.
        limit = self.preprocessing.max_samples
        length = self.preprocessing.fixed_samples or (min(seg_len, limit) if limit else seg_len)
        rows = self._rows(length, batch_size)
        return classify(pending, lambda waves: self._run(waves, length, rows), rows)

    def summarize(self, source: str, segments: Sequence[Segment]) -> FileResult:
        """The utterance-level result of a timeline: the mean of its classified segments,
        each weighted by its duration (so a short tail counts for what it lasts).

        Raises:
          AudioError: no segment, or every segment skipped.
        """
        if not segments:
            raise data.AudioError(source, "no segment was read")
        if all(s.probabilities is None for s in segments):
            reasons = sorted({(s.skipped or "").split(" (")[0] for s in segments})
            raise data.AudioError(
                source,
                f"no segment to classify: all {len(segments)} were skipped ({'; '.join(reasons)})",
            )
        return self._result(source, duration_weighted(segments), segments[-1].end, segments)

    def _result(
        self, source: str, probs: np.ndarray, seconds: float, segments: Sequence[Segment] = ()
    ) -> FileResult:
        upsampled = self.upsampled_from(source)
        return FileResult(source, self.class_names, probs, seconds, tuple(segments), upsampled)

    # -- files --------------------------------------------------------------------------------
    def _whole(self, source: str | os.PathLike[str]) -> FileResult | np.ndarray:
        """A whole file preprocessed; or, for a file longer than ``block_seconds`` (unless the
        run cuts every input itself), its result classified block by block.

        Raises:
          AudioError: the file cannot be used.
        """
        name, prep = str(source), self.preprocessing
        with open_audio(source) as f:
            rate, blocks = f.samplerate, mono_blocks(f, name, 1 << 16)
            limit = np.inf if prep.fixed_samples or prep.max_samples else self.block_seconds * rate
            self._note_rate(rate, name)
            if name != STDIN and f.frames > limit:
                return self._in_blocks(name, blocks, rate)
            if name == STDIN:  # its length is known once read
                head, more = read_head(blocks, limit)
                if more:
                    return self._in_blocks(name, itertools.chain(head, blocks), rate)
        if name != STDIN:
            return prep.load(source)  # as training decodes it
        if not head:
            raise data.AudioError(STDIN, "no audio samples")
        return prep.from_array(np.concatenate(head), rate, STDIN)

    def _in_blocks(self, name: str, blocks: Iterable[np.ndarray], rate: int) -> FileResult:
        """A long recording's result: blocks of ``block_seconds``, each classified as a file,
        combined by duration (:meth:`summarize`)."""
        block = round(self.block_seconds * self.sample_rate)
        pending = cut_stream(blocks, rate, self.preprocessing, block, block, None, name)
        return self.summarize(name, list(self._batched(pending, block, self.batch_size)))

    def predict_file(
        self,
        path: str | os.PathLike[str],
        segment: float | None = None,
        hop: float | None = None,
        *,
        vad_db: float | None = None,
    ) -> FileResult:
        """The prediction for one file (``"-"``: standard input).

        Without ``segment`` the whole file is one utterance, preprocessed as in training (a
        file longer than ``block_seconds`` is classified in blocks; its ``segments`` are the
        blocks). With ``segment`` (and ``hop``, default ``segment``) seconds the result also
        holds the timeline (see :meth:`iter_segments`), and its probabilities are the
        duration-weighted mean over the classified segments.

        Raises:
          AudioError: the file cannot be used (the exception names it and says why).
        """
        if segment is None:
            if hop is not None or vad_db is not None:
                raise ValueError("hop and vad_db need segment")
            x = self._whole(path)
            if isinstance(x, FileResult):
                return x
            seconds = x.shape[0] / self.sample_rate
            return self._result(str(path), self._probabilities([x])[0], seconds)
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

        Whole files are decoded a few hundred at a time and batched by length bucket (files
        longer than ``block_seconds`` are classified on their own, in blocks); segmented files
        are processed one after the other, their segments batched. A ``FileFailure`` among
        ``sources`` (from :func:`expand_inputs`) is passed through.
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
            loaded: list[FileFailure | FileResult | np.ndarray] = []
            for source in round_:
                if isinstance(source, FileFailure):
                    loaded.append(source)
                    continue
                try:
                    loaded.append(self._whole(source))
                except data.AudioError as e:
                    loaded.append(FileFailure(str(source), e.reason))
            waves = [x for x in loaded if isinstance(x, np.ndarray)]
            probs = iter(self._probabilities(waves))
            for source, x in zip(round_, loaded, strict=True):
                if isinstance(x, np.ndarray):
                    yield self._result(str(source), next(probs), x.shape[0] / self.sample_rate)
                else:
                    yield x


def expand_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[str | FileFailure]:
    """Command-line inputs as a list of sources: folders become their audio files, recursively
    and sorted (see ``data.list_audio``), then a ``FileFailure`` for each file left out with a
    reason (an unsupported format); a folder with neither becomes a ``FileFailure``; ``"-"`` and
    everything else (missing files included, which fail when read) stay as given."""
    out: list[str | FileFailure] = []
    for path in paths:
        path = str(path)
        if path != STDIN and Path(path).is_dir():
            listing = data.list_audio(path)
            out += [str(f) for f in listing.files] + [
                FileFailure(str(f), reason) for f, reason in listing.skipped
            ] or [FileFailure(path, "no audio files in this folder")]
        else:
            out.append(path)
    return out
