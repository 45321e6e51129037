"""Where S4's training step goes, serjax (XLA) against PyTorch, block by block, on one machine.

S4's CNN-LSTM trains on 16 clips of 351 frames x 128 log-mel bands through four blocks
(3 x 3 convolution -> batch norm -> ELU -> max pool (2, 2), (4, 4), (4, 4), (4, 4); filters 64,
64, 128, 128) before a short LSTM. This script times, in one process on the same seeded
inputs, each block's forward and backward pass in training mode on both sides (gradients of
the parameters, and of the input for every block but the first, as the step needs them; the
loss is the sum of squares of the block's output):

  conv: the convolution alone (``flax.nnx.Conv`` against ``torch.nn.Conv2d``);
  block: serjax's ``serjax.models.layers.ConvBlock`` (masked batch statistics, ELU, pool)
      against ``Conv2d -> BatchNorm2d -> ELU -> MaxPool2d``.

Timed as ``benchmarks/lstm_parts.py`` times (whose ``median_ms`` it uses), with PyTorch on
``--torch-threads`` threads:

    python benchmarks/cnn_parts.py [--repeats 7] [--torch-threads 2]
"""

from __future__ import annotations

import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

try:  # the peer is the bench extra, never a dependency of serjax itself
    import torch
except ModuleNotFoundError:
    raise SystemExit("benchmarks/cnn_parts.py needs PyTorch: pip install -e '.[bench]'") from None

from lstm_parts import median_ms, start

from serjax.models.layers import BN_EPSILON, BN_MOMENTUM, ConvBlock

BATCH, FRAMES, BANDS = 16, 351, 128
FILTERS = (64, 64, 128, 128)
POOLS = ((2, 2), (4, 4), (4, 4), (4, 4))


def block_shapes() -> list[tuple[tuple[int, int, int, int], int, tuple[int, int]]]:
    """Per block: input ``[B, T, F, C]``, filters, pool (SAME convolutions, floor pooling)."""
    shapes, (t, f, c) = [], (FRAMES, BANDS, 1)
    for filters, pool in zip(FILTERS, POOLS, strict=True):
        shapes.append(((BATCH, t, f, c), filters, pool))
        t, f, c = t // pool[0], f // pool[1], filters
    return shapes


def xla_grad(module: nnx.Module, x: jax.Array, lengths: jax.Array | None, with_input: bool):
    """A call of the jitted gradient of ``sum(module(x) ** 2)`` (parameters, and input)."""
    graph, state = nnx.split(module)

    def loss(model, x):
        y = model(x) if lengths is None else model(x, lengths)[0]
        return jnp.sum(jnp.square(y))

    @jax.jit
    def grad(state, x):
        # nnx.grad keeps the batch statistics that training mode updates out of the gradient.
        return nnx.grad(loss, argnums=(0, 1) if with_input else 0)(nnx.merge(graph, state), x)

    return lambda: jax.block_until_ready(grad(state, x))


def torch_grad(module: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def call():
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).square().sum().backward()

    return call


def main() -> None:
    what = ", forward + backward, training mode"
    args = start(__doc__.splitlines()[0], repeats=7, threads=2, what=what)
    rng = np.random.default_rng(0)
    print(f"{'part':<44}{'XLA ms':>9}{'torch ms':>10}{'XLA / torch':>13}")
    totals = {"xla": 0.0, "torch": 0.0}
    for index, (shape, filters, pool) in enumerate(block_shapes()):
        channels = shape[-1]
        with_input = index > 0  # the first block's input is the features: no gradient
        x = rng.standard_normal(shape).astype(np.float32)
        lengths = jnp.full((shape[0],), shape[1], jnp.int32)
        block = ConvBlock(
            channels, filters, (3, 3), pool_size=pool, activation="elu", rngs=nnx.Rngs(index)
        )
        block.train()
        conv = torch.nn.Conv2d(channels, filters, 3, padding=1)
        peer = torch.nn.Sequential(
            conv,
            torch.nn.BatchNorm2d(filters, eps=BN_EPSILON, momentum=1 - BN_MOMENTUM),
            torch.nn.ELU(),
            torch.nn.MaxPool2d(pool),
        ).train()
        tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        tx.requires_grad_(with_input)
        jx = jnp.asarray(x)
        name = f"block {index + 1} {'x'.join(map(str, shape[1:]))} -> {filters}"
        rows = [
            (f"{name}: conv", xla_grad(block.conv, jx, None, with_input), torch_grad(conv, tx)),
            (f"{name}: block", xla_grad(block, jx, lengths, with_input), torch_grad(peer, tx)),
        ]
        for label, xla_call, torch_call in rows:
            ms = median_ms({"xla": xla_call, "torch": torch_call}, args.repeats)
            print(f"{label:<44}{ms['xla']:9.1f}{ms['torch']:10.1f}{ms['xla'] / ms['torch']:13.2f}")
            if label.endswith("block"):
                totals = {k: totals[k] + ms[k] for k in totals}
    ratio = totals["xla"] / totals["torch"]
    print(f"{'four blocks':<44}{totals['xla']:9.1f}{totals['torch']:10.1f}{ratio:13.2f}")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
