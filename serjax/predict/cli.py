"""The command line of inference: ``python -m serjax.predict --workdir RUN PATH ...``.

Prints a table (or a timeline per file with ``--segment``) on standard output, optionally
writes every class probability to a JSON Lines or CSV file, and shows a progress bar on
standard error. JAX and the model load only after the arguments parse, so ``--help`` and usage
errors answer at once. An input sampled below the model's rate is warned about once per run on
standard error, and every row of such an input says ``upsampled_from`` (its rate).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from serjax.data.audio import AudioError
from serjax.data.stream import DEFAULT_VAD_DB, STDIN, is_live_stdin
from serjax.predict.results import (
    FileFailure,
    FileResult,
    LowSampleRateWarning,
    PredictorError,
    Segment,
    ranked,
)
from serjax.progress import StatusLine

__all__ = ["main"]


def _row(
    kind: str,
    source: str,
    start: float | None,
    end: float | None,
    probabilities: np.ndarray | None,
    class_names: Sequence[str],
    reason: str | None = None,
    status: str = "ok",
    upsampled_from: int | None = None,
) -> dict[str, Any]:
    """One record of the output file; the same fields for files, segments and summaries.

    ``upsampled_from`` is the input's sample rate when it was below the model's, else None.
    """
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
        "upsampled_from": upsampled_from,
    }
    if probabilities is not None:
        ranking = ranked(probabilities, class_names)
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
                "upsampled_from",
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
    """A progress bar of files on standard error, cleared around each printed row."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done = total, 0
        self.line = StatusLine(sys.stderr, enabled=enabled)
        self.started = time.monotonic()

    def clear(self) -> None:
        self.line.clear()

    def draw(self) -> None:
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        self.line.show(
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} files"
            f"  {rate:.1f} files/s",
            force=True,
        )

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

    def print_error(self, line: str) -> None:
        self.progress.clear()
        print(line, file=sys.stderr, flush=True)
        self.progress.draw()

    def _file(self, source: str) -> str:
        w = self.file_width
        return source if len(source) <= w else "..." + source[-(w - 3) :]

    def _ranking(self, probabilities: np.ndarray, class_names: Sequence[str]) -> str:
        (top, p), (second, q) = ranked(probabilities, class_names)[:2]
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
        "--no-trim",
        "--no_trim",
        dest="trim",
        action="store_false",
        help="keep leading and trailing non-speech (trimmed by default, whatever the run's "
        "config; turn off with --keep-dc too to reproduce a run trained without either)",
    )
    parser.add_argument(
        "--keep-dc",
        "--keep_dc",
        dest="remove_dc",
        action="store_false",
        help="keep the DC offset (removed by default, whatever the run's config)",
    )
    parser.add_argument(
        "--block_seconds",
        type=float,
        default=None,
        help="without --segment, files longer than this are classified in blocks of this "
        "length, combined by duration, so memory stays bounded (default 30)",
    )
    parser.add_argument(
        "--adapt",
        action="store_true",
        help="runs standardised by speaker (functionals, or frame_standardise='speaker'): "
        "treat all the given files as one speaker and standardise with their statistics "
        "(default: the statistics saved with the model)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on standard error (default: when it is a terminal and there are "
        "several files)",
    )
    return parser


def _segment_file(
    predictor,
    source: str,
    args: argparse.Namespace,
    table: _Table,
    output: _OutputFile | None,
) -> tuple[FileResult | FileFailure, bool]:
    """Prints (and writes) one file's timeline as it is computed; returns its summary."""
    names = predictor.class_names
    # A live stream gets each segment's result as soon as it is read.
    live = source == STDIN and is_live_stdin()
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
                        predictor.upsampled_from(source),
                    )
                )
        result: FileResult | FileFailure = predictor.summarize(source, segments)
    except KeyboardInterrupt:
        interrupted = True
        try:
            result = predictor.summarize(source, segments)
        except AudioError as e:
            result = FileFailure(source, f"interrupted: {e.reason}")
    except AudioError as e:
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
    # Imported after parsing, so that --help and usage errors answer without loading JAX.
    from serjax.predict.predictor import Predictor, expand_inputs

    try:
        options = {"trim_silence": args.trim, "remove_dc": args.remove_dc}
        if args.block_seconds is not None:
            options["block_seconds"] = args.block_seconds
        predictor = Predictor.from_workdir(
            args.workdir, args.checkpoint, fold=args.fold, batch_size=args.batch_size, **options
        )
        if args.segment is not None:
            # Checked before reading any input: a bad segment length is a usage error.
            predictor._segment_samples(args.segment, args.hop or args.segment)
    except (PredictorError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    names = predictor.class_names
    sources = expand_inputs(args.paths)
    if args.adapt:
        try:
            predictor, used = _adapted(predictor, sources)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        # Results do not show it: say once what the statistics came from.
        print(f"adapted to {used} recording(s), taken as one speaker", file=sys.stderr)
    shown = [s.source if isinstance(s, FileFailure) else s for s in sources]
    several = len(sources) > 1
    progress = _Progress(
        len(sources), several and sys.stderr.isatty() if args.progress is None else args.progress
    )
    table = _Table(names, max(len(s) for s in shown), progress)
    output = _OutputFile(args.output, names) if args.output else None
    failed = 0
    interrupted = False

    def show_warning(message, *_args, **_kwargs) -> None:
        # One plain line, not a source location.
        table.print_error(f"warning: {message}")

    restore = contextlib.ExitStack()
    restore.enter_context(warnings.catch_warnings())
    # The predictor warns once per run itself; "always" keeps Python from hiding a warning
    # because an earlier run in the same process showed the same text.
    warnings.simplefilter("always", LowSampleRateWarning)
    warnings.showwarning = show_warning
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
        restore.close()
        progress.clear()
        if output:
            output.close()
    if failed:
        print(f"{failed} of {len(sources)} inputs failed", file=sys.stderr)
    if interrupted:
        return 130
    return 1 if failed else 0


def _adapted(predictor, sources):
    """The predictor adapted to every usable file among ``sources`` (the unusable ones fail
    again, with their reason, when they are predicted), and how many files that was."""
    waves, reasons = [], []
    for source in sources:
        if isinstance(source, FileFailure):
            reasons.append(source.reason)
        elif str(source) == "-":
            reasons.append("standard input cannot be adapted to (give files)")
        else:
            try:
                waves.append(predictor.load(source))
            except AudioError as e:
                reasons.append(str(e))
    if not waves and reasons:
        raise ValueError(f"--adapt found no readable recording; {reasons[0]}")
    return predictor.adapted(waves), len(waves)


def _file_record(
    result: FileResult | FileFailure, names: Sequence[str], kind: str = "file"
) -> dict[str, Any]:
    if isinstance(result, FileFailure):
        return _row(kind, result.source, None, None, None, names, result.reason, "error")
    return _row(
        kind,
        result.source,
        0.0,
        result.seconds,
        result.probabilities,
        names,
        upsampled_from=result.upsampled_from,
    )


if __name__ == "__main__":
    sys.exit(main())
