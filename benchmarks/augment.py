"""Cost of on-device augmentation: train-step throughput with every augmentation on vs off.

The step is ``serjax.steps``'s: a model from ``serjax.forward.create_model`` (S1's LSTM,
2 x 128, last output), Adam from ``create_optimizer``, the jitted ``train_step`` with a
``StepConfig``. The batch is realistic for the reference corpora: 32 utterances of 2.6 to 3.0 s
at 16 kHz padded to 3 s (seeded noise and gliding tones), log-mel 40 + Δ + ΔΔ with
per-utterance CMVN, 7 classes.

"on" turns every transform on for every example (gain, white/pink noise, speed, pitch shift,
time stretch, VTLP, 2 time and 2 frequency masks, mixup). The probabilities do not change the
cost: each transform is computed for the whole batch and selected per example, so that shapes
and the compiled program stay fixed.

Throughput is steps per second (and utterances per second), the best of ``--repeats`` passes of
``--steps`` steps each, on and off interleaved so that load from other processes hits both
alike. The input stage alone (features with and without augmentation, no model) is timed the
same way, to show where the overhead sits.

    python benchmarks/augment.py [--steps N] [--repeats N] [--batch B] [--seed S]
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from serjax import augment, config_lib, forward, steps
from serjax.features import FeatureSpec, model_inputs

SAMPLE_RATE = 16000
NUM_CLASSES = 7
ALL_ON = augment.AugmentConfig(
    noise_prob=1.0,
    gain_prob=1.0,
    speed_prob=1.0,
    pitch_prob=1.0,
    stretch_prob=1.0,
    vtlp_prob=1.0,
    time_masks=2,
    time_mask_frames=20,
    freq_masks=2,
    freq_mask_bins=8,
    mixup_alpha=0.4,
)


def make_batch(batch: int, seed: int) -> dict[str, jax.Array]:
    """Seeded noise plus a gliding tone per utterance, 2.6 to 3.0 s, zero-padded to 3 s."""
    rng = np.random.default_rng(seed)
    total = 3 * SAMPLE_RATE
    lengths = rng.integers(int(2.6 * SAMPLE_RATE), total + 1, batch)
    t = np.arange(total) / SAMPLE_RATE
    f0 = rng.uniform(100, 300, (batch, 1)) * (1 + 0.3 * t[None, :])
    wave = 0.3 * np.sin(2 * np.pi * np.cumsum(f0, axis=1) / SAMPLE_RATE)
    wave += 0.05 * rng.standard_normal((batch, total))
    wave[t[None, :] * SAMPLE_RATE >= lengths[:, None]] = 0
    return {
        "waveforms": jnp.asarray(wave, jnp.float32),
        "lengths": jnp.asarray(lengths, jnp.int32),
        "labels": jnp.asarray(rng.integers(0, NUM_CLASSES, batch), jnp.int32),
        "mask": jnp.ones(batch, bool),
    }


def build(seed: int):
    config = config_lib.base_config()
    config.features.kind = "log_mel"
    config.features.n_mels = 40
    config.features.deltas = 2
    config.model.name = "lstm"
    spec = FeatureSpec.from_config(config)
    model = forward.create_model(config, NUM_CLASSES, seed)
    optimizer = nnx.Optimizer(model, steps.create_optimizer(config, 100), wrt=nnx.Param)
    model.train()
    graphdef, state = nnx.split((model, optimizer))
    return config, spec, graphdef, state


def best_seconds(fns: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Best wall time of each function over ``repeats`` interleaved rounds."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="train steps per timed pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best counts")
    parser.add_argument("--batch", type=int, default=32, help="utterances per step")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    _, spec, graphdef, state = build(args.seed)
    batch = make_batch(args.batch, args.seed)
    class_weights = jnp.ones(NUM_CLASSES, jnp.float32)
    off_config = steps.StepConfig(spec=spec, num_classes=NUM_CLASSES)
    on_config = steps.StepConfig(spec=spec, num_classes=NUM_CLASSES, augment=ALL_ON)
    off_step = jax.jit(functools.partial(steps.train_step, graphdef, step=off_config))
    on_step = jax.jit(functools.partial(steps.train_step, graphdef, step=on_config))

    start = time.perf_counter()
    _, off_loss = jax.block_until_ready(off_step(state, batch, class_weights))
    off_compile = time.perf_counter() - start
    start = time.perf_counter()
    _, on_loss = jax.block_until_ready(on_step(state, batch, class_weights))
    on_compile = time.perf_counter() - start
    source = "serjax.steps.train_step"
    if float(on_loss) == float(off_loss):
        raise SystemExit("augmentation changed nothing: the measurement would be meaningless")

    def run(step_fn):
        def go():
            current = state
            for _ in range(args.steps):
                current, loss = step_fn(current, batch, class_weights)
            jax.block_until_ready(loss)

        return go

    step_times = best_seconds({"off": run(off_step), "on": run(on_step)}, args.repeats)

    plain_inputs = jax.jit(model_inputs, static_argnums=2)
    aug_inputs = jax.jit(augment.training_inputs, static_argnums=(4, 5))
    key = jax.random.key(args.seed)
    wave, lens, mask = batch["waveforms"], batch["lengths"], batch["mask"]
    jax.block_until_ready(plain_inputs(wave, lens, spec))
    jax.block_until_ready(aug_inputs(key, wave, lens, mask, spec, ALL_ON))

    def inputs(fn):
        def go():
            for _ in range(args.steps):
                out = fn()
            jax.block_until_ready(out)

        return go

    features = best_seconds(
        {
            "off": inputs(lambda: plain_inputs(wave, lens, spec)),
            "on": inputs(lambda: aug_inputs(key, wave, lens, mask, spec, ALL_ON)),
        },
        args.repeats,
    )

    seconds = float(np.sum(np.asarray(lens))) / SAMPLE_RATE
    device = jax.devices()[0]
    print(f"device: {device.device_kind} ({device.platform}), jax {jax.__version__}")
    print(
        f"batch: {args.batch} utterances, {seconds:.1f} s of audio padded to "
        f"{wave.shape[1] / SAMPLE_RATE:.1f} s; log-mel 40 + Δ + ΔΔ, CMVN; LSTM 2 x 128"
    )
    print(f"augmented step: {source}")
    print(f"compile: off {off_compile:.1f} s, on {on_compile:.1f} s (first call, incl. one step)")
    print(f"best of {args.repeats} passes of {args.steps} steps:")
    for label, best in (("train step", step_times), ("inputs only", features)):
        off, on = best["off"] / args.steps, best["on"] / args.steps
        print(
            f"  {label:<11}  off {1000 * off:8.1f} ms/step ({args.batch / off:7.1f} utt/s)   "
            f"on {1000 * on:8.1f} ms/step ({args.batch / on:7.1f} utt/s)   on/off {on / off:.2f}x"
        )


if __name__ == "__main__":
    main()
