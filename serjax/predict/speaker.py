"""Adapting a run on utterance functionals to one speaker's recordings.

A model on functionals (``features.kind="functionals"``) standardises its inputs with saved
statistics: the average training speaker's (``features.standardise="speaker"``) or the training
set's. Training with per-speaker standardisation uses each speaker's own statistics, test
speakers included; inference has them only when it is given several recordings of the same
person, which :func:`adapt` turns into the model's statistics.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import jax
import numpy as np
from flax import nnx

from serjax.features import FeatureSpec, functionals_of
from serjax.models.functionals import standardisation_statistics

if TYPE_CHECKING:
    from serjax.predict.predictor import Predictor

__all__ = ["adapt"]


def adapt(predictor: Predictor, waveforms: Sequence[np.ndarray]) -> Predictor:
    """A copy of ``predictor`` whose standardisation statistics are those of ``waveforms``'
    functionals (``models.functionals.standardisation_statistics``), as training standardises
    each speaker with ``features.standardise="speaker"``.

    Adapting needs several recordings of the same person, ideally of varied emotions; the more,
    the closer to the speaker-standardised figures of the training report. The copy shares the
    compiled programs (only weights change, not the model's structure).

    Args:
      predictor: a predictor of a run on utterance functionals.
      waveforms: preprocessed recordings of one speaker (``Predictor.load`` / ``prepare``).

    Raises:
      ValueError: the run is not on functionals, or no waveform is given.
    """
    kind = predictor.config.features.kind
    if kind != "functionals":
        raise ValueError(
            f"only runs on utterance functionals adapt to a speaker; this run's "
            f"features.kind is {kind!r}"
        )
    if not waveforms:
        raise ValueError("adapting to a speaker needs at least one recording")
    vectors = functionals_of(list(waveforms), FeatureSpec.from_config(predictor.config))
    model = nnx.merge(predictor._graphdef, jax.device_get(predictor._state))
    model.standardiser.set(*standardisation_statistics(vectors))
    adapted = copy.copy(predictor)
    adapted._state = jax.device_put(nnx.state(model))
    adapted._low_rates = {}
    return adapted
