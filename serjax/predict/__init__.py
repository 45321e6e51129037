"""Inference: a trained run applied to new audio, from Python or from the command line.

    python -m serjax.predict --workdir runs/emodb_lstm clip.wav recordings/
    python -m serjax.predict --workdir runs/emodb_lstm --segment 2 --hop 1 --vad long.flac
    sox -d -t wav - | python -m serjax.predict --workdir runs/emodb_lstm --segment 2 -

    predictor = Predictor.from_workdir("runs/emodb_lstm")
    probabilities = predictor.predict(waveform, sample_rate)  # [K], in predictor.class_names order

Modules: :mod:`~serjax.predict.predictor` (the :class:`Predictor`),
:mod:`~serjax.predict.timeline` (a recording read as a stream and cut into segments),
:mod:`~serjax.predict.run` (reading a run's folder and checkpoint),
:mod:`~serjax.predict.results` (what a prediction returns) and :mod:`~serjax.predict.cli` (the
command line). Inference imports the forward path,
features, checkpoints and data, never training, optax's training code, the writers or plotting.
Names are loaded on first use, so importing this package (or asking the command for ``--help``)
does not load JAX.
"""

from __future__ import annotations

from serjax._lazy import lazy_exports

# Public name -> the module that defines it.
_EXPORTS = {
    "DEFAULT_VAD_DB": "serjax.data.stream",
    "STDIN": "serjax.data.stream",
    "FileFailure": "serjax.predict.results",
    "FileResult": "serjax.predict.results",
    "LowSampleRateWarning": "serjax.predict.results",
    "DEFAULT_BLOCK_SECONDS": "serjax.predict.predictor",
    "Segment": "serjax.predict.results",
    "Predictor": "serjax.predict.predictor",
    "expand_inputs": "serjax.predict.predictor",
    "PredictorError": "serjax.predict.results",
    "resolve_run_dir": "serjax.predict.run",
    "main": "serjax.predict.cli",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
