"""The functionals classifier's standardisation statistics, against hand-computed values."""

import numpy as np
import pytest
from flax import nnx

from serjax.models import FunctionalsClassifier, create_model
from serjax.models.functionals import (
    MIN_SCALE,
    average_speaker_statistics,
    speaker_standardised,
    standardisation_statistics,
)

# Two speakers, two functionals; the second functional is constant for speaker "b".
X = np.array([[1.0, 10.0], [3.0, 14.0], [5.0, 7.0], [9.0, 7.0]])
SPEAKERS = np.array(["a", "a", "b", "b"])


def test_standardisation_statistics_by_hand():
    mean, scale = standardisation_statistics(X)
    np.testing.assert_allclose(mean, [4.5, 9.5])
    # Population deviations: sqrt(mean of squared deviations).
    np.testing.assert_allclose(scale, [np.sqrt((12.25 + 2.25 + 0.25 + 20.25) / 4), 2.8722813])
    assert mean.dtype == scale.dtype == np.float32
    _, flat = standardisation_statistics(X[2:])
    np.testing.assert_array_equal(flat, [2.0, 1.0])  # a constant column is not scaled
    with pytest.raises(ValueError, match="shape"):
        standardisation_statistics(np.zeros((0, 2)))


def test_speaker_standardised_uses_each_speakers_own_statistics():
    z = speaker_standardised(X, SPEAKERS)
    # a: means (2, 12), deviations (1, 2); b: means (7, 7), deviations (2, below MIN_SCALE -> 1).
    np.testing.assert_allclose(z, [[-1, -1], [1, 1], [-1, 0], [1, 0]])
    assert MIN_SCALE > 0


def test_average_speaker_statistics_by_hand():
    mean, scale = average_speaker_statistics(X, SPEAKERS)
    np.testing.assert_allclose(mean, [(2 + 7) / 2, (12 + 7) / 2])
    # Root mean of the within-speaker variances: a (1, 4), b (4, 0).
    np.testing.assert_allclose(scale, [np.sqrt(2.5), np.sqrt(2.0)])
    with pytest.raises(ValueError, match="speaker names"):
        average_speaker_statistics(X, SPEAKERS[:3])


def test_classifier_standardises_with_its_statistics():
    model = create_model("functionals", num_features=2, num_classes=3, rngs=nnx.Rngs(0))
    assert isinstance(model, FunctionalsClassifier)
    model.standardiser.set(np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    x = np.array([[3.0, 6.0], [1.0, 2.0]], np.float32)
    expected = model.head(np.array([[1.0, 1.0], [0.0, 0.0]], np.float32))
    np.testing.assert_allclose(model(x[:, None, :], None), expected, rtol=1e-6)
    np.testing.assert_allclose(model(x), expected, rtol=1e-6)
    # Statistics are not parameters: an optimiser over nnx.Param never touches them.
    params = nnx.state(model, nnx.Param)
    assert all("standardiser" not in "/".join(map(str, p)) for p, _ in nnx.to_flat_state(params))
    with pytest.raises(ValueError, match="shape"):
        model.standardiser.set(np.zeros(3), np.ones(3))
