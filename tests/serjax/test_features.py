"""The model-input transform: S1's segments and S2's time average, checked by hand."""

import jax.numpy as jnp
import numpy as np
import pytest

from serjax import config_lib
from serjax.features import (
    FeatureSpec,
    num_segments,
    segment_counts,
    segments,
    segments_at,
    time_average,
)


def _sequence(batch, steps, dims):
    # Entry [b, t, d] = 1000 b + 10 t + d identifies where every value came from.
    b, t, d = np.meshgrid(np.arange(batch), np.arange(steps), np.arange(dims), indexing="ij")
    return jnp.asarray(1000 * b + 10 * t + d, jnp.float32)


def test_segments_cut_every_shift_frames_inside_the_valid_steps():
    x = _sequence(2, 12, 2)
    cut, steps, valid = segments(x, jnp.array([12, 7]), frames=4, shift=3)
    # (12 - 4) // 3 + 1 = 3 segments starting at 0, 3, 6.
    assert cut.shape == (2, 3, 4, 2)
    np.testing.assert_array_equal(cut[0, 1, :, 0], [30, 40, 50, 60])
    np.testing.assert_array_equal(cut[1, 2, :, 1], [1061, 1071, 1081, 1091])
    # Example 1 has 7 valid steps: segments at 0 and 3 fit, the one at 6 does not.
    np.testing.assert_array_equal(valid, [[True, True, True], [True, True, False]])
    np.testing.assert_array_equal(steps, [[4, 4, 4], [4, 4, 4]])


def test_an_utterance_shorter_than_a_segment_gives_one_short_segment():
    x = _sequence(2, 3, 1)
    cut, steps, valid = segments(x, jnp.array([3, 2]), frames=5, shift=2)
    assert cut.shape == (2, 1, 5, 1)
    np.testing.assert_array_equal(valid, [[True], [True]])
    np.testing.assert_array_equal(steps, [[3], [2]])
    np.testing.assert_array_equal(cut[0, 0, :, 0], [0, 10, 20, 0, 0])


def test_time_average_averages_valid_frames_only():
    # The padded frame holds large values, so counting it in the sum or the divisor shows.
    feats = jnp.array([[[1.0, 2.0], [3.0, 4.0], [100.0, -50.0]]])
    spec = FeatureSpec(frontend=None, time_average=True)
    x, steps = time_average(feats, jnp.array([2]), spec)
    np.testing.assert_allclose(x[0, :, 0], [2.0, 3.0])
    np.testing.assert_array_equal(steps, [2])


@pytest.mark.parametrize(
    ("kind", "deltas", "averaged", "expected"),
    [("log_mel", 2, False, 120), ("mfcc", 2, False, 39), ("mfcc", 0, True, 1)],
)
def test_spec_from_config_sizes_the_model_input(kind, deltas, averaged, expected):
    from serjax import config_lib

    config = config_lib.base_config()
    config.features.kind = kind
    config.features.deltas = deltas
    config.features.time_average = averaged
    spec = FeatureSpec.from_config(config)
    assert spec.num_features == expected
    assert spec.frontend.sample_rate == config.data.sample_rate
    hash(spec)  # a static argument of jit must be hashable


def test_drawn_segments_are_the_segments_of_their_rows():
    x = _sequence(3, 40, 2)
    steps = jnp.asarray([40, 17, 5])
    index = jnp.asarray([[0, 10, 4], [2, 0, 1], [0, 0, 3]])
    cut, cut_steps, valid = segments_at(x, steps, index, frames=10, shift=3)
    assert cut.shape == (3, 3, 10, 2)
    for b in range(3):
        for g in range(3):
            start = 3 * int(index[b, g])
            # Entry [b, t, d] = 1000 b + 10 t + d: row b's steps start .. start + 9.
            expected = 1000 * b + 10 * np.arange(start, start + 10)
            expected = np.where(np.arange(start, start + 10) < 40, expected, 1000 * b + 390)
            np.testing.assert_array_equal(cut[b, g, :, 0], expected)
    # Valid: inside the valid steps (start + 10 <= steps), or the first segment.
    np.testing.assert_array_equal(
        valid, [[True, True, True], [True, True, True], [True, True, False]]
    )
    np.testing.assert_array_equal(cut_steps, [[10, 10, 10], [10, 10, 10], [5, 5, 10]])


@pytest.mark.parametrize("n_frames", [1, 9, 10, 11, 12, 13, 40, 41])
def test_num_segments_counts_the_valid_segments(n_frames):
    x = jnp.zeros((1, 50, 1))
    _, _, valid = segments(x, jnp.asarray([n_frames]), frames=10, shift=3)
    # By hand: starts 0, 3, 6, ... with start + 10 <= n_frames, and always the first.
    expected = max(1, len([s for s in range(0, 50, 3) if s + 10 <= n_frames]))
    assert int(valid.sum()) == expected == num_segments(n_frames, frames=10, shift=3)


def test_segment_counts_follow_the_centred_frame_count():
    config = config_lib.base_config()
    config.features.segment_frames = 25
    spec = FeatureSpec.from_config(config)
    lengths = np.array([100, 4000, 16000, 48000])
    # librosa's centred STFT: 1 + L // hop frames (hop 160, n_fft 512).
    frames = 1 + lengths // 160
    expected = [max(1, (f - 25) // 3 + 1) if f >= 25 else 1 for f in frames]
    np.testing.assert_array_equal(segment_counts(lengths, spec), expected)


def test_a_segment_drawn_past_the_end_is_invalid_and_finite():
    x = _sequence(1, 12, 1)
    cut, steps, valid = segments_at(x, jnp.array([12]), jnp.array([[5]]), frames=4, shift=3)
    # Steps 15..18 do not exist: the last step repeats, and the segment is not valid.
    np.testing.assert_array_equal(cut[0, 0, :, 0], [110, 110, 110, 110])
    assert not bool(valid[0, 0]) and int(steps[0, 0]) == 4
