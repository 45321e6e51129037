"""Padded waveform batches with a bounded set of shapes.

A batch is always ``[batch_size, T]`` with ``T`` taken from a short, fixed list of length
buckets, so a jitted step compiles at most ``len(buckets)`` times. Waveforms longer than the
largest bucket are cut to it (keeping the start); ``default_buckets`` derives buckets from the
data that cut nothing.

Rows that only fill up a partial batch have ``mask`` False. They repeat the batch's first
example rather than holding zeros, so that per-utterance computations on them (normalising by
length, say) stay finite and cannot put NaNs into a masked sum.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np


class Batch(NamedTuple):
    """One batch.

    Attributes:
      waveforms: float32 ``[B, T]``, zero after each row's length.
      lengths: int32 ``[B]``, samples of each row before padding.
      labels: int32 ``[B]`` class indices.
      mask: bool ``[B]``, False on rows that only pad a partial batch.
    """

    waveforms: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    mask: np.ndarray


def _check_buckets(buckets: Sequence[int]) -> tuple[int, ...]:
    buckets = tuple(int(b) for b in buckets)
    if not buckets or any(b <= 0 for b in buckets) or list(buckets) != sorted(set(buckets)):
        raise ValueError(f"buckets must be positive, strictly increasing lengths: {buckets}")
    return buckets


def bucket_length(n: int, buckets: Sequence[int]) -> int:
    """The smallest bucket that holds ``n`` samples, or the largest bucket if none does."""
    buckets = _check_buckets(buckets)
    return buckets[min(bisect.bisect_left(buckets, n), len(buckets) - 1)]


def length_ladder(longest: int, unit: int) -> tuple[int, ...]:
    """Padded lengths ``unit`` times 1, 2, 4, 8, ..., up to one that holds ``longest``.

    On a CPU, compiling a shape costs about as much as running hundreds of utterances, so
    octave-spaced lengths (a handful for any corpus, whatever the split) beat a finer ladder
    that pads less.
    """
    if unit < 1:
        raise ValueError(f"unit must be positive, got {unit}")
    ladder = [unit]
    while ladder[-1] < longest:
        ladder.append(2 * ladder[-1])
    return tuple(ladder)


def default_buckets(
    lengths: Sequence[int], n_buckets: int = 4, multiple: int = 1600
) -> tuple[int, ...]:
    """Buckets at the ``i / n_buckets`` quantiles of ``lengths``, rounded up to ``multiple``.

    The last bucket is the longest length rounded up, so no waveform is cut. 1600 samples is
    0.1 s at 16 kHz, a whole number of 10 ms hops. Quantiles that round to the same value
    merge, so fewer than ``n_buckets`` may come back.
    """
    lengths = np.asarray(lengths)
    if lengths.size == 0 or n_buckets < 1 or multiple < 1:
        raise ValueError("need at least one length, n_buckets >= 1 and multiple >= 1")
    quantiles = np.quantile(lengths, np.arange(1, n_buckets + 1) / n_buckets, method="higher")
    rounded = -(-quantiles.astype(np.int64) // multiple) * multiple
    return tuple(sorted({max(int(b), multiple) for b in rounded}))


def num_batches(n: int, batch_size: int, drop_remainder: bool = False) -> int:
    """How many batches ``iterate_batches`` yields for ``n`` examples."""
    return n // batch_size if drop_remainder else -(-n // batch_size)


def _plan_shuffled(
    bucket_of: np.ndarray, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Random batches of examples that share a bucket; at most one batch is partial.

    Examples left over in one bucket move up into the next, where they fit, so only the last
    bucket can end with a partial batch.
    """
    order = rng.permutation(bucket_of.shape[0])
    batches: list[np.ndarray] = []
    carry = np.zeros(0, dtype=np.int64)
    for b in range(int(bucket_of.max()) + 1):
        pool = np.concatenate([carry, order[bucket_of[order] == b]])
        full = pool.shape[0] // batch_size * batch_size
        batches.extend(pool[i : i + batch_size] for i in range(0, full, batch_size))
        carry = pool[full:]
    if carry.size:
        batches.append(carry)
    return [batches[i] for i in rng.permutation(len(batches))]


def iterate_batches(
    waveforms: Sequence[np.ndarray],
    labels: Sequence[int],
    *,
    batch_size: int,
    buckets: Sequence[int] | None,
    shuffle: bool,
    seed: int,
    epoch: int = 0,
    drop_remainder: bool = False,
) -> Iterator[Batch]:
    """Yields padded batches.

    With ``shuffle=True`` (training) the order is drawn from ``(seed, epoch)``, and each batch
    holds examples of one length bucket, so short utterances are not padded to the longest
    one. With ``shuffle=False`` (evaluation) batches follow the input order: the rows whose
    mask is True, concatenated, are the inputs in order.

    Every batch has ``batch_size`` rows. The one partial batch (if ``len(waveforms)`` is not a
    multiple of ``batch_size``) is padded with ``mask`` False rows, or dropped when
    ``drop_remainder`` is True, in both modes.

    Args:
      waveforms: float ``[T_i]`` arrays.
      labels: class index per waveform.
      batch_size: rows per batch.
      buckets: allowed ``T`` values, increasing; None uses one: the longest waveform.
      shuffle: shuffle (training) or keep the input order (evaluation).
      seed: the config's seed.
      epoch: mixed into the shuffle so every epoch has its own order.
      drop_remainder: drop the partial batch instead of padding it.
    """
    n = len(waveforms)
    if n == 0 or len(labels) != n:
        raise ValueError(f"need as many labels as waveforms (> 0): {n} waveforms, {len(labels)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for i, w in enumerate(waveforms):
        if np.ndim(w) != 1:
            raise ValueError(f"waveform {i} has shape {np.shape(w)}; expected [T]")
    lengths = np.asarray([w.shape[0] for w in waveforms], dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int32)
    buckets = _check_buckets(buckets if buckets is not None else (max(int(lengths.max()), 1),))
    bucket_of = np.minimum(np.searchsorted(buckets, lengths, side="left"), len(buckets) - 1)

    if shuffle:
        plan = _plan_shuffled(bucket_of, batch_size, np.random.default_rng([seed, epoch]))
    else:
        plan = np.split(np.arange(n), range(batch_size, n, batch_size))
    for idx in plan:
        if idx.shape[0] < batch_size and drop_remainder:
            continue
        yield _make_batch(
            waveforms, lengths, labels, idx, buckets[bucket_of[idx].max()], batch_size
        )


def _make_batch(
    waveforms: Sequence[np.ndarray],
    lengths: np.ndarray,
    labels: np.ndarray,
    idx: np.ndarray,
    t: int,
    batch_size: int,
) -> Batch:
    rows = np.concatenate([idx, np.full(batch_size - idx.shape[0], idx[0])])
    out = np.zeros((batch_size, t), dtype=np.float32)
    for row, i in enumerate(rows):
        x = waveforms[i][:t]
        out[row, : x.shape[0]] = x
    return Batch(
        waveforms=out,
        lengths=np.minimum(lengths[rows], t).astype(np.int32),
        labels=labels[rows],
        mask=np.arange(batch_size) < idx.shape[0],
    )


def class_weights(labels: Sequence[int], num_classes: int) -> np.ndarray:
    """Inverse-frequency weights ``[num_classes]`` float32, scaled to average 1 per example.

    ``n / (k * count_c)`` with ``k`` the number of classes present (scikit-learn's "balanced");
    a class with no example gets 0.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        raise ValueError("class_weights needs at least one label")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"labels must be in [0, {num_classes}), got {labels.min()}..{labels.max()}"
        )
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = np.count_nonzero(counts)
    weights = np.divide(labels.size, present * counts, out=np.zeros_like(counts), where=counts > 0)
    return weights.astype(np.float32)
