"""Segments drawn across the training set (``train.segment_batch``): the host's plan."""

import collections

import numpy as np
import pytest

from serjax.data import iterate_segment_batches, num_segment_batches, plan_segment_batches


def _data(lengths, seed=0):
    rng = np.random.default_rng(seed)
    waves = [(1 + rng.random(n)).astype(np.float32) for n in lengths]
    labels = [i % 3 for i in range(len(lengths))]
    return waves, labels


def _owner(row: np.ndarray, length: int, waves) -> int:
    """The input a batch row holds, matched sample by sample."""
    (match,) = [j for j, w in enumerate(waves) if len(w) == length and np.array_equal(row, w)]
    return match


LENGTHS = [900, 1500, 700, 2600, 1200, 3000, 400, 2000]
COUNTS = [3, 6, 1, 10, 5, 12, 1, 8]
BUCKETS = (1000, 2000, 3000)


@pytest.mark.parametrize(("segment_batch", "group"), [(8, 1), (8, 2), (12, 4)])
def test_an_epoch_draws_every_segment_once_with_its_utterances_label(segment_batch, group):
    waves, labels = _data(LENGTHS)
    drawn = collections.Counter()
    batches = list(
        iterate_segment_batches(
            waves,
            labels,
            COUNTS,
            segment_batch=segment_batch,
            group=group,
            buckets=BUCKETS,
            seed=3,
            epoch=1,
        )
    )
    rows = segment_batch // group
    for batch in batches:
        # Fixed shapes: rows x a bucket's length, and rows x group draws.
        assert batch.waveforms.shape[0] == rows and batch.waveforms.shape[1] in BUCKETS
        assert batch.segment_index.shape == batch.segment_mask.shape == (rows, group)
        assert batch.segment_index.dtype == np.int32
        for row in np.flatnonzero(batch.mask):
            n = int(batch.lengths[row])
            utt = _owner(batch.waveforms[row, :n], n, waves)
            assert batch.labels[row] == labels[utt]
            assert not batch.waveforms[row, n:].any()
            for k in batch.segment_index[row][batch.segment_mask[row]]:
                assert 0 <= k < COUNTS[utt]
                drawn[(utt, int(k))] += 1
        # Padding rows draw nothing.
        assert not batch.segment_mask[~batch.mask].any()
    assert drawn == collections.Counter({(u, k): 1 for u, c in enumerate(COUNTS) for k in range(c)})
    # With group 1 every step but one is a full minibatch of segments.
    if group == 1:
        assert sum(b.segment_mask.sum() < segment_batch for b in batches) <= 1
    assert len(batches) == num_segment_batches(
        LENGTHS, COUNTS, segment_batch=segment_batch, group=group, buckets=BUCKETS
    )


def test_a_step_mixes_utterances_of_its_bucket():
    # 40 utterances of one bucket, 20 segments each: 128 draws hit many utterances and labels.
    counts = [20] * 40
    plan = plan_segment_batches(counts, [0] * 40, segment_batch=128, group=1, seed=0, epoch=0)
    assert len(plan) == -(-800 // 128)
    owners, _, _ = plan[0]
    assert len(set(owners.tolist())) > 20
    assert len({u % 3 for u in owners.tolist()}) == 3


def test_the_plan_depends_on_seed_and_epoch_only():
    args = dict(segment_batch=8, group=2, seed=5)
    buckets = [0, 1, 1, 2, 1, 2, 0, 1]
    first = plan_segment_batches(COUNTS, buckets, epoch=2, **args)
    again = plan_segment_batches(COUNTS, buckets, epoch=2, **args)
    other = plan_segment_batches(COUNTS, buckets, epoch=3, **args)
    assert len(first) == len(again)
    for a, b in zip(first, again, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    flat = lambda plan: np.concatenate([np.ravel(i) for _, i, _ in plan])  # noqa: E731
    assert not np.array_equal(flat(first), flat(other))


def test_a_group_draws_distinct_segments_of_its_utterance():
    buckets = [0, 1, 1, 2, 1, 2, 0, 1]
    for owners, index, valid in plan_segment_batches(
        COUNTS, buckets, segment_batch=12, group=4, seed=0, epoch=0
    ):
        assert owners.shape[0] <= 3 and index.shape[1] == 4
        for utt, ks, ok in zip(owners, index, valid, strict=True):
            assert ok[0] and len(set(ks[ok].tolist())) == ok.sum()
            assert ks[ok].max() < COUNTS[utt]


@pytest.mark.parametrize(("segment_batch", "group"), [(0, 1), (8, 3), (2, 4), (8, 0)])
def test_bad_sizes_are_refused(segment_batch, group):
    with pytest.raises(ValueError, match="multiple"):
        plan_segment_batches(
            COUNTS, [0] * 8, segment_batch=segment_batch, group=group, seed=0, epoch=0
        )
