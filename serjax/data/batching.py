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
      segment_index: int32 ``[B, G]``, drawn segments (``iterate_segment_batches``): the
        segment numbers of each row the step trains on; None: every segment.
      segment_mask: bool ``[B, G]``, False on slots that draw nothing; None with the above.
      index: int ``[B]``, each row's position in the waveforms the batch was drawn from
        (padding rows repeat the first row's), so per-utterance data can follow the batch.
    """

    waveforms: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    segment_index: np.ndarray | None = None
    segment_mask: np.ndarray | None = None
    index: np.ndarray | None = None


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


def _segment_groups(
    segment_counts: np.ndarray, group: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every utterance's segments, shuffled within the utterance and cut into groups of
    ``group``: ``(utterance [N_g], index [N_g, group], valid [N_g, group])``."""
    owners, indices = [], []
    for utt, count in enumerate(segment_counts):
        order = rng.permutation(int(count))
        pad = -len(order) % group
        order = np.concatenate([order, np.full(pad, -1)]).reshape(-1, group)
        owners.append(np.full(order.shape[0], utt))
        indices.append(order)
    index = np.concatenate(indices)
    return np.concatenate(owners), np.maximum(index, 0), index >= 0


def _buckets_of(lengths: np.ndarray, buckets: Sequence[int] | None):
    """The checked buckets (default: one, the longest length) and each length's bucket."""
    buckets = _check_buckets(buckets if buckets is not None else (max(int(lengths.max()), 1),))
    return buckets, np.minimum(np.searchsorted(buckets, lengths, side="left"), len(buckets) - 1)


def num_segment_batches(
    lengths: Sequence[int],
    segment_counts: Sequence[int],
    *,
    segment_batch: int,
    group: int,
    buckets: Sequence[int] | None,
) -> int:
    """How many batches ``iterate_segment_batches`` yields per epoch (the same every epoch)."""
    _, bucket_of = _buckets_of(np.asarray(lengths, dtype=np.int64), buckets)
    plan = plan_segment_batches(
        segment_counts, bucket_of, segment_batch=segment_batch, group=group, seed=0, epoch=0
    )
    return len(plan)


def plan_segment_batches(
    segment_counts: Sequence[int],
    bucket_of: Sequence[int],
    *,
    segment_batch: int,
    group: int,
    seed: int,
    epoch: int,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of segment draws (S1 trains on minibatches of segments from the whole set).

    Every segment of every utterance is drawn exactly once per epoch, in an order drawn from
    ``(seed, epoch)``: each utterance's segments are shuffled and cut into groups of ``group``,
    and a step takes ``segment_batch // group`` groups of one length bucket, so a step sees
    ``segment_batch`` segments of up to ``segment_batch // group`` utterances. With ``group``
    1 (S1's reading) the segments of a step are drawn across the whole training set.

    Args:
      segment_counts: valid segments of each utterance (``serjax.features.num_segments``).
      bucket_of: the length bucket of each utterance.
      segment_batch: segments per step, a multiple of ``group``.
      group: segments drawn together from one utterance; each costs the step one utterance's
        features, so larger groups make a step cheaper.
      seed, epoch: the draw; the same pair gives the same plan (a resumed run draws as an
        uninterrupted one).

    Returns:
      Per step ``(utterances [R], index [R, group], valid [R, group])`` with
      ``R <= segment_batch // group`` rows; the last step of an epoch may have fewer.
    """
    if group < 1 or segment_batch < group or segment_batch % group:
        raise ValueError(
            f"segment_batch ({segment_batch}) must be a positive multiple of group ({group})"
        )
    rng = np.random.default_rng([seed, epoch])
    owners, index, valid = _segment_groups(np.asarray(segment_counts), group, rng)
    bucket_of = np.asarray(bucket_of)[owners]
    plan = _plan_shuffled(bucket_of, segment_batch // group, rng)
    return [(owners[rows], index[rows], valid[rows]) for rows in plan]


def iterate_segment_batches(
    waveforms: Sequence[np.ndarray],
    labels: Sequence[int],
    segment_counts: Sequence[int],
    *,
    segment_batch: int,
    group: int,
    buckets: Sequence[int] | None,
    seed: int,
    epoch: int = 0,
) -> Iterator[Batch]:
    """Training batches of drawn segments (:func:`plan_segment_batches`).

    Every batch has ``segment_batch // group`` rows, one per group of drawn segments: the
    group's utterance (padded as :func:`iterate_batches` pads it), its label and, in
    ``segment_index``/``segment_mask``, which of its segments to train on. An utterance drawn
    in two groups of one step fills two rows. Rows that fill up the last step have ``mask``
    False.
    """
    n = len(waveforms)
    if n == 0 or len(labels) != n or len(segment_counts) != n:
        raise ValueError(
            f"need as many labels and segment counts as waveforms (> 0): {n} waveforms, "
            f"{len(labels)} labels, {len(segment_counts)} counts"
        )
    lengths = np.asarray([w.shape[0] for w in waveforms], dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int32)
    buckets, bucket_of = _buckets_of(lengths, buckets)
    rows = segment_batch // group
    plan = plan_segment_batches(
        segment_counts, bucket_of, segment_batch=segment_batch, group=group, seed=seed, epoch=epoch
    )
    for utts, index, valid in plan:
        batch = _make_batch(waveforms, lengths, labels, utts, buckets[bucket_of[utts].max()], rows)
        pad = rows - utts.shape[0]
        yield batch._replace(
            segment_index=np.pad(index, ((0, pad), (0, 0))).astype(np.int32),
            segment_mask=np.pad(valid, ((0, pad), (0, 0))),
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
        index=rows,
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
