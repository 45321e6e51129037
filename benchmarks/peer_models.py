"""The models of ``benchmarks/peers.py``, in serjax and as equivalent ``torch.nn`` modules.

Each :class:`Task` is one reference model at one configuration's sizes, with seeded inputs,
and builds the same training step (mean softmax cross-entropy, Adam 1e-3, training mode:
dropout on, batch statistics) and the same inference (eval mode, softmax probabilities per
utterance) on both sides:

  s1_lstm:     S1 (configs/emodb_lstm.py): 2 x LSTM 128, dropout 0.2 on the frames and
               between the layers, last output -> Dense 7. Trains on 128 windows of
               25 x 120 (train.segment_batch); infers 8 utterances of 3 s
               (train.eval_batch_size), each cut into its 92 windows of 25 frames every 3,
               the utterance's probabilities the mean of its windows'.
  bilstm:      an utterance BiLSTM with masked pooling: 2 x BiLSTM 64 (registry "bilstm",
               pooling "mean") on 32 utterances of up to 300 frames x 120, valid lengths 60 to
               100 %. PyTorch packs the sequences (``pack_padded_sequence``), the way to give
               its LSTM the same masking; the mean is over valid frames on both sides.
  s4_cnn_lstm: S4 (configs/emodb_cnn_lstm_s4.py): four blocks conv 3x3 -> batch norm -> ELU ->
               max pool ((2,2),(4,4),(4,4),(4,4)), filters 64, 64, 128, 128, then LSTM 256, last
               output -> Dense 7, on 16 clips of 3.5 s: 351 frames x 128 log-mel bands.
  functionals: the recommended system's classifier (configs/emodb_serjax.py, as it was before
               its voiced-frame functionals, which make 1144): standardised 913 utterance
               functionals -> Dense 7 (logistic regression), fitted with 100 full-batch Adam
               steps (lr 0.03) on 480 utterances (one Emo-DB LOSO fold's training part).
               serjax runs the whole fit as one jitted ``lax.scan``
               (``serjax.fit_functionals.fit_head``), PyTorch as a Python loop; a "step" is
               the fit divided by 100. Inference: 16 utterances.

Sizes match layer for layer; parameter counts differ only where PyTorch's ``nn.LSTM`` keeps
two bias vectors per gate (``b_ih`` and ``b_hh``: 4H more per layer and direction than the
Keras layout serjax follows); both counts are printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from flax import nnx
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from serjax import features
from serjax.fit_functionals import fit_head
from serjax.models import create_model, recurrent

NUM_CLASSES = 7
LEARNING_RATE = 1e-3
S1_WINDOW, S1_SHIFT = 25, 3
FUNCTIONAL_STEPS, FUNCTIONAL_LR = 100, 0.03


@dataclasses.dataclass(frozen=True)
class Task:
    """One model at one configuration's sizes.

    Attributes:
      name, description: table labels.
      registry_name, hparams: the serjax model (``create_model``).
      train_shape: ``(B, T, D)`` of a training batch; infer_shape: of an inference batch
        (utterances of ``T`` frames, before S1's windowing).
      min_fraction: shortest valid length as a fraction of ``T`` (1: all full).
      steps_per_call: optimizer steps one timed training call makes (the functionals fit).
    """

    name: str
    description: str
    registry_name: str
    hparams: dict
    train_shape: tuple[int, int, int]
    infer_shape: tuple[int, int, int]
    min_fraction: float = 1.0
    steps_per_call: int = 1


TASKS = {
    task.name: task
    for task in (
        Task("s1_lstm", "S1 window LSTM 2x128", "lstm", {}, (128, 25, 120), (8, 300, 120)),
        Task(
            "bilstm",
            "BiLSTM 2x64, masked mean",
            "bilstm",
            {"pooling": "mean"},
            (32, 300, 120),
            (8, 300, 120),
            min_fraction=0.6,
        ),
        Task("s4_cnn_lstm", "S4 2-D CNN-LSTM", "cnn_lstm_2d", {}, (16, 351, 128), (32, 351, 128)),
        Task(
            "functionals",
            "functionals logistic reg.",
            "functionals",
            {},
            (480, 1, 913),
            (16, 1, 913),
            steps_per_call=FUNCTIONAL_STEPS,
        ),
    )
}


def make_batch(shape: tuple[int, int, int], min_fraction: float, seed: int) -> dict:
    """Seeded NumPy inputs: ``x [B, T, D]`` float32, ``lengths [B]`` int32, ``labels [B]``."""
    rng = np.random.default_rng(seed)
    b, t, _ = shape
    lengths = rng.integers(max(1, int(min_fraction * t)), t + 1, size=b).astype(np.int32)
    lengths[0] = t  # the longest fixes the padded width on both sides
    x = rng.normal(size=shape).astype(np.float32)
    x *= (np.arange(t)[None, :, None] < lengths[:, None, None]).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=b).astype(np.int32)
    return {"x": x, "lengths": lengths, "labels": labels}


# ---------------------------------------------------------------- PyTorch models


class WindowLSTM(nn.Module):
    """S1: dropout -> 2 x LSTM 128 (dropout between) -> last output -> Linear 7."""

    def __init__(self, features_in: int, hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        self.input_dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(features_in, hidden, 2, batch_first=True, dropout=dropout)
        self.out = nn.Linear(hidden, NUM_CLASSES)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        y, _ = self.lstm(self.input_dropout(x))  # full windows: the last step is valid
        return self.out(y[:, -1])


class MaskedBiLSTM(nn.Module):
    """dropout -> packed 2 x BiLSTM 64 -> mean over valid frames -> Linear 7."""

    def __init__(self, features_in: int, hidden: int = 64, dropout: float = 0.2):
        super().__init__()
        self.input_dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            features_in, hidden, 2, batch_first=True, dropout=dropout, bidirectional=True
        )
        self.out = nn.Linear(2 * hidden, NUM_CLASSES)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(
            self.input_dropout(x), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        y, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True)  # padding zeroed
        return self.out(y.sum(1) / lengths.to(y.dtype)[:, None])


class ConvLSTM2D(nn.Module):
    """S4: [conv 3x3 -> BN -> ELU -> max pool] x 4 on [B, 1, T, F] -> LSTM 256 -> Linear 7.

    BatchNorm as Keras' (epsilon 1e-3, moving average 0.99, i.e. PyTorch momentum 0.01);
    pools ceil along time as serjax's (the band axis divides exactly: 128 -> 64 -> 16 -> 4 -> 1).
    """

    def __init__(
        self,
        bands: int,
        filters=(64, 64, 128, 128),
        pools=((2, 2), (4, 4), (4, 4), (4, 4)),
        hidden: int = 256,
    ):
        super().__init__()
        blocks, channels = [], 1
        for width, pool in zip(filters, pools, strict=True):
            blocks += [
                nn.Conv2d(channels, width, 3, padding="same"),
                nn.BatchNorm2d(width, eps=1e-3, momentum=0.01),
                nn.ELU(),
                nn.MaxPool2d(pool, ceil_mode=True),
            ]
            channels = width
            bands //= pool[1]
        self.blocks = nn.Sequential(*blocks)
        self.lstm = nn.LSTM(channels * bands, hidden, batch_first=True)
        self.out = nn.Linear(hidden, NUM_CLASSES)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.blocks(x[:, None])  # [B, C, T', F']
        h = h.permute(0, 2, 1, 3).flatten(2)  # [B, T', C * F']
        y, _ = self.lstm(h)  # fixed-length clips: the last step is valid
        return self.out(y[:, -1])


class Functionals(nn.Module):
    """(x - mean) / scale -> Linear 7 on one vector per utterance ``[B, 1, N]``."""

    def __init__(self, features_in: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(features_in))
        self.register_buffer("scale", torch.ones(features_in))
        self.out = nn.Linear(features_in, NUM_CLASSES)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.out((x[:, 0] - self.mean) / self.scale)


TORCH_MODELS: dict[str, Callable[[int], nn.Module]] = {
    "s1_lstm": WindowLSTM,
    "bilstm": MaskedBiLSTM,
    "s4_cnn_lstm": ConvLSTM2D,
    "functionals": Functionals,
}


def torch_windows(x: torch.Tensor) -> torch.Tensor:
    """``[B, T, D]`` -> S1's windows ``[B * W, 25, D]`` (``unfold``: a view, then one copy)."""
    w = x.unfold(1, S1_WINDOW, S1_SHIFT)  # [B, W, D, 25]
    return w.transpose(-1, -2).reshape(-1, S1_WINDOW, x.shape[-1])


# ---------------------------------------------------------------- steps, both sides


def torch_param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def torch_steps(task: Task, batch: dict, infer: dict, device: str, compile_model: bool):
    """PyTorch ``(train_call, infer_call, params)``; each call runs to completion.

    With ``compile_model``, the model (not the optimizer) goes through ``torch.compile``.
    """
    torch.manual_seed(0)
    model = TORCH_MODELS[task.name](task.train_shape[-1]).to(device)
    params = torch_param_count(model)
    run = torch.compile(model) if compile_model else model
    lr = FUNCTIONAL_LR if task.name == "functionals" else LEARNING_RATE
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    x, lengths, labels = (torch.as_tensor(batch[k]).to(device) for k in ("x", "lengths", "labels"))
    labels = labels.long()
    ix, il = torch.as_tensor(infer["x"]).to(device), torch.as_tensor(infer["lengths"]).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def train_call():
        model.train()
        for _ in range(task.steps_per_call):
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(run(x, lengths), labels)
            loss.backward()
            optimizer.step()
        sync()

    def infer_call():
        model.eval()
        with torch.inference_mode():
            if task.name == "s1_lstm":
                windows = torch_windows(ix)
                probs = torch.softmax(run(windows), -1).reshape(ix.shape[0], -1, NUM_CLASSES)
                probs = probs.mean(1)
            else:
                probs = torch.softmax(run(ix, il), -1)
        sync()
        return probs

    return train_call, infer_call, params


def _train_step(graphdef, state, x, lengths, labels):
    """serjax's training step form (``serjax.train.train_step``): the split model and
    optimizer state in, the new state out, under ``jax.jit`` with the state donated."""
    model, optimizer = nnx.merge(graphdef, state)

    def loss_fn(model):
        logits = model(x, lengths)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), loss


def _infer_step(graphdef, state, x, lengths, *, windowed: bool):
    """Eval-mode probabilities ``[B, K]``; S1's as ``serjax.forward`` forms them: the mean of
    each utterance's windows' softmax (``serjax.features.segments``)."""
    model = nnx.merge(graphdef, state)
    if not windowed:
        return jax.nn.softmax(model(x, lengths))
    cut, steps, _ = features.segments(x, lengths, frames=S1_WINDOW, shift=S1_SHIFT)
    b, w = cut.shape[:2]
    probs = jax.nn.softmax(model(cut.reshape(b * w, *cut.shape[2:]), steps.reshape(-1)))
    return probs.reshape(b, w, -1).mean(1)  # full-length utterances: every window is valid


def _fit(graphdef, state, z, labels):
    """The functionals classifier's fit (``serjax.fit_functionals.fit_head``)."""
    model = nnx.merge(graphdef, state)
    targets = jax.nn.one_hot(labels, NUM_CLASSES)
    weights = jnp.ones(labels.shape, jnp.float32)
    l2 = jnp.float32(0.0)
    return fit_head(
        model.head, z, targets, weights, l2, steps=FUNCTIONAL_STEPS, learning_rate=FUNCTIONAL_LR
    )


@dataclasses.dataclass
class Compiled:
    """A compiled serjax call: ``call()`` runs it to completion; XLA's view of its memory."""

    call: Callable[[], object]
    compile_s: float
    xla_bytes: int


def _xla_bytes(compiled) -> int:
    analysis = compiled.memory_analysis()
    if analysis is None:
        return 0
    return analysis.temp_size_in_bytes + analysis.output_size_in_bytes


@contextlib.contextmanager
def lstm_implementation(name: str):
    """While open, serjax's LSTM layers traced inside run as ``name``: ``"scan"`` (as they
    are, ``recurrent.recurrent_layer``) or ``"cudnn"`` (``recurrent.cudnn_lstm_layer``, same
    weights, GPU only). Compile inside it: a traced program keeps what it traced."""
    original = recurrent.recurrent_layer

    def dispatch(x, lengths, kernel, recurrent_kernel, bias, *, cell, reverse):
        if cell != "lstm":
            return original(x, lengths, kernel, recurrent_kernel, bias, cell=cell, reverse=reverse)
        return recurrent.cudnn_lstm_layer(
            x, lengths, kernel, recurrent_kernel, bias, reverse=reverse
        )

    if name == "cudnn":
        recurrent.recurrent_layer = dispatch
    elif name != "scan":
        raise ValueError(f"LSTM implementation must be 'scan' or 'cudnn', got {name!r}")
    try:
        yield
    finally:
        recurrent.recurrent_layer = original


def serjax_steps(task: Task, batch: dict, infer: dict, timer: Callable[[], float]):
    """serjax ``(train: Compiled, infer: Compiled, params)``, compiled ahead of time
    (``.lower(...).compile()``, timed with ``timer``) in the form ``serjax.train`` runs them:
    ``jax.jit`` of a function of the split state."""
    model = create_model(
        task.registry_name,
        num_features=task.train_shape[-1],
        num_classes=NUM_CLASSES,
        rngs=nnx.Rngs(0),
        **task.hparams,
    )
    params = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    x, lengths, labels = (jnp.asarray(batch[k]) for k in ("x", "lengths", "labels"))
    ix, il = jnp.asarray(infer["x"]), jnp.asarray(infer["lengths"])
    # Inference gets its own copy of the parameters: training donates (frees) its state.
    model.eval()
    eval_graph, eval_state = nnx.split(model)
    eval_state = jax.tree.map(jnp.copy, eval_state)
    model.train()
    start = timer()
    if task.name == "functionals":
        graphdef, state = nnx.split(model)
        z = x[:, 0]
        train_exe = jax.jit(functools.partial(_fit, graphdef)).lower(state, z, labels).compile()

        def train_call():
            return jax.block_until_ready(train_exe(state, z, labels))
    else:
        optimizer = nnx.Optimizer(model, optax.adam(LEARNING_RATE), wrt=nnx.Param)
        graphdef, state = nnx.split((model, optimizer))
        step = jax.jit(functools.partial(_train_step, graphdef), donate_argnums=0)
        train_exe = step.lower(state, x, lengths, labels).compile()
        held = [state]

        def train_call():
            held[0], loss = train_exe(held[0], x, lengths, labels)
            return jax.block_until_ready(loss)

    train = Compiled(train_call, timer() - start, _xla_bytes(train_exe))
    start = timer()
    windowed = task.name == "s1_lstm"
    infer_step = jax.jit(functools.partial(_infer_step, eval_graph, windowed=windowed))
    infer_exe = infer_step.lower(eval_state, ix, il).compile()
    inference = Compiled(
        lambda: jax.block_until_ready(infer_exe(eval_state, ix, il)),
        timer() - start,
        _xla_bytes(infer_exe),
    )
    return train, inference, params
