"""serjax against the peers a user would pick instead: PyTorch, torchaudio and librosa.

One process, the same inputs, the same machine, three sections:

  front end: MFCC 13 + Δ + ΔΔ and log-mel 40 (25 ms periodic Hann window, 10 ms hop, 512-point
      FFT, 16 kHz, Slaney mel) of 512 synthetic clips of 1 to 9 s (``--quick``: 128), sorted by
      length in batches of 64 zero-padded to a multiple of 0.5 s (benchmarks/dsp_throughput.py's
      sets). serjax: ``dsp.features_chunked`` jitted per batch shape, on one CPU device and
      split over one CPU device per core (``jax.shard_map``); on a GPU ``dsp.features``.
      torchaudio: ``MFCC`` (or ``MelSpectrogram`` + ``AmplitudeToDB``) and ``compute_deltas``
      on the same padded batches, eager and under ``torch.compile``. librosa: one clip at a
      time, its BLAS limited to one thread (``--librosa-blas-threads``).
  training steps and inference: the models of benchmarks/peer_models.py, serjax's jitted step
      against the same ``torch.nn`` model and step, eager and under ``torch.compile``.

Each figure is the median of ``--repeats`` timed calls after a warm-up call; the contenders of
a row take turns twice, so that drifting load from other processes hits them alike. Columns:
ms per call; throughput (audio seconds or utterances per second); compile time (serjax: trace,
lowering and XLA compilation, ahead of time; ``torch.compile``: its first call minus a steady
call); peak memory; and "serjax x", serjax's best throughput divided by this contender's
(above 1: serjax is faster). Peak memory on a CPU is the high-water mark of the C heap (glibc
``mallinfo2``: in use plus mapped) above its level before the call, sampled every 0.5 ms during
one call: the same measure for every contender (XLA's own account of its buffers, temporaries
plus outputs, is printed in brackets for serjax). On a GPU: ``torch.cuda.max_memory_allocated``
above the level before the call, and XLA's account for serjax.

Install (a separate environment; PyTorch is never a runtime or test dependency of serjax):

    python3 -m venv /path/to/benchvenv
    /path/to/benchvenv/bin/pip install torch==2.9.1 'torchaudio==2.9.*'
    /path/to/benchvenv/bin/pip install -e '.[bench,test]'

(``.[bench]`` pins the same releases: torchaudio 2.9 needs torch 2.9.) Then

    /path/to/benchvenv/bin/python benchmarks/peers.py [--quick] [--device cpu|gpu]
        [--sections frontend,train,infer] [--tasks s1_lstm,bilstm,...] [--repeats N]
        [--compile all|none|frontend,s1_lstm,...] [--torch-threads N[,N...]]
        [--cudnn-lstm] [--cpu-devices N] [--librosa-blas-threads N]

``--device gpu`` runs JAX on CUDA (``jax_platforms``; the environment then needs JAX's CUDA
build, ``pip install 'jax[cuda12]'``, beside the CUDA build of torch 2.9.1 that PyPI serves) and
PyTorch on ``cuda``; librosa stays on the CPU. The front end then runs ``dsp.features`` with
either DFT (``dft="fft"`` and ``"matmul"``), and the LSTM models get a second serjax row with
their LSTM layers run by cuDNN (``--cudnn-lstm``, on by default there; the rows' agreement in
loss and probabilities is printed above them).

On a machine shared with other work, PyTorch's OpenMP threads busy-wait for each other: with
one thread per core the recurrent models' steps took 6 to 24 times as long as with one thread
on a 2-core CPU at load 8-14 (``--torch-threads`` runs each count given; the default is one per
core, and 1).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import math
import os
import platform
import resource
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable

try:  # the peers are the bench extra, never a dependency of serjax itself
    import torch
    import torchaudio
except ModuleNotFoundError as error:
    sys.exit(
        f"benchmarks/peers.py needs PyTorch and torchaudio ({error.name} is missing): "
        "pip install -e '.[bench]' in a separate environment, as this script's docstring says"
    )
import dsp_throughput as dt
import jax
import jax.numpy as jnp
import librosa
import numpy as np
import peer_models as pm
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from threadpoolctl import threadpool_limits

import dsp

SAMPLE_RATE = 16000
ROUNDS = 2


# ---------------------------------------------------------------- measuring


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            *("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks"),
            *("uordblks", "fordblks", "keepcost"),
        )
    ]


_LIBC = ctypes.CDLL("libc.so.6")
_LIBC.mallinfo2.restype = _MallInfo2


def heap_in_use() -> int:
    """Bytes the C heap has handed out: allocated chunks plus ``mmap``-ed blocks (glibc)."""
    info = _LIBC.mallinfo2()
    return info.uordblks + info.hblkhd


def heap_peak(call: Callable[[], object]) -> int:
    """High-water mark of :func:`heap_in_use` above its starting level during ``call()``."""
    base = heap_in_use()
    peak, done = [base], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], heap_in_use())
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        call()
    finally:
        done.set()
        watcher.join()
    return max(peak[0], heap_in_use()) - base


@dataclasses.dataclass
class Contender:
    """One way to do a row's work: ``call()`` runs it once, to completion."""

    label: str
    call: Callable[[], object]
    compile_s: float | None = None
    xla_bytes: int | None = None  # XLA's own account (serjax only)
    peak: Callable[[Callable[[], object]], int] | None = None  # how to measure peak memory
    compiles_lazily: bool = False  # torch.compile: the first call compiles
    times: list[float] = dataclasses.field(default_factory=list)
    peak_bytes: int | None = None
    error: str | None = None


def measure(contenders: list[Contender], repeats: int) -> None:
    """Warm-up then ``repeats`` timed calls per contender, in ``ROUNDS`` alternating turns;
    then one call under the memory probe. A contender whose call raises is marked failed."""
    for _ in range(ROUNDS):
        for c in contenders:
            if c.error:
                continue
            try:
                first = time.perf_counter()
                c.call()
                first = time.perf_counter() - first
                if c.compiles_lazily and c.compile_s is None:
                    c.compile_s = first  # minus a steady call, below
                for _ in range(repeats):
                    tic = time.perf_counter()
                    c.call()
                    c.times.append(time.perf_counter() - tic)
            except Exception as exc:  # a peer that cannot run here is reported, not fatal
                c.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
    for c in contenders:
        if c.error:
            continue
        if c.compiles_lazily:
            c.compile_s = max(c.compile_s - statistics.median(c.times), 0.0)
        c.peak_bytes = (c.peak or heap_peak)(c.call)


def print_row(title: str, work: float, unit: str, contenders: list[Contender]) -> None:
    """One table block: a line per contender, ``serjax x`` against serjax's best."""
    print(f"\n{title}  ({work:g} {unit.split('/')[0]} per call)", flush=True)
    print(
        f"  {'contender':<32}{'ms/call':>10}{unit:>12}{'compile s':>11}{'peak MiB':>10}"
        f"{'serjax x':>10}"
    )
    rate = {c.label: work / statistics.median(c.times) for c in contenders if not c.error}
    best = max((r for label, r in rate.items() if label.startswith("serjax")), default=None)
    for c in contenders:
        if c.error:
            print(f"  {c.label:<32}  failed: {c.error}")
            continue
        ms = 1e3 * statistics.median(c.times)
        compiled = "-" if c.compile_s is None else f"{c.compile_s:.2f}"
        peak = f"{c.peak_bytes / 2**20:.1f}"
        ratio = (
            "" if c.label.startswith("serjax") or best is None else f"{best / rate[c.label]:.2f}"
        )
        extra = "" if c.xla_bytes is None else f"  [XLA {c.xla_bytes / 2**20:.1f} MiB]"
        print(
            f"  {c.label:<32}{ms:>10.1f}{rate[c.label]:>12.1f}{compiled:>11}{peak:>10}"
            f"{ratio:>10}{extra}",
            flush=True,
        )


# ---------------------------------------------------------------- front end


def frontend_section(args, device: str) -> None:
    rng = np.random.default_rng(args.seed)
    n_clips = 128 if args.quick else 512
    lengths = rng.integers(1 * SAMPLE_RATE, 9 * SAMPLE_RATE + 1, size=n_clips)
    clips = [dt.synth_clip(rng, int(n)) for n in lengths]
    batches = dt.make_batches(clips, SAMPLE_RATE // 2)
    audio_s = sum(len(c) for c in clips) / SAMPLE_RATE
    print(
        f"\n== front end: {n_clips} clips of 1-9 s, {audio_s:.0f} s of audio, "
        f"{len(batches)} padded batches of <= {dt.BATCH} ==",
        flush=True,
    )
    configs = {
        "MFCC 13 + Δ + ΔΔ": dsp.FeatureConfig(kind="mfcc", n_mfcc=13, deltas=2),
        "log-mel 40": dsp.FeatureConfig(kind="log_mel", n_mels=40),
    }
    on_gpu = args.device == "gpu"
    n_dev = math.gcd(jax.device_count(), *(len(n) for _, n in batches))
    mesh = jax.make_mesh((n_dev,), ("batch",), devices=jax.devices()[:n_dev])
    split = NamedSharding(mesh, P("batch"))
    one = [(jnp.asarray(x), jnp.asarray(n)) for x, n in batches]
    spread = [(jax.device_put(x, split), jax.device_put(n, split)) for x, n in batches]
    t_batches = [torch.as_tensor(x).to(device) for x, _ in batches]
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)

    def serjax_contender(label, program, data, config, **program_kw):
        jitted = jax.jit(lambda x, n: program(x, n, config, **program_kw))
        start = time.perf_counter()
        exes = {x.shape: jitted.lower(x, n).compile() for x, n in data}
        compile_s = time.perf_counter() - start
        largest = exes[max(exes)].memory_analysis()
        xla = 0 if largest is None else largest.temp_size_in_bytes + largest.output_size_in_bytes

        def call():
            return jax.block_until_ready([exes[x.shape](x, n) for x, n in data])

        return Contender(label, call, compile_s, xla, _jax_peak(xla, on_gpu))

    for title, config in configs.items():
        mfcc = config.kind == "mfcc"
        mel_kw = dict(
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            norm="slaney",
            mel_scale="slaney",
            pad_mode="constant",  # librosa's and serjax's (torchaudio's default reflects)
        )
        if mfcc:
            # torchaudio's MFCC: mel power -> dB (top_db 80, fixed) -> DCT-II ortho.
            transform = torchaudio.transforms.MFCC(
                SAMPLE_RATE, n_mfcc=config.n_mfcc, melkwargs=mel_kw
            ).to(device)

            def peer(x, transform=transform):
                c = transform(x)
                d = torchaudio.functional.compute_deltas(c, win_length=5)
                return torch.cat([c, d, torchaudio.functional.compute_deltas(d, win_length=5)], 1)
        else:
            mel = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, **mel_kw).to(device)
            to_db = torchaudio.transforms.AmplitudeToDB("power").to(device)

            def peer(x, mel=mel, to_db=to_db):
                return to_db(mel(x))

        def torch_call(fn):
            def run():
                with torch.inference_mode():
                    out = [fn(x) for x in t_batches]
                sync()
                return out

            return run

        def librosa_call(mfcc=mfcc):
            with threadpool_limits(limits=args.librosa_blas_threads, user_api="blas"):
                if mfcc:
                    return [dt.librosa_features(c) for c in clips]
                return [
                    librosa.power_to_db(
                        librosa.feature.melspectrogram(
                            y=c, sr=SAMPLE_RATE, n_fft=512, win_length=400, hop_length=160
                        )
                    )
                    for c in clips
                ]

        matmul = dataclasses.replace(config, dft="matmul")
        if on_gpu:
            contenders = [
                serjax_contender("serjax", dsp.features, one, config),
                serjax_contender("serjax dft=matmul", dsp.features, one, matmul),
            ]
        else:
            kw = {"frames_per_step": dt.FRAMES_PER_STEP}
            contenders = [
                serjax_contender("serjax 1 device", dsp.features_chunked, one, config, **kw),
                serjax_contender(
                    "serjax 1 device dft=matmul", dsp.features_chunked, one, matmul, **kw
                ),
                serjax_contender(
                    f"serjax {n_dev} CPU devices",
                    _over_cores(dsp.features_chunked, mesh, **kw),
                    spread,
                    config,
                ),
            ]
        for n in args.torch_threads:
            call = _with_threads(n, torch_call(peer))
            contenders.append(Contender(f"torchaudio eager {n} thr", call, peak=_torch_peak()))
        if "frontend" in args.compile:
            n = args.torch_threads[0]
            call = _with_threads(n, torch_call(torch.compile(peer, dynamic=False)))
            label = f"torchaudio torch.compile {n} thr"
            contenders.append(Contender(label, call, peak=_torch_peak(), compiles_lazily=True))
        contenders.append(Contender("librosa (1 clip at a time)", librosa_call, peak=_py_peak))
        measure(contenders, args.repeats)
        print_row(title, audio_s, "audio-s/s", contenders)
        if mfcc:
            _print_agreement(clips[:2], config, device)


def _with_threads(n: int, call):
    """``call`` with PyTorch's intra-op thread pool set to ``n`` threads."""

    def threaded():
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        return call()

    return threaded


def _over_cores(program, mesh, **kw):
    def sharded(x, n, config):
        spec = (P("batch"), P("batch"))
        local = lambda x, n: program(x, n, config, **kw)
        return jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=spec)(x, n)

    return sharded


def _print_agreement(clips, config, device) -> None:
    """Largest |difference| of MFCC c0..c12 (top_db 80 on all sides) on whole clips."""
    config = dataclasses.replace(config, deltas=0, top_db=80.0)
    transform = torchaudio.transforms.MFCC(
        SAMPLE_RATE,
        n_mfcc=13,
        melkwargs=dict(n_fft=512, win_length=400, hop_length=160, n_mels=40, norm="slaney",
                       mel_scale="slaney", pad_mode="constant"),
    ).to(device)  # fmt: skip
    worst_t = worst_l = 0.0
    for clip in clips:
        ours = np.asarray(dsp.features(clip[None], np.array([len(clip)]), config)[0][0])
        theirs = transform(torch.as_tensor(clip).to(device)).cpu().numpy().T
        worst_t = max(worst_t, float(np.max(np.abs(ours - theirs))))
        worst_l = max(worst_l, float(np.max(np.abs(ours - dt.librosa_features(clip)[:13].T))))
    print(
        f"  agreement, MFCC c0-c12 of {len(clips)} whole clips (top_db 80): "
        f"max |serjax - torchaudio| {worst_t:.2e}, max |serjax - librosa| {worst_l:.2e}"
    )


def _jax_peak(xla_bytes: int, on_gpu: bool):
    """On a CPU the heap probe; on a GPU XLA's own account (JAX's peak cannot be reset)."""
    return (lambda call: xla_bytes) if on_gpu else None


def _torch_peak():
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None

    def peak(call):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        call()
        return torch.cuda.max_memory_allocated() - base

    return peak


def _py_peak(call) -> int:
    """Python/NumPy allocations (tracemalloc) or the heap probe, whichever is larger."""
    tracemalloc.start()
    try:
        heap = heap_peak(call)
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(heap, traced)


# ---------------------------------------------------------------- models


def model_sections(args, device: str, sections: set[str]) -> None:
    on_gpu = args.device == "gpu"
    for name in args.tasks:
        task = pm.TASKS[name]
        batch = pm.make_batch(task.train_shape, task.min_fraction, args.seed)
        infer = pm.make_batch(task.infer_shape, task.min_fraction, args.seed + 1)
        train_s, infer_s, jax_params = pm.serjax_steps(task, batch, infer, time.perf_counter)
        eager_train, eager_infer, torch_params = pm.torch_steps(task, batch, infer, device, False)
        print(
            f"\n== {task.description}: serjax {jax_params:,} parameters, PyTorch "
            f"{torch_params:,} ==",
            flush=True,
        )
        peak = _torch_peak()
        rows = {
            "train": [
                Contender("serjax jit", train_s.call, train_s.compile_s, train_s.xla_bytes),
                *(
                    Contender(f"torch eager {n} thr", _with_threads(n, eager_train), peak=peak)
                    for n in args.torch_threads
                ),
            ],
            "infer": [
                Contender("serjax jit", infer_s.call, infer_s.compile_s, infer_s.xla_bytes),
                *(
                    Contender(f"torch eager {n} thr", _with_threads(n, eager_infer), peak=peak)
                    for n in args.torch_threads
                ),
            ],
        }
        if args.cudnn_lstm and task.name != "functionals":
            _add_cudnn_rows(task, batch, infer, rows, train_s, infer_s)
        for row in rows.values():
            for c in row:
                if c.label.startswith("serjax"):
                    c.peak = _jax_peak(c.xla_bytes, on_gpu)
        if task.name in args.compile and task.name != "functionals":
            try:
                compiled_train, compiled_infer, _ = pm.torch_steps(task, batch, infer, device, True)
                n = args.torch_threads[0]
                compiled_train = _with_threads(n, compiled_train)
                compiled_infer = _with_threads(n, compiled_infer)
                for row, call in (("train", compiled_train), ("infer", compiled_infer)):
                    rows[row].append(
                        Contender(f"torch.compile {n} thr", call, peak=peak, compiles_lazily=True)
                    )
            except Exception as exc:
                print(f"  torch.compile: failed to build: {exc}")
        if "train" in sections:
            b, t, d = task.train_shape
            steps = task.steps_per_call
            measure(rows["train"], args.repeats)
            what = f"{steps} full-batch Adam steps" if steps > 1 else "one Adam step"
            print_row(f"train, {what} on {b} x {t} x {d}", b * steps, "utt/s", rows["train"])
        if "infer" in sections:
            b, t, d = task.infer_shape
            measure(rows["infer"], args.repeats)
            print_row(f"inference on {b} x {t} x {d}", b, "utt/s", rows["infer"])


def _add_cudnn_rows(task, batch, infer, rows, train_s, infer_s) -> None:
    """Rows for the same serjax model with its LSTM layers run by cuDNN
    (``serjax.models.recurrent.cudnn_lstm_layer``), after checking that both give the same
    first training loss and the same probabilities."""
    try:
        with pm.lstm_implementation("cudnn"):
            train_c, infer_c, _ = pm.serjax_steps(task, batch, infer, time.perf_counter)
        loss_gap = abs(float(train_s.call()) - float(train_c.call()))  # both from the same init
        prob_gap = float(np.abs(np.asarray(infer_s.call()) - np.asarray(infer_c.call())).max())
    except Exception as exc:  # no cuDNN here: say so, keep the other rows
        print(f"  cuDNN LSTM: failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
        return
    print(
        f"  cuDNN LSTM vs lax.scan: first loss differs by {loss_gap:.2e}, probabilities "
        f"by at most {prob_gap:.2e}"
    )
    for row, compiled in (("train", train_c), ("infer", infer_c)):
        rows[row].insert(
            1,
            Contender(
                "serjax jit, cuDNN LSTM", compiled.call, compiled.compile_s, compiled.xla_bytes
            ),
        )


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 clips, 3 timed calls")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--sections", default="frontend,train,infer")
    parser.add_argument("--tasks", default="s1_lstm,bilstm,s4_cnn_lstm,functionals")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per turn")
    parser.add_argument(
        "--compile",
        default="all",
        help="where to add torch.compile rows: all, none, or a comma-separated list of "
        "'frontend' and task names (on a CPU each compile takes seconds to minutes)",
    )
    parser.add_argument(
        "--torch-threads",
        default=",".join(str(n) for n in dict.fromkeys((os.cpu_count(), 1))),
        help="PyTorch intra-op thread counts to run eager PyTorch with (comma-separated; "
        "torch.compile runs with the first); default: one per core, and 1",
    )
    parser.add_argument(
        "--cudnn-lstm",
        action="store_true",
        help="add rows for serjax's models with cuDNN's LSTM (GPU only; default on a GPU)",
    )
    parser.add_argument("--cpu-devices", type=int, default=os.cpu_count())
    parser.add_argument("--librosa-blas-threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.cudnn_lstm = args.cudnn_lstm or args.device == "gpu"
    args.tasks = [t for t in args.tasks.split(",") if t]
    args.torch_threads = [int(n) for n in args.torch_threads.split(",") if n]
    sections = {s for s in args.sections.split(",") if s}
    every = ["frontend", *pm.TASKS]
    chosen = {"all": every, "none": []}.get(args.compile, args.compile.split(","))
    args.compile = {c for c in chosen if c}

    # Before JAX's first use: the platform, and one CPU device per core for the front end.
    jax.config.update("jax_platforms", "cuda" if args.device == "gpu" else "cpu")
    jax.config.update("jax_num_cpu_devices", args.cpu_devices)
    torch.set_num_threads(args.torch_threads[0])
    device = "cuda" if args.device == "gpu" else "cpu"
    if device == "cuda":
        torch.cuda.init()
    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}, torch {torch.__version__}, "
        f"torchaudio {torchaudio.__version__}, numpy {np.__version__}, python "
        f"{sys.version.split()[0]}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; torch threads {args.torch_threads}"
    )
    print(
        f"load average {os.getloadavg()}; quick={args.quick}, repeats={args.repeats} per turn "
        f"x {ROUNDS} turns, torch.compile for {sorted(args.compile) or 'nothing'}",
        flush=True,
    )
    if "frontend" in sections:
        frontend_section(args, device)
    if sections & {"train", "infer"}:
        model_sections(args, device, sections)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS {rss:.0f} MiB; load average now {os.getloadavg()}")


if __name__ == "__main__":
    main()
