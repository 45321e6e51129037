"""Where an LSTM layer's time goes, serjax (XLA) against PyTorch, part by part, on one machine.

S1's inference runs one LSTM layer over 736 windows of 25 frames (8 utterances of 3 s cut into
92 windows each) with 120 inputs and 128 units. This script times, in one process on the same
seeded inputs, the parts of that layer on both sides:

  input projection: ``[736 * 25, 120] @ [120, 512]``, one matmul before the loop;
  recurrent product: ``[736, 128] @ [128, 512]``, the matmul each of the 25 steps makes;
  recurrence: the 25 steps (product, gates, cell update), ``lax.scan`` against a Python loop of
      the same PyTorch operations, and, as the lower bound of the loop, a scan of the product
      alone;
  whole layer: ``serjax.models.recurrent.recurrent_layer`` against ``torch.nn.LSTM``.

Each figure is the median of ``--repeats`` calls after a warm-up call, the two sides taking
turns; PyTorch runs ``--torch-threads`` intra-op threads, XLA its default. Needs PyTorch (the
``bench`` extra, as benchmarks/peers.py):

    python benchmarks/lstm_parts.py [--repeats 30] [--torch-threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

try:  # the peer is the bench extra, never a dependency of serjax itself
    import torch
except ModuleNotFoundError:
    raise SystemExit("benchmarks/lstm_parts.py needs PyTorch: pip install -e '.[bench]'") from None

from serjax.models.recurrent import recurrent_layer

WINDOWS, FRAMES, INPUTS, UNITS = 736, 25, 120, 128


def median_ms(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median milliseconds of each call, after one warm-up each, the calls taking turns."""
    times = {name: [] for name in calls}
    for call in calls.values():
        call()
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def jax_gates(c, h, z):
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return c, jax.nn.sigmoid(o) * jnp.tanh(c)


def torch_gates(c, h, z):
    i, f, g, o = z.chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return c, torch.sigmoid(o) * torch.tanh(c)


def start(description: str, *, repeats: int, threads: int, what: str = "") -> argparse.Namespace:
    """Parses ``--repeats`` and ``--torch-threads``, sets PyTorch's threads, prints the header."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--torch-threads", type=int, default=threads)
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}, torch {torch.__version__} "
        f"({args.torch_threads} thread(s)), {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f}; median of {args.repeats}{what}"
    )
    return args


def main() -> None:
    args = start(__doc__.splitlines()[0], repeats=30, threads=1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(WINDOWS, FRAMES, INPUTS)).astype(np.float32)
    kernel = (0.1 * rng.normal(size=(INPUTS, 4 * UNITS))).astype(np.float32)
    recurrent = (0.1 * rng.normal(size=(UNITS, 4 * UNITS))).astype(np.float32)
    bias = np.zeros(4 * UNITS, np.float32)
    xw = np.swapaxes(x, 0, 1) @ kernel  # [T, B, 4H]
    h0 = rng.normal(size=(WINDOWS, UNITS)).astype(np.float32)
    j = {k: jnp.asarray(v) for k, v in dict(x=x, k=kernel, u=recurrent, xw=xw, h=h0).items()}
    t = {k: torch.from_numpy(v.copy()) for k, v in dict(x=x, k=kernel, u=recurrent, xw=xw).items()}
    t["h"] = torch.from_numpy(h0)
    flat = jnp.reshape(j["x"], (-1, INPUTS))
    t_flat = t["x"].reshape(-1, INPUTS)

    matmul = jax.jit(lambda a, b: a @ b)

    def scan(gates):
        def body(carry, z):
            c, h = carry
            z = z + h @ j["u"]
            c, h = gates(c, h, z) if gates else (c, z[:, :UNITS])
            return (c, h), h

        zeros = jnp.zeros((WINDOWS, UNITS))
        return jax.jit(lambda xw: jax.lax.scan(body, (zeros, zeros), xw)[1])

    full, product_only = scan(jax_gates), scan(None)
    lengths = jnp.full((WINDOWS,), FRAMES, jnp.int32)
    lstm = torch.nn.LSTM(INPUTS, UNITS, batch_first=True)

    def torch_loop():
        c = h = torch.zeros(WINDOWS, UNITS)
        out = []
        for z in t["xw"]:
            c, h = torch_gates(c, h, z + h @ t["u"])
            out.append(h)
        return torch.stack(out)

    done = jax.block_until_ready
    rows = [
        (
            "input projection [18400,120]@[120,512]",
            lambda: done(matmul(flat, j["k"])),
            lambda: t_flat @ t["k"],
        ),
        (
            "recurrent product [736,128]@[128,512]",
            lambda: done(matmul(j["h"], j["u"])),
            lambda: t["h"] @ t["u"],
        ),
        ("recurrence, 25 steps", lambda: done(full(j["xw"])), torch_loop),
        ("  of which the products alone", lambda: done(product_only(j["xw"])), None),
        (
            "whole layer (recurrent_layer / nn.LSTM)",
            lambda: done(
                recurrent_layer(
                    j["x"], lengths, j["k"], j["u"], jnp.asarray(bias), cell="lstm", reverse=False
                )
            ),
            lambda: lstm(t["x"]),
        ),
    ]
    print(f"{'part':<42}{'XLA ms':>9}{'torch ms':>10}{'XLA / torch':>13}")
    with torch.inference_mode():
        for label, xla_call, torch_call in rows:
            calls = {"xla": xla_call} | ({"torch": torch_call} if torch_call else {})
            ms = median_ms(calls, args.repeats)
            peer = f"{ms['torch']:10.2f}{ms['xla'] / ms['torch']:13.2f}" if torch_call else ""
            print(f"{label:<42}{ms['xla']:9.2f}{peer}", flush=True)
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
