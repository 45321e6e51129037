"""The model-input transform: S1's windows and the S2 summary, checked by hand."""

import jax.numpy as jnp
import numpy as np
import pytest

from serjax.features import FeatureSpec, summarize, windows


def _sequence(batch, steps, dims):
    # Entry [b, t, d] = 1000 b + 10 t + d identifies where every value came from.
    b, t, d = np.meshgrid(np.arange(batch), np.arange(steps), np.arange(dims), indexing="ij")
    return jnp.asarray(1000 * b + 10 * t + d, jnp.float32)


def test_windows_cut_every_shift_frames_inside_the_valid_steps():
    x = _sequence(2, 12, 2)
    cut, steps, valid = windows(x, jnp.array([12, 7]), frames=4, shift=3)
    # (12 - 4) // 3 + 1 = 3 windows starting at 0, 3, 6.
    assert cut.shape == (2, 3, 4, 2)
    np.testing.assert_array_equal(cut[0, 1, :, 0], [30, 40, 50, 60])
    np.testing.assert_array_equal(cut[1, 2, :, 1], [1061, 1071, 1081, 1091])
    # Example 1 has 7 valid steps: windows at 0 and 3 fit, the one at 6 does not.
    np.testing.assert_array_equal(valid, [[True, True, True], [True, True, False]])
    np.testing.assert_array_equal(steps, [[4, 4, 4], [4, 4, 4]])


def test_an_utterance_shorter_than_a_window_gives_one_short_window():
    x = _sequence(2, 3, 1)
    cut, steps, valid = windows(x, jnp.array([3, 2]), frames=5, shift=2)
    assert cut.shape == (2, 1, 5, 1)
    np.testing.assert_array_equal(valid, [[True], [True]])
    np.testing.assert_array_equal(steps, [[3], [2]])
    np.testing.assert_array_equal(cut[0, 0, :, 0], [0, 10, 20, 0, 0])


def test_mean_sequence_averages_valid_frames_only():
    feats = jnp.array([[[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]])
    spec = FeatureSpec(frontend=None, summary="mean_sequence")
    x, steps = summarize(feats, jnp.array([2]), spec)
    np.testing.assert_allclose(x[0, :, 0], [2.0, 3.0])
    np.testing.assert_array_equal(steps, [2])


@pytest.mark.parametrize(
    ("kind", "deltas", "summary", "expected"),
    [("mspec", 2, "none", 120), ("mfcc", 2, "none", 39), ("mfcc", 0, "mean_sequence", 1)],
)
def test_spec_from_config_sizes_the_model_input(kind, deltas, summary, expected):
    from serjax import config_lib

    config = config_lib.base_config()
    config.features.kind = kind
    config.features.deltas = deltas
    config.features.summary = summary
    spec = FeatureSpec.from_config(config)
    assert spec.num_features == expected
    assert spec.frontend.sample_rate == config.data.sample_rate
    hash(spec)  # a static argument of jit must be hashable
