"""The model-input transform: S1's segments and S2's time average, checked by hand."""

import jax.numpy as jnp
import numpy as np
import pytest

from serjax.features import FeatureSpec, segments, time_average


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
