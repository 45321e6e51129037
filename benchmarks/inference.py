"""Inference speed of a trained model on this machine: real-time factor, throughput, start-up.

Five figures, each printed with what it measures:

  import time        ``from serjax.predict import Predictor`` in a fresh interpreter (median of
                     5), beside the same interpreter also importing what inference used to pull
                     in before it stopped importing training (``serjax.train``, whose import
                     brings the writers, tensorboardX and matplotlib); the figure of the
                     earlier layout, measured once the same way, is printed beside them;
  real-time factor   ``Predictor.predict`` on one 3 s clip (after compilation): wall-clock
                     seconds per second of audio, median of ``--repeats`` calls, so below 1 is
                     faster than real time;
  folder throughput  ``Predictor.predict_files`` over every Emo-DB file
                     ($SERJAX_DATA_DIR/emodb/wav, or ``--data_dir``), decoding included: a cold
                     pass (every length bucket compiled on the way) and a warm pass;
  long recording     a 5-minute file as a timeline of 2 s segments every 1 s, read in blocks;
  first result       ``python -m serjax.predict`` on the 3 s clip as a subprocess: seconds from
                     starting the command to its result row (imports, checkpoint restore and
                     compilation included), and to its exit; without JAX's persistent
                     compilation cache, then with an empty one, then with the one it filled.

It needs a trained workdir: ``--workdir`` names one, otherwise the smoke config is trained into
a temporary folder first (about half a minute). Without Emo-DB the throughput figure is skipped
with a message.

    python benchmarks/inference.py [--workdir RUN] [--data_dir DIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import soundfile as sf

from serjax import config_lib, experiments
from serjax.data import synthetic
from serjax.predict import FileFailure, Predictor, expand_inputs

ROOT = Path(__file__).resolve().parents[1]
# ``import serjax.predict`` when serjax.predict imported serjax.train (commit 12274e2), median
# of 5 fresh interpreters on the 2-core CPU of the README's figures at load average 1.7 (the
# same measurement gave 1.14 s for ``from serjax.predict import Predictor`` then).
EARLIER_IMPORT_SECONDS = 1.5


def _import_seconds(statement: str, repeats: int = 5) -> float:
    """Median wall time of ``statement`` in fresh interpreters (interpreter start excluded)."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def import_time() -> None:
    inference = _import_seconds("from serjax.predict import Predictor")
    with_training = _import_seconds("from serjax.predict import Predictor; import serjax.train")
    print(
        f"import time: serjax.predict {inference:.2f} s; with serjax.train as well "
        f"{with_training:.2f} s ({with_training / inference:.2f}x); earlier layout "
        f"{EARLIER_IMPORT_SECONDS:.1f} s"
    )


def _clip(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """A synthetic utterance (anger) of ``seconds`` seconds."""
    rng = np.random.default_rng(seed)
    return synthetic.synthesize_utterance(2, speaker=0, sample_rate=rate, seconds=seconds, rng=rng)


def real_time_factor(predictor: Predictor, clip: np.ndarray, rate: int, repeats: int) -> None:
    start = time.perf_counter()
    predictor.predict(clip, rate)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict(clip, rate)
        times.append(time.perf_counter() - start)
    seconds = clip.shape[0] / rate
    median = statistics.median(times)
    rtf = median / seconds
    print(f"real-time factor, one {seconds:.0f} s clip (predict, after compilation):")
    print(
        f"  median {median * 1e3:.1f} ms per call over {repeats} calls -> RTF {rtf:.4f}"
        f" ({1 / rtf:.0f}x faster than real time); best {min(times) * 1e3:.1f} ms"
    )
    print(f"  first call, compilation included: {first:.2f} s")


def folder_throughput(predictor: Predictor, folder: Path) -> None:
    sources = expand_inputs([folder])
    print(
        f"folder throughput, {len(sources)} Emo-DB files in {folder} (decode + resample + model):"
    )
    for label in ("cold (compiles each length bucket)", "warm"):
        start = time.perf_counter()
        results = list(predictor.predict_files(sources))
        elapsed = time.perf_counter() - start
        ok = [r for r in results if not isinstance(r, FileFailure)]
        audio = sum(r.seconds for r in ok)
        print(
            f"  {label}: {elapsed:.2f} s for {len(ok)} files ({len(results) - len(ok)} failed), "
            f"{len(ok) / elapsed:.1f} files/s, {audio / 60:.1f} min of audio -> "
            f"{audio / elapsed:.0f}x real time"
        )


def long_recording(predictor: Predictor, rate: int, workdir: Path) -> None:
    path = workdir / "five_minutes.wav"
    pieces = [_clip(2.0, rate, seed=i) for i in range(150)]
    sf.write(path, np.concatenate(pieces), rate, subtype="PCM_16")
    predictor.predict_file(path, segment=2.0, hop=1.0)  # compiles the segment shapes
    start = time.perf_counter()
    result = predictor.predict_file(path, segment=2.0, hop=1.0)
    elapsed = time.perf_counter() - start
    print("long recording, 5 min file, 2 s segments every 1 s (read in 0.25 s blocks):")
    print(
        f"  {len(result.segments)} segments in {elapsed:.2f} s -> "
        f"{result.seconds / elapsed:.0f}x real time"
    )


def _first_result(command: list[str], env: dict[str, str]) -> tuple[float, float] | None:
    """Seconds from start to the first result row and to exit, or None if the command failed."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    first = None
    assert process.stdout is not None and process.stderr is not None
    for line in process.stdout:
        if first is None and not line.startswith("file "):  # the row after the header
            first = time.perf_counter() - start
    code = process.wait()
    total = time.perf_counter() - start
    if code != 0 or first is None:
        print(f"  the command failed ({code}): {process.stderr.read()[-2000:]}")
        return None
    return first, total


def first_result(workdir: Path, clip_path: Path, cache: Path) -> None:
    command = [sys.executable, "-m", "serjax.predict", "--workdir", str(workdir), str(clip_path)]
    print("time to first result, `python -m serjax.predict --workdir RUN clip.wav` (subprocess):")
    plain = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    cached = {**plain, "JAX_COMPILATION_CACHE_DIR": str(cache)}
    for label, env in (
        ("no compilation cache", plain),
        ("JAX_COMPILATION_CACHE_DIR, empty", cached),
        ("JAX_COMPILATION_CACHE_DIR, filled by the run above", cached),
    ):
        times = _first_result(command, env)
        if times is not None:
            print(
                f"  {label}: first result row after {times[0]:.2f} s; exited after {times[1]:.2f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", help="a trained run (default: train the smoke config)")
    parser.add_argument("--data_dir", default=os.environ.get("SERJAX_DATA_DIR"))
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"load average {os.getloadavg()[0]:.1f}; JAX {jax.__version__} on "
        f"{', '.join(str(d) for d in jax.devices())}"
    )
    import_time()
    with tempfile.TemporaryDirectory(prefix="serjax-bench-") as tmp:
        tmp = Path(tmp)
        if args.workdir:
            workdir = Path(args.workdir)
        else:
            workdir = tmp / "smoke"
            print(f"no --workdir: training the smoke config into {workdir} first ...")
            start = time.perf_counter()
            experiments.train_and_evaluate(
                config_lib.load_config_file(ROOT / "configs/smoke.py"), workdir
            )
            print(f"  trained in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        predictor = Predictor.from_workdir(workdir)
        model = predictor.config.model
        print(
            f"model: {predictor.checkpoint} ({model.name}, {len(predictor.class_names)} classes, "
            f"{predictor.config.features.kind}); loaded in {time.perf_counter() - start:.2f} s; "
            f"batch size {predictor.batch_size}"
        )
        print()
        rate = predictor.sample_rate
        clip = _clip(3.0, rate)
        clip_path = tmp / "clip3s.wav"
        sf.write(clip_path, clip, rate, subtype="PCM_16")
        real_time_factor(predictor, clip, rate, args.repeats)
        folder = Path(args.data_dir) / "emodb" / "wav" if args.data_dir else None
        if folder is not None and folder.is_dir():
            folder_throughput(predictor, folder)
        else:
            print(
                "folder throughput: skipped, no Emo-DB at $SERJAX_DATA_DIR/emodb/wav "
                "(set SERJAX_DATA_DIR or --data_dir)"
            )
        long_recording(predictor, rate, tmp)
        first_result(workdir, clip_path, tmp / "jax_cache")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
