"""The predictor: a trained run's model and preprocessing, applied to new audio.

Everything the model needs travels with the checkpoint: the training config (feature settings,
preprocessing, model hyper-parameters) and the class names are saved in its metadata, so a
workdir describes itself. Audio goes through training's own preprocessing
(:class:`serjax.data.Preprocessing`) and then through :func:`serjax.forward.predict_step`, the
very function the training evaluation runs (dsp features and model in one XLA program), so the
probabilities match the training report's. Only the model's item of the checkpoint is read;
nothing of training (optimizer, writers) is imported.

Many inputs are padded into full batches whose lengths come from a fixed ladder of octaves
(0.1 s, 0.2 s, 0.4 s, ...), so XLA compiles a handful of shapes whatever the input; a single
input runs alone. Long recordings can be cut into overlapping segments (``segment``/``hop``):
the file is read and resampled in blocks, segments are batched, and memory stays bounded however
long the file is. Compilation dominates a short run on a CPU; setting JAX's
``JAX_COMPILATION_CACHE_DIR`` keeps the compiled programs between runs.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import soxr
from flax import nnx

from serjax import data, forward
from serjax.data.audio import SILENCE_PEAK
from serjax.data.preprocess import Preprocessing
from serjax.data.stream import (
    DEFAULT_VAD_DB,
    STDIN,
    SegmentCutter,
    mono_blocks,
    open_audio,
    rms_db,
)
from serjax.features import FeatureSpec, functionals_of
from serjax.models.functionals import standardisation_statistics
from serjax.predict.results import FileFailure, FileResult, Segment
from serjax.predict.run import load_run

__all__ = ["DEFAULT_VAD_DB", "Predictor", "expand_inputs"]

# Blocks read while streaming: a quarter of a second keeps live input responsive, and is large
# enough that per-block overhead is negligible.
_BLOCK_SECONDS = 0.25
# Whole-file inputs decoded ahead of one round of batching: bounds memory on huge folders while
# leaving enough files per length bucket to fill batches.
_FILES_PER_ROUND = 256
# Jitted predict steps by (config, number of classes); see Predictor.__init__.
_COMPILED: dict[tuple[str, int], Callable] = {}


def _length_ladder(longest: int, unit: int) -> tuple[int, ...]:
    """Padded lengths ``unit`` times 1, 2, 4, 8, ..., up to one that holds ``longest``.

    On a CPU, compiling a shape costs about as much as running hundreds of utterances, so
    octave-spaced lengths (a handful for any corpus) beat a finer ladder that pads less.
    """
    ladder = [unit]
    while ladder[-1] < longest:
        ladder.append(2 * ladder[-1])
    return tuple(ladder)


@dataclasses.dataclass(frozen=True)
class _Pending:
    """A cut segment waiting for its batch: the model input, or why it is skipped."""

    start: float
    end: float
    wave: np.ndarray | None
    reason: str | None


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
        self.preprocessing = Preprocessing.from_config(config)
        self.sample_rate = self.preprocessing.sample_rate
        self.min_samples = self.preprocessing.min_samples
        self._graphdef = graphdef
        self._state = jax.device_put(state)
        key = (json.dumps(config.to_dict(), sort_keys=True, default=str), len(self.class_names))
        if key not in _COMPILED:
            # Equal configs build structurally identical models, so a second predictor (a
            # reloaded checkpoint, or the command line inside a running program) reuses the
            # compiled programs instead of compiling every shape again.
            _COMPILED[key] = forward.jitted_predict_step(graphdef, FeatureSpec.from_config(config))
        self._predict_step = _COMPILED[key]

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
        run = load_run(workdir, checkpoint, fold=fold)
        return cls(
            run.config,
            run.class_names,
            run.graphdef,
            run.state,
            batch_size=batch_size,
            checkpoint=str(run.checkpoint),
        )

    def adapted(self, waveforms: Sequence[np.ndarray]) -> Predictor:
        """This predictor adapted to one speaker: for a run on utterance functionals
        (``features.kind="functionals"``), the model's standardisation statistics replaced by
        those of ``waveforms``' functionals (``models.functionals.standardisation_statistics``),
        as training does for each speaker with ``features.standardise="speaker"``.

        Without adaptation such a model standardises with the statistics it was saved with
        (the average training speaker's, or the training set's). Adapting needs several
        recordings of the same person, ideally of varied emotions; the more, the closer to
        the speaker-standardised figures of the training report.

        Args:
          waveforms: preprocessed recordings of one speaker (from :meth:`load` or
            :meth:`prepare`).

        Raises:
          ValueError: the run is not on functionals, or no waveform is given.
        """
        if self.config.features.kind != "functionals":
            raise ValueError(
                f"only runs on utterance functionals adapt to a speaker; this run's "
                f"features.kind is {self.config.features.kind!r}"
            )
        if not waveforms:
            raise ValueError("adapting to a speaker needs at least one recording")
        vectors = functionals_of(list(waveforms), FeatureSpec.from_config(self.config))
        model = nnx.merge(self._graphdef, jax.device_get(self._state))
        model.standardiser.set(*standardisation_statistics(vectors))
        graphdef, state = nnx.split(model)
        return Predictor(
            self.config,
            self.class_names,
            graphdef,
            state,
            batch_size=self.batch_size,
            checkpoint=self.checkpoint,
        )

    @property
    def label_mapping(self) -> dict[str, str]:
        """Corpus labels merged into the model's classes during training (e.g. calm→neutral)."""
        return dict(self.config.data.label_mapping)

    # -- preprocessing ------------------------------------------------------------------------
    def prepare(self, waveform: Any, sample_rate: int, *, name: str = "waveform") -> np.ndarray:
        """A waveform as the model sees it: :meth:`serjax.data.Preprocessing.from_array`, the
        preprocessing training applies to its files.

        Args:
          waveform: ``[T]`` mono or ``[T, C]`` multi-channel samples (soundfile's layout),
            float in [-1, 1] or integer PCM.
          sample_rate: its rate, Hz; resampled to the model's with soxr when different.
          name: how errors refer to it.

        Raises:
          AudioError: empty, non-finite, silent or too short.
          ValueError: not 1-D or ``[T, C]``.
        """
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
        ladder = _length_ladder(max(lengths), max(self.sample_rate // 10, 1))
        groups: dict[int, list[int]] = {}
        for i, n in enumerate(lengths):
            length = self.preprocessing.fixed_samples or data.bucket_length(n, ladder)
            groups.setdefault(length, []).append(i)
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
        prep = self.preprocessing
        limit = prep.max_samples
        length = prep.fixed_samples or (min(seg_len, limit) if limit else seg_len)
        cutter = SegmentCutter(seg_len, hop_len)
        pending: list[_Pending] = []
        peak = 0.0
        with open_audio(source) as f:
            resampler = None
            if f.samplerate != self.sample_rate:
                resampler = soxr.ResampleStream(
                    f.samplerate, self.sample_rate, 1, dtype="float32", quality=prep.quality
                )
            blocks = mono_blocks(f, name, max(256, round(f.samplerate * _BLOCK_SECONDS)))
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
            raise data.AudioError(source, self.preprocessing.too_short(cutter.total))
        pending += [self._segment_input(start, x, vad_db, name) for start, x in cutter.finish()]
        yield from self._classify(pending, length, batch_size)

    def _segment_input(
        self, start: int, x: np.ndarray, vad_db: float | None, name: str
    ) -> _Pending:
        """A cut segment, preprocessed as training preprocesses a file, or why it is skipped."""
        wave, reason = None, None
        if x.shape[0] < self.min_samples:
            reason = self.preprocessing.too_short(x.shape[0])
        elif np.abs(x).max() < SILENCE_PEAK:
            reason = "silent"
        elif vad_db is not None and (level := rms_db(x)) < vad_db:
            reason = f"below the energy gate ({level:.1f} dBFS < {vad_db:g} dBFS)"
        else:
            try:
                wave = self.preprocessing.finish(x, name)
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
