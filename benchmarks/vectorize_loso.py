"""Wall time of a leave-one-speaker-out run: every fold's model in one program vs fold by fold.

Runs ``serjax.experiments.train_and_evaluate`` twice on the same config, in fresh workdirs,
one after the other in this process: ``train.vectorize="none"`` (the folds one after another)
and ``"folds"`` (all folds' models stacked in one jitted program, ``serjax.vectorized``). Prints
each wall time (compilation included: each run compiles its own steps), the ratio, the load
average before and after each run, and each fold's test UA under both (they agree up to float
rounding; dropout masks on unsegmented inputs are the exception, see ``serjax.vectorized``).

    SERJAX_DATA_DIR=/path/to/data python benchmarks/vectorize_loso.py \\
        [--config configs/emodb_lstm_loso.py] [--epochs 1] [--folds 03,08] [--workdir DIR]

``--step_models 3,10`` measures the train step alone instead (no data needed): per model and
step, one model's jitted step vs K models' stacked one, on random batches of the config's
shape (32 utterances of ``--seconds`` each), the best of 4 interleaved passes.

``--functionals`` measures the functionals classifier of ``configs/emodb_serjax.py`` (or
``--config``) instead: each LOSO fold fits 63 small models to choose its L2 (7 candidates x 9
held-out training speakers, ``serjax.fit_functionals.select_l2``). On the functionals of all
utterances, computed once, it times every fold's selection as the run does it, all 63 models
in one ``jax.vmap``-ed program, against the same 63 fits one after another (one jitted program
called 63 times), the two taking turns fold by fold, and checks that both choose the same L2
with the same held-out UA.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from ablation_emodb import corpus_functionals
from absl import logging
from flax import nnx

from serjax import config_lib, experiments, steps
from serjax.features import FeatureSpec
from serjax.fit_functionals import FitSettings, fit_head, inner_folds, selection_of
from serjax.progress import quiet_libraries
from serjax.vectorized import masked_train_step, stack

ROOT = Path(__file__).resolve().parents[1]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def step_times(config, models: list[int], seconds: float, repeats: int = 4) -> dict[str, float]:
    """Seconds per model and step: ``"1"`` for one model's step, ``"K=k"`` for k stacked."""
    spec = FeatureSpec.from_config(config)
    step = steps.StepConfig(spec=spec, num_classes=7, l2=config.optim.l2)
    rng = np.random.default_rng(0)
    rows = config.train.segment_batch // config.train.segment_group or config.train.batch_size
    group = config.train.segment_group
    samples = int(seconds * config.data.sample_rate)

    def batch():
        arrays = {
            "waveforms": 0.1 * rng.standard_normal((rows, samples)).astype(np.float32),
            "lengths": np.full(rows, samples, np.int32),
            "labels": rng.integers(0, 7, rows).astype(np.int32),
            "mask": np.ones(rows, bool),
        }
        if config.train.segment_batch:
            arrays["segment_index"] = rng.integers(0, 20, (rows, group)).astype(np.int32)
            arrays["segment_mask"] = np.ones((rows, group), bool)
        return arrays

    def split():
        model, optimizer = steps.build_model_and_optimizer(config, 7)
        model.train()
        return nnx.split((model, optimizer))

    graph, state = split()
    one = jax.jit(functools.partial(steps.train_step, graph, step=step), donate_argnums=0)
    runs = {"1": (one, [state, batch(), jnp.ones(7)], 1)}
    for k in models:
        states = [split()[1] for _ in range(k)]
        many = jax.jit(
            jax.vmap(functools.partial(masked_train_step, graph, step=step)), donate_argnums=0
        )
        batches = jax.tree.map(lambda *x: np.stack(x), *[batch() for _ in range(k)])
        flags = (jnp.zeros(k, jnp.int32), jnp.ones(k, bool))
        runs[f"K={k}"] = (many, [stack(states), batches, jnp.ones((k, 7)), *flags], k)
    best = dict.fromkeys(runs, np.inf)
    for _ in range(repeats + 1):  # the first pass compiles
        for name, (fn, args, k) in runs.items():
            start = time.perf_counter()
            args[0], loss = fn(*args)
            jax.block_until_ready(loss)
            best[name] = min(best[name], (time.perf_counter() - start) / k)
    return best


def one_by_one(head, x, labels, speakers, settings: FitSettings, num_classes: int):
    """:func:`select_l2`'s selection with its models fitted one at a time."""
    folds = inner_folds(
        x,
        labels,
        speakers,
        standardise=settings.standardise,
        num_classes=num_classes,
        balanced=settings.balanced,
    )
    fit = jax.jit(
        functools.partial(
            fit_head, head, steps=settings.steps, learning_rate=settings.learning_rate
        )
    )
    rows = [
        [
            fit(folds.z[f], folds.targets, folds.weights[f], jnp.float32(l2))
            for f in range(len(folds.held_out))
        ]
        for l2 in settings.l2_grid
    ]
    params = jax.tree.map(
        lambda *row: jnp.stack(row), *[jax.tree.map(lambda *p: jnp.stack(p), *r) for r in rows]
    )
    return selection_of(head, params, folds, labels, settings.l2_grid, num_classes)


def functionals_times(config) -> None:
    """Prints each LOSO fold's L2 selection time, vectorised and one model at a time."""
    start = time.perf_counter()
    part, class_names, x = corpus_functionals(config)
    speakers = part.speakers
    print(f"{len(x)} utterances, {x.shape[1]} functionals in {time.perf_counter() - start:.0f} s")
    settings = FitSettings.from_config(config)
    k = len(class_names)
    head = steps.build_model_and_optimizer(config, k)[0].head
    total = {"vmap": 0.0, "loop": 0.0}
    print(
        "per fold: models = L2 candidates x held-out training speakers; vmap s: all of them in "
        "one program, as runs fit them; loop s: one after another; 'same': both chose the same "
        "L2 with the same held-out UA"
    )
    print(f"{'fold':>8} {'models':>6} {'vmap s':>7} {'loop s':>7} {'ratio':>6}  L2 (val UA)")
    vectorised = functools.partial(settings.select_l2, num_classes=k)
    looped = functools.partial(one_by_one, settings=settings, num_classes=k)
    for test in sorted(set(speakers)):
        train = speakers != test
        args = (head, x[train], part.labels[train], speakers[train])
        times, chosen = {}, {}
        for name, call in (("vmap", vectorised), ("loop", looped)):
            begun = time.perf_counter()
            chosen[name] = call(*args)
            times[name] = time.perf_counter() - begun
            total[name] += times[name]
        models = len(settings.l2_grid) * len(set(speakers[train]))
        same = "same" if chosen["vmap"] == chosen["loop"] else f"DIFFERENT: {chosen['loop']}"
        print(
            f"{test:>8} {models:>6} {times['vmap']:7.2f} {times['loop']:7.2f} "
            f"{times['loop'] / times['vmap']:5.2f}x  {chosen['vmap'].l2:g} "
            f"({100 * chosen['vmap'].val_ua:.1f} %), loop: {same}",
            flush=True,
        )
    print(
        f"all folds: vmap {total['vmap']:.1f} s, one by one {total['loop']:.1f} s, "
        f"ratio {total['loop'] / total['vmap']:.2f}x (compilation included in both)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "emodb_lstm_loso.py"))
    parser.add_argument("--epochs", type=int, default=1, help="train.epochs of both runs")
    parser.add_argument("--folds", default="", help="comma-separated folds (default: all)")
    parser.add_argument("--workdir", default="", help="where the two runs go (default: temp)")
    parser.add_argument("--step_models", default="", help="e.g. 3,10: time the step alone")
    parser.add_argument("--seconds", type=float, default=3.0, help="utterance length (steps)")
    parser.add_argument(
        "--functionals", action="store_true", help="time the functionals classifier's fits"
    )
    args = parser.parse_args()
    if args.functionals:
        path = args.config if args.config != parser.get_default("config") else None
        config = config_lib.load_config_file(path or str(ROOT / "configs" / "emodb_serjax.py"))
        print(f"load average before: {_load()}; machine: {experiments.machine()['summary']}")
        functionals_times(config)
        print(f"load average after: {_load()}")
        return
    if args.step_models:
        config = config_lib.load_config_file(args.config)
        print(f"[steps] load average before: {_load()}", flush=True)
        models = [int(k) for k in args.step_models.split(",")]
        best = step_times(config, models, args.seconds)
        print(f"[steps] load average after: {_load()}")
        for name, value in best.items():
            print(f"{name:>5}: {1000 * value:6.0f} ms per model and step, {best['1'] / value:.2f}x")
        return
    logging.get_absl_handler().addFilter(quiet_libraries)
    logging.set_verbosity(logging.INFO)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="vectorize_loso_"))
    seconds, results = {}, {}
    for mode in ("none", "folds"):
        config = config_lib.load_config_file(args.config)
        config.train.epochs = args.epochs
        config.train.vectorize = mode
        if args.folds:
            config.data.run_folds = tuple(args.folds.split(","))
        run_dir = workdir / mode
        print(f"[{mode}] load average before: {_load()}", flush=True)
        start = time.perf_counter()
        results[mode] = experiments.train_and_evaluate(config, run_dir)
        seconds[mode] = time.perf_counter() - start
        print(f"[{mode}] {seconds[mode]:.1f} s; load average after: {_load()}", flush=True)

    machine = experiments.machine()
    folds = results["none"]["folds"]
    print(f"\n{Path(args.config).name}, {args.epochs} epoch(s), {len(folds)} folds")
    print(f"machine: {machine['summary']}")
    print(f"{'fold':>6} {'UA alone':>9} {'UA together':>12}")
    for name, row in folds.items():
        print(f"{name:>6} {row['ua']:9.4f} {results['folds']['folds'][name]['ua']:12.4f}")
    print(f"fold by fold (train.vectorize=none): {seconds['none']:8.1f} s")
    print(f"side by side (train.vectorize=folds): {seconds['folds']:7.1f} s")
    print(f"ratio: {seconds['none'] / seconds['folds']:.2f}x")


if __name__ == "__main__":
    main()
