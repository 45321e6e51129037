"""Throughput of the jitted dsp front end against librosa, on this machine's CPU.

MFCC + Δ + ΔΔ (13 coefficients from 40 Slaney mel bands, 25 ms periodic Hann window, 10 ms hop,
16 kHz, 512-point FFT) on two synthetic sets of seeded noise and gliding tones:

  fixed: 64 clips of 3 s, one padded batch;
  mixed: 512 clips of 1 to 9 s, sorted by length, in batches of 64, each zero-padded up to the
         next multiple of 0.5 s (so XLA compiles at most 17 shapes, here one per batch).

librosa runs one clip at a time (melspectrogram -> power_to_db -> mfcc -> delta of order 1 and
2, width 5, i.e. regression half-width 2), warmed up first, with its BLAS limited to
``--librosa-blas-threads`` threads (default 1): its matrices are small, and on a shared machine
a multi-threaded OpenBLAS spins and made librosa about 4x slower in wall time here.

dsp runs on each padded batch in three forms, each jitted and compiled once per batch shape:

  batch: ``dsp.features`` on the whole [64, T] batch at once;
  chunked: ``dsp.features_chunked``, the same front end through ``jax.lax.map`` over chunks
         of about 2048 frames (6 clips of 3 s, 2 of 9 s) of the same batch. On a CPU this keeps
         each stage's working set in cache and reuses small temporaries (the whole batch's are
         tens of MiB, freshly mapped and page-faulted on every call); on an accelerator the
         whole batch at once is the right form.
  chunked/cores: the chunked form under ``jax.shard_map``, each batch split over one CPU
         device per core (``jax_num_cpu_devices``, set before JAX starts). XLA runs one
         device's program largely on one thread, so this is how a CPU's cores all work at once;
         it is the same data-parallel layout the training step uses over its device mesh.

Throughput is audio seconds (valid samples only, padding excluded) per wall-clock second, the
best pass of all. Each contender runs a warm-up pass then ``--repeats`` passes back to back (its
steady state, as in a feature pipeline that runs continuously); the three take turns twice, so
that drifting load from other processes on a shared machine hits them alike. CPU seconds
(``time.process_time``, all threads) of the best pass are printed beside, since the jitted code
can use every core and librosa mostly one.

Memory is reported three ways, each labelled: the peak of Python/NumPy allocations during one
librosa pass (tracemalloc; XLA's buffers are invisible to it), XLA's own buffer sizes for the
largest compiled batch (``compiled.memory_analysis()``: arguments + outputs + temporaries), and
the whole process's peak resident set (``resource.getrusage(...).ru_maxrss``), which covers
both sides and the JAX runtime.

    python benchmarks/dsp_throughput.py [--quick] [--repeats N] [--seed S]
        [--librosa-blas-threads N] [--cpu-devices N]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable

import jax
import jax.numpy as jnp
import librosa
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from threadpoolctl import threadpool_limits

import dsp

SAMPLE_RATE = 16000
BATCH = 64
ROUNDS = 2  # alternating blocks of passes per contender
FRAMES_PER_STEP = 2048  # frames per lax.map step: a few MiB per stage, within this CPU's caches
CONFIG = dsp.FeatureConfig(
    sample_rate=SAMPLE_RATE,
    kind="mfcc",
    n_fft=512,
    win_length=400,
    hop_length=160,
    n_mels=40,
    n_mfcc=13,
    deltas=2,
    delta_width=2,
    delta_delta_width=2,
)


def synth_clip(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    """Noise plus three linear chirps, peak-normalised, float32."""
    t = np.arange(num_samples) / SAMPLE_RATE
    clip = 0.05 * rng.standard_normal(num_samples)
    for _ in range(3):
        f0, f1 = rng.uniform(100.0, 4000.0, size=2)
        phase = 2 * np.pi * (f0 * t + 0.5 * (f1 - f0) * t**2 / t[-1])
        clip += rng.uniform(0.05, 0.3) * np.sin(phase)
    return (clip / np.max(np.abs(clip))).astype(np.float32)


def make_batches(clips: list[np.ndarray], bucket: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sorted by length, ``BATCH`` per batch, zero-padded to a multiple of ``bucket`` samples."""
    order = np.argsort([len(c) for c in clips], kind="stable")
    batches = []
    for start in range(0, len(order), BATCH):
        group = [clips[i] for i in order[start : start + BATCH]]
        lengths = np.array([len(c) for c in group], dtype=np.int32)
        width = int(-(-lengths.max() // bucket) * bucket)
        x = np.zeros((len(group), width), dtype=np.float32)
        for row, clip in zip(x, group, strict=True):
            row[: len(clip)] = clip
        batches.append((x, lengths))
    return batches


def librosa_features(y: np.ndarray) -> np.ndarray:
    """[39, frames]: MFCC, Δ, ΔΔ as a librosa user writes them."""
    mel = librosa.feature.melspectrogram(
        y=y, sr=SAMPLE_RATE, n_fft=512, win_length=400, hop_length=160, n_mels=40
    )
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=13)
    d1 = librosa.feature.delta(mfcc, width=5, order=1)
    d2 = librosa.feature.delta(mfcc, width=5, order=2)
    return np.concatenate([mfcc, d1, d2], axis=0)


def batch_program(x, lengths, config):
    return dsp.features(x, lengths, config)


def chunked_program(x, lengths, config):
    return dsp.features_chunked(x, lengths, config, frames_per_step=FRAMES_PER_STEP)


def over_cores(program: Callable, mesh: jax.sharding.Mesh) -> Callable:
    """``program`` on each device's share of the batch, all devices at once."""

    def sharded(x, lengths, config):
        local = lambda x, lengths: program(x, lengths, config)
        spec = (P("batch"), P("batch"))
        return jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=spec)(x, lengths)

    return sharded


def compile_all(program: Callable, batches) -> tuple[dict, float, int]:
    """Compiled executables per shape, total compile seconds, XLA bytes of the largest.

    ``batches`` are device arrays, so each executable is compiled for their placement.
    """
    jitted = jax.jit(program, static_argnums=2)
    compiled, seconds = {}, 0.0
    for x, lengths in batches:
        if x.shape not in compiled:
            start = time.perf_counter()
            compiled[x.shape] = jitted.lower(x, lengths, CONFIG).compile()
            seconds += time.perf_counter() - start
    analysis = compiled[max(compiled)].memory_analysis()
    xla_bytes = 0
    if analysis is not None:
        xla_bytes = sum(
            getattr(analysis, field)
            for field in ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
        )
    return compiled, seconds, xla_bytes


def timed(run: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def max_mfcc_error(batches) -> float:
    """Largest |dsp - librosa| over MFCC c0..c12 of four clips, with top_db 80 on both sides."""
    x, lengths = batches[0]
    config = dataclasses.replace(CONFIG, deltas=0, top_db=80.0)
    feats, n_frames = jax.jit(dsp.features, static_argnums=2)(x, lengths, config)
    worst = 0.0
    for row in range(min(4, len(lengths))):
        reference = librosa_features(x[row, : lengths[row]])[:13].T
        ours = np.asarray(feats[row, : int(n_frames[row])])
        worst = max(worst, float(np.max(np.abs(ours - reference))))
    return worst


def run_case(
    name: str, clips: list[np.ndarray], bucket: int, repeats: int, blas_threads: int
) -> None:
    batches = make_batches(clips, bucket)
    audio_seconds = sum(len(c) for c in clips) / SAMPLE_RATE
    padded_seconds = sum(x.size for x, _ in batches) / SAMPLE_RATE
    one_device = [(jnp.asarray(x), jnp.asarray(n)) for x, n in batches]
    # Every batch splits evenly: as many devices as divide all batch sizes.
    n_devices = math.gcd(jax.device_count(), *(len(n) for _, n in batches))
    mesh = jax.make_mesh((n_devices,), ("batch",), devices=jax.devices()[:n_devices])
    split = NamedSharding(mesh, P("batch"))
    all_devices = [(jax.device_put(x, split), jax.device_put(n, split)) for x, n in batches]

    programs = {
        "batch": (batch_program, one_device),
        "chunked": (chunked_program, one_device),
        "chunked/cores": (over_cores(chunked_program, mesh), all_devices),
    }
    compiled, compile_s, xla_bytes, runs = {}, {}, {}, {}
    for label, (program, device_batches) in programs.items():
        compiled[label], compile_s[label], xla_bytes[label] = compile_all(program, device_batches)
        runs[label] = lambda ex=compiled[label], data=device_batches: jax.block_until_ready(
            [ex[x.shape](x, n) for x, n in data]
        )

    reference = [compiled["batch"][x.shape](x, n)[0] for x, n in one_device]
    disagreement = {
        label: max(
            float(jnp.max(jnp.abs(jnp.asarray(compiled[label][x.shape](x, n)[0]) - ref)))
            for (x, n), ref in zip(data, reference, strict=True)
        )
        for label, (_, data) in programs.items()
        if label != "batch"
    }

    def librosa_pass():
        with threadpool_limits(limits=blas_threads, user_api="blas"):
            return [librosa_features(c) for c in clips]

    runs["librosa"] = librosa_pass

    best = {label: (float("inf"), 0.0) for label in runs}
    for _ in range(ROUNDS):
        for label, run in runs.items():
            run()  # warm-up: first executions allocate, librosa fills its caches
            for _ in range(repeats):
                best[label] = min(best[label], timed(run))

    tracemalloc.start()
    runs["librosa"]()
    _, librosa_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    shapes = sorted(compiled["batch"])
    print(f"\n== {name}: {len(clips)} clips, {audio_seconds:.0f} s of audio ==")
    print(f"  padded batches: {len(batches)} x <= {BATCH}, {len(shapes)} shape(s): {shapes}")
    print(f"  padding: {padded_seconds / audio_seconds - 1:.1%} extra samples computed")
    chunks = [max(1, FRAMES_PER_STEP // CONFIG.max_frames(shape[-1])) for shape in shapes]
    print(f"  chunked: examples per lax.map step, per shape: {chunks}")
    print(f"  chunked/cores: each batch split over {n_devices} CPU device(s)")
    lib_rate = audio_seconds / best["librosa"][0]
    for label, (wall, cpu) in best.items():
        rate = audio_seconds / wall
        ratio = "" if label == "librosa" else f"  {rate / lib_rate:5.1f}x librosa"
        print(
            f"  {label:13s} {rate:8.0f} audio-s/s  (wall {wall * 1e3:7.1f} ms, "
            f"CPU {cpu * 1e3:7.1f} ms){ratio}"
        )
    for label in programs:
        print(
            f"  {label:13s} compile (lower + compile, all shapes): {compile_s[label]:.2f} s; "
            f"XLA buffers of the largest shape: {xla_bytes[label] / 2**20:.1f} MiB"
        )
    print(f"  librosa  peak Python/NumPy allocations in one pass (tracemalloc): "
          f"{librosa_peak / 2**20:.1f} MiB")  # fmt: skip
    print(f"  max |MFCC dsp - librosa| (top_db 80 both, 4 clips): {max_mfcc_error(batches):.2e}")
    for label, error in disagreement.items():
        print(f"  max |{label} - batch| over every feature of every batch: {error:.2e}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sets, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed passes (best kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--librosa-blas-threads", type=int, default=1)
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=os.cpu_count(),
        help="CPU devices for the chunked/cores form (default: one per core)",
    )
    args = parser.parse_args(argv)
    if args.cpu_devices < 1:
        parser.error(f"--cpu-devices must be >= 1, got {args.cpu_devices}")
    jax.config.update("jax_num_cpu_devices", args.cpu_devices)  # before JAX's first use
    repeats = args.repeats or (2 if args.quick else 5)
    n_fixed, n_mixed = (16, 64) if args.quick else (64, 512)

    rng = np.random.default_rng(args.seed)
    fixed = [synth_clip(rng, 3 * SAMPLE_RATE) for _ in range(n_fixed)]
    mixed_lengths = rng.integers(1 * SAMPLE_RATE, 9 * SAMPLE_RATE + 1, size=n_mixed)
    mixed = [synth_clip(rng, int(n)) for n in mixed_lengths]

    print(
        f"jax {jax.__version__} ({jax.default_backend()}), librosa {librosa.__version__}, "
        f"numpy {np.__version__}, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPU cores visible, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"MFCC 13 + Δ + ΔΔ = {CONFIG.num_features} features per frame; quick={args.quick}, "
        f"repeats={repeats}, seed={args.seed}, librosa BLAS threads={args.librosa_blas_threads}"
    )
    run_case(f"fixed 3 s x {n_fixed}", fixed, 3 * SAMPLE_RATE, repeats, args.librosa_blas_threads)
    run_case(
        f"mixed 1-9 s x {n_mixed}", mixed, SAMPLE_RATE // 2, repeats, args.librosa_blas_threads
    )
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        f"\nprocess peak RSS, both sides and runtimes (getrusage ru_maxrss): "
        f"{peak_rss / 1024:.0f} MiB; load average now {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
