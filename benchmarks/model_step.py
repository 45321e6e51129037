"""Compile time and training-step throughput of every registered model, on this machine's CPU.

Each model is built with its reference (default) hyper-parameters and 7 classes, and trained
on seeded random inputs shaped like Emo-DB batches:

  feature models: batch 32, 300 frames (3 s at a 10 ms hop) of 120 features
                  (MSPEC + deltas); ``cnn_lstm_2d`` reads 128 log-mel bands instead, since its
                  pools need at least 128 (S4's setting), and ``cnn`` is built with
                  ``num_frames=300`` so its flattened head fits the batch;
  cnn_lstm_1d:    batch 32, 3 s of 16 kHz waveform (48,000 samples, one feature).

Valid lengths are drawn between 60 % and 100 % of the padded length, so the masks are
exercised. A training step is ``nnx.jit`` of ``nnx.value_and_grad`` of the mean softmax
cross-entropy plus an ``optax.adam(1e-3)`` update through ``nnx.Optimizer`` (training mode:
dropout on, batch statistics). Compile time is split into trace + lowering and XLA
compilation (``.lower(...).compile()``); throughput is utterances per second of the
compiled step, median over ``--steps`` steps after one warm-up step. On a shared machine
the figures are noisy.

    python benchmarks/model_step.py [--quick] [--models lstm,crnn] [--steps N]

``--quick``: batch 8, 1 s inputs (100 frames / 16,000 samples), 2 timed steps.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from serjax.models import MODEL_NAMES, create_model

NUM_CLASSES = 7
FEATURES = 120
SAMPLE_RATE = 16_000
FRAME_RATE = 100


def _loss(model: nnx.Module, x: jax.Array, lengths: jax.Array, labels: jax.Array) -> jax.Array:
    logits = model(x, lengths)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@nnx.jit
def train_step(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    x: jax.Array,
    lengths: jax.Array,
    labels: jax.Array,
) -> jax.Array:
    loss, grads = nnx.value_and_grad(_loss)(model, x, lengths, labels)
    optimizer.update(model, grads)
    return loss


def _setup(name: str, seconds: float) -> tuple[dict, tuple[int, int]]:
    """Hyper-parameter overrides and the ``(T, D)`` input shape for one model."""
    if name == "cnn_lstm_1d":
        return {}, (int(seconds * SAMPLE_RATE), 1)
    frames = int(seconds * FRAME_RATE)
    if name == "cnn_lstm_2d":
        return {}, (frames, 128)
    if name == "cnn":
        return {"num_frames": frames}, (frames, FEATURES)
    return {}, (frames, FEATURES)


def bench(name: str, batch: int, seconds: float, steps: int) -> dict:
    hparams, (t, d) = _setup(name, seconds)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, t, d)), jnp.float32)
    lengths = jnp.asarray(rng.integers(int(0.6 * t), t + 1, size=batch), jnp.int32)
    labels = jnp.asarray(rng.integers(0, NUM_CLASSES, size=batch), jnp.int32)

    model = create_model(name, num_features=d, num_classes=NUM_CLASSES, rngs=nnx.Rngs(0), **hparams)
    model.train()
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    params = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))

    start = time.perf_counter()
    lowered = train_step.lower(model, optimizer, x, lengths, labels)
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    compiled_at = time.perf_counter()

    compiled(model, optimizer, x, lengths, labels).block_until_ready()  # warm-up
    times = []
    for _ in range(steps):
        tic = time.perf_counter()
        loss = compiled(model, optimizer, x, lengths, labels)
        loss.block_until_ready()
        times.append(time.perf_counter() - tic)
    step = statistics.median(times)
    return {
        "name": name,
        "shape": f"{batch}x{t}x{d}",
        "params": params,
        "trace": lowered_at - start,
        "compile": compiled_at - lowered_at,
        "step": step,
        "throughput": batch / step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 8, 1 s inputs, 2 steps")
    parser.add_argument("--models", default=",".join(MODEL_NAMES), help="comma-separated names")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per model")
    args = parser.parse_args()
    batch, seconds, steps = (8, 1.0, 2) if args.quick else (32, 3.0, 5)
    steps = args.steps or steps
    names = [n.strip() for n in args.models.split(",") if n.strip()]

    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()})")
    print(f"batch {batch}, {seconds:g} s inputs, median of {steps} steps after 1 warm-up")
    header = (
        f"{'model':<16}{'input BxTxD':>16}{'params':>11}{'trace s':>9}{'compile s':>11}"
        f"{'step ms':>10}{'utt/s':>9}"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        r = bench(name, batch, seconds, steps)
        print(
            f"{r['name']:<16}{r['shape']:>16}{r['params']:>11,}{r['trace']:>9.2f}"
            f"{r['compile']:>11.2f}{1e3 * r['step']:>10.1f}{r['throughput']:>9.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
