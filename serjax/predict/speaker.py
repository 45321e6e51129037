"""Adapting a speaker-standardised run to one speaker's recordings.

A model on functionals (``features.kind="functionals"``) standardises its inputs with saved
statistics: the average training speaker's (``features.standardise="speaker"``) or the training
set's; a frame-level model with ``features.frame_standardise="speaker"`` keeps the training
part's frame statistics. Training with per-speaker standardisation uses each speaker's own
statistics, test speakers included; inference has them only when it is given several
recordings of the same person, which :func:`adapt` turns into the model's statistics.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import jax
import numpy as np
from flax import nnx

from serjax.features import FeatureSpec, functionals_of
from serjax.forward import input_statistics
from serjax.models.functionals import standardisation_statistics

if TYPE_CHECKING:
    from serjax.predict.predictor import Predictor

__all__ = ["MIN_RECORDINGS", "adapt"]

# Utterance functionals standardised by one speaker's statistics need a spread: one vector per
# recording, so at least two (frame-level statistics come from the frames of even one file).
MIN_RECORDINGS = 2


def adapt(predictor: Predictor, waveforms: Sequence[np.ndarray]) -> Predictor:
    """A copy of ``predictor`` whose standardisation statistics are those of ``waveforms``,
    as training standardises each speaker: their functionals'
    (``models.functionals.standardisation_statistics``, ``features.standardise="speaker"``), or
    their valid frames' mean and deviation (``serjax.forward.input_statistics``,
    ``features.frame_standardise="speaker"``).

    Adapting needs several recordings of the same person, ideally of varied emotions; the more,
    the closer to the speaker-standardised figures of the training report. The copy shares the
    compiled programs (only weights change, not the model's structure).

    Args:
      predictor: a predictor of a run on utterance functionals or with frame standardisation
        by speaker.
      waveforms: preprocessed recordings of one speaker (``Predictor.load`` / ``prepare``).

    Raises:
      ValueError: the run standardises by no speaker's statistics, no waveform is given, or
        fewer than ``MIN_RECORDINGS`` for a run on utterance functionals.
    """
    features = predictor.config.features
    frames = features.get("frame_standardise", "none") == "speaker"
    if features.kind != "functionals" and not frames:
        raise ValueError(
            "only runs on utterance functionals or with features.frame_standardise='speaker' "
            f"adapt to a speaker; this run's features.kind is {features.kind!r} and its "
            f"frame_standardise {features.get('frame_standardise', 'none')!r}"
        )
    if not waveforms:
        raise ValueError("adapting to a speaker needs at least one recording")
    if not frames and len(waveforms) < MIN_RECORDINGS:
        raise ValueError(
            f"adapting a run on utterance functionals needs at least {MIN_RECORDINGS} "
            f"recordings of the speaker, got {len(waveforms)}: one recording is its own mean, "
            "so standardising by it would leave the classifier nothing to tell files apart"
        )
    spec = FeatureSpec.from_config(predictor.config)
    if frames:
        statistics = input_statistics(list(waveforms), spec)
    else:
        statistics = standardisation_statistics(functionals_of(list(waveforms), spec))
    model = nnx.merge(predictor._graphdef, jax.device_get(predictor._state))
    model.standardiser.set(*statistics)
    adapted = copy.copy(predictor)
    adapted._state = jax.device_put(nnx.state(model))
    adapted._low_rates = {}
    return adapted
