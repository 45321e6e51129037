"""Data augmentation: on the device inside the jitted train step, and S2's offline copies.

On the device, every transform sits where it acts, between the padded waveform batch and the
model, and each example of the batch draws its own parameters from the step's key:

    waveforms [B, T] ── gain ── noise (white or pink, at an SNR) ── speed (resampling; lengths
    change) ── dsp.power_stage ──► power [B, F, n_freq] ── pitch shift (frequency-axis warp) ──
    time stretch (frame-axis resampling; valid frames change) ── dsp.features_from_power with a
    VTLP-warped filterbank ──► [B, F, D] ── SpecAugment time and frequency masks ── summary ──►
    model input [B, S, D]

Shapes never change, so the train step compiles once per length bucket: an example made longer
(slowed down or stretched) is cut at the batch's padded length. Each transform touches only the
examples it was drawn for; the others come through bit for bit. With every transform off,
:func:`augmented_inputs` is :func:`serjax.features.model_inputs`.

Pitch shift and time stretch act on the STFT power before the mel filterbank: a phase vocoder's
shift or stretch changes what magnitude features see in exactly these two ways (frequencies
scaled by ``2 ** (semitones / 12)``; frames resampled by the stretch rate, magnitudes linearly
interpolated), without the cost of resynthesising a waveform.

Mixup mixes model inputs and returns the pairing, so that the loss mixes the labels with it.

S2's offline augmentation (three extra copies of each training file: noisy, pitch-shifted and
time-stretched) runs once on the host, in NumPy and soxr, with librosa's phase-vocoder
algorithms (:func:`stretch_waveform`, :func:`shift_waveform`, :func:`expand_offline`).

Modules: ``config`` (:class:`AugmentConfig`), ``waveform`` (gain, noise, speed), ``spectral``
(pitch shift, time stretch, VTLP, SpecAugment masks), ``pipeline`` (their order in the train
step, each transform's random draws, mixup) and ``offline`` (S2's copies).
"""

from serjax.augment.config import NOISE_COLORS, AugmentConfig
from serjax.augment.offline import (
    OFFLINE_HOP,
    OFFLINE_N_FFT,
    expand_offline,
    noisy_waveform,
    offline_copies,
    shift_waveform,
    stretch_waveform,
)
from serjax.augment.pipeline import (
    MixupPairing,
    augment_features,
    augment_power,
    augment_waveforms,
    augmented_inputs,
    mixup,
    mixup_targets,
    training_inputs,
)
from serjax.augment.spectral import (
    VTLP_BOUNDARY,
    mask_features,
    mask_time,
    random_spans,
    shift_pitch,
    stretch_time,
    vtlp_filterbank,
    vtlp_warp,
)
from serjax.augment.waveform import (
    SPEED_OVERSAMPLE,
    SPEED_TAPS,
    add_noise,
    apply_gain,
    change_speed,
    read_positions,
)

__all__ = [
    "NOISE_COLORS",
    "OFFLINE_HOP",
    "OFFLINE_N_FFT",
    "SPEED_OVERSAMPLE",
    "SPEED_TAPS",
    "VTLP_BOUNDARY",
    "AugmentConfig",
    "MixupPairing",
    "add_noise",
    "apply_gain",
    "augment_features",
    "augment_power",
    "augment_waveforms",
    "augmented_inputs",
    "change_speed",
    "expand_offline",
    "mask_features",
    "mask_time",
    "mixup",
    "mixup_targets",
    "noisy_waveform",
    "offline_copies",
    "random_spans",
    "read_positions",
    "shift_pitch",
    "shift_waveform",
    "stretch_time",
    "stretch_waveform",
    "training_inputs",
    "vtlp_filterbank",
    "vtlp_warp",
]
