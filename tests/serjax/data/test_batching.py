import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serjax.data import (
    Batch,
    bucket_length,
    class_weights,
    default_buckets,
    iterate_batches,
    num_batches,
)


def _data(lengths, seed=0):
    """Random waveforms (distinct with certainty) and labels."""
    rng = np.random.default_rng(seed)
    waves = [(1 + rng.random(n)).astype(np.float32) for n in lengths]
    labels = [i % 5 for i in range(len(lengths))]
    return waves, labels


def _identify(batch: Batch, waves) -> list[int]:
    """Indices of the inputs in the batch's real rows, matched sample by sample."""
    found = []
    for row in np.flatnonzero(batch.mask):
        n = batch.lengths[row]
        matches = [
            j
            for j, w in enumerate(waves)
            if w.shape[0] >= n and np.array_equal(batch.waveforms[row, :n], w[:n])
        ]
        assert len(matches) == 1, row
        found.append(matches[0])
        assert not batch.waveforms[row, n:].any()
    return found


def test_bucket_length():
    assert bucket_length(1, [100, 200]) == 100
    assert bucket_length(100, [100, 200]) == 100
    assert bucket_length(101, [100, 200]) == 200
    assert bucket_length(10_000, [100, 200]) == 200  # longer inputs are cut to the last
    for bad in ([], [200, 100], [0, 100], [100, 100]):
        with pytest.raises(ValueError, match="buckets"):
            bucket_length(5, bad)


def test_default_buckets():
    lengths = np.arange(1, 1001) * 16  # 16 .. 16000
    # Quantiles ("higher"): 4016, 8016, 12016, 16000, each rounded up to a multiple of 1600.
    assert default_buckets(lengths, n_buckets=4, multiple=1600) == (4800, 9600, 12800, 16000)
    assert default_buckets([3000, 3000, 3000], n_buckets=4, multiple=1600) == (3200,)
    buckets = default_buckets([1, 5, 17_001], n_buckets=2, multiple=1000)
    assert buckets[-1] == 18_000 and all(b % 1000 == 0 for b in buckets)


def test_eval_batches_keep_order_and_pad_the_last_one():
    lengths = [500, 90, 1200, 300, 2600, 800, 70]
    waves, labels = _data(lengths)
    buckets = (400, 1600, 3200)
    batches = list(
        iterate_batches(waves, labels, batch_size=3, buckets=buckets, shuffle=False, seed=0)
    )
    assert len(batches) == num_batches(len(waves), 3) == 3
    assert [b.waveforms.shape for b in batches] == [(3, 1600), (3, 3200), (3, 400)]
    for b in batches:
        assert b.waveforms.dtype == np.float32
        assert b.lengths.dtype == np.int32 and b.labels.dtype == np.int32
        assert b.mask.dtype == bool
    assert [b.mask.tolist() for b in batches] == [[True] * 3, [True] * 3, [True, False, False]]
    order = [i for b in batches for i in _identify(b, waves)]
    assert order == list(range(len(waves)))
    np.testing.assert_array_equal(np.concatenate([b.lengths[b.mask] for b in batches]), lengths)
    np.testing.assert_array_equal(np.concatenate([b.labels[b.mask] for b in batches]), labels)


def test_padding_rows_are_finite_copies():
    waves, labels = _data([100, 200, 300])
    (_, last) = iterate_batches(waves, labels, batch_size=2, buckets=None, shuffle=False, seed=0)
    assert last.mask.tolist() == [True, False]
    assert last.lengths.tolist() == [300, 300]  # never 0, so per-row means stay finite
    np.testing.assert_array_equal(last.waveforms[1], last.waveforms[0])


def test_no_buckets_means_one_shape_the_longest():
    waves, labels = _data([100, 250, 30])
    shapes = {
        b.waveforms.shape
        for b in iterate_batches(waves, labels, batch_size=2, buckets=None, shuffle=True, seed=1)
    }
    assert shapes == {(2, 250)}


def test_longer_waveforms_are_cut_to_the_largest_bucket():
    waves, labels = _data([1000, 50])
    (batch,) = iterate_batches(
        waves, labels, batch_size=2, buckets=[64, 512], shuffle=False, seed=0
    )
    assert batch.waveforms.shape == (2, 512)
    assert batch.lengths.tolist() == [512, 50]
    np.testing.assert_array_equal(batch.waveforms[0], waves[0][:512])


def test_training_batches_are_full_bucketed_and_cover_the_data():
    rng = np.random.default_rng(0)
    lengths = rng.integers(100, 4000, size=203)
    waves, labels = _data(lengths)
    buckets = (1000, 2000, 4000)
    kwargs = dict(batch_size=16, buckets=buckets, shuffle=True, seed=7)
    batches = list(iterate_batches(waves, labels, epoch=0, **kwargs))
    assert len(batches) == num_batches(203, 16) == 13
    assert all(b.waveforms.shape[0] == 16 for b in batches)
    assert {b.waveforms.shape[1] for b in batches} <= set(buckets)
    assert sum(not b.mask.all() for b in batches) == 1
    seen = sorted(i for b in batches for i in _identify(b, waves))
    assert seen == list(range(203))
    # Bucketing: a batch is only as long as the bucket of its longest member.
    for b in batches:
        assert b.waveforms.shape[1] == bucket_length(int(b.lengths.max()), buckets)
    assert np.mean([b.waveforms.shape[1] for b in batches]) < 4000

    again = list(iterate_batches(waves, labels, epoch=0, **kwargs))
    assert all(
        np.array_equal(a.waveforms, b.waveforms) for a, b in zip(batches, again, strict=True)
    )
    other_epoch = list(iterate_batches(waves, labels, epoch=1, **kwargs))
    assert [b.lengths.tolist() for b in other_epoch] != [b.lengths.tolist() for b in batches]


def test_drop_remainder():
    waves, labels = _data([10] * 10)
    for shuffle in (True, False):
        batches = list(
            iterate_batches(
                waves,
                labels,
                batch_size=4,
                buckets=None,
                shuffle=shuffle,
                seed=0,
                drop_remainder=True,
            )
        )
        assert len(batches) == num_batches(10, 4, drop_remainder=True) == 2
        assert all(b.mask.all() for b in batches)


def test_argument_errors():
    waves, labels = _data([10, 20])
    with pytest.raises(ValueError, match="labels"):
        next(iterate_batches(waves, [0], batch_size=1, buckets=None, shuffle=False, seed=0))
    with pytest.raises(ValueError, match="batch_size"):
        next(iterate_batches(waves, labels, batch_size=0, buckets=None, shuffle=False, seed=0))
    with pytest.raises(ValueError, match="expected"):
        next(
            iterate_batches(
                [np.zeros((10, 2))], [0], batch_size=1, buckets=None, shuffle=False, seed=0
            )
        )


@settings(max_examples=50, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=40),
    batch_size=st.integers(1, 9),
    shuffle=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_every_example_appears_once(lengths, batch_size, shuffle, seed):
    waves = [np.full(n, i + 1, dtype=np.float32) for i, n in enumerate(lengths)]
    labels = list(range(len(lengths)))
    buckets = (50, 120, 300)
    batches = list(
        iterate_batches(
            waves, labels, batch_size=batch_size, buckets=buckets, shuffle=shuffle, seed=seed
        )
    )
    assert len(batches) == num_batches(len(lengths), batch_size)
    real = np.concatenate([b.labels[b.mask] for b in batches])
    assert sorted(real.tolist()) == labels
    if not shuffle:
        assert real.tolist() == labels
    assert sum(not b.mask.all() for b in batches) == (len(lengths) % batch_size > 0)
    for b in batches:
        assert b.waveforms.shape in {(batch_size, t) for t in buckets}
        for row in range(batch_size):
            n = b.lengths[row]
            assert n == lengths[b.labels[row]]
            assert (b.waveforms[row, :n] == b.labels[row] + 1).all()
            assert not b.waveforms[row, n:].any()


def test_class_weights():
    weights = class_weights([0, 0, 0, 1, 2, 2], num_classes=4)
    # n / (k * count) with k = 3 classes present: 6 / (3 * [3, 1, 2]); absent class -> 0.
    np.testing.assert_allclose(weights, [2 / 3, 2.0, 1.0, 0.0])
    assert weights.dtype == np.float32
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        class_weights([0, 4], num_classes=4)
