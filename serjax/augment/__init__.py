"""Data augmentation: on the device inside the jitted train step, and S2's offline copies.

On the device, every transform sits where it acts, between the padded waveform batch and the
model, and each example of the batch draws its own parameters from the step's key:

    waveforms [B, T] ── gain ── noise (white or pink, at an SNR) ── speed (resampling; lengths
    change) ── dsp.power_stage ──► power [B, F, n_freq] ── pitch shift (frequency-axis warp) ──
    time stretch (frame-axis resampling; valid frames change) ── dsp.features_from_power with a
    VTLP-warped filterbank ──► [B, F, D] ── SpecAugment time and frequency masks ── time
    average ──► model input [B, S, D]

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

from serjax._lazy import lazy_exports

# Public name -> the module that defines it; loaded on first use, so that importing the
# config (as serjax.config_lib does) loads no JAX.
_EXPORTS = {
    "AugmentConfig": "serjax.augment.config",
    "NOISE_COLORS": "serjax.augment.config",
    "OFFLINE_HOP": "serjax.augment.offline",
    "OFFLINE_N_FFT": "serjax.augment.offline",
    "expand_offline": "serjax.augment.offline",
    "noisy_waveform": "serjax.augment.offline",
    "offline_copies": "serjax.augment.offline",
    "shift_waveform": "serjax.augment.offline",
    "stretch_waveform": "serjax.augment.offline",
    "MixupPairing": "serjax.augment.pipeline",
    "augment_features": "serjax.augment.pipeline",
    "augment_power": "serjax.augment.pipeline",
    "augment_waveforms": "serjax.augment.pipeline",
    "augmented_inputs": "serjax.augment.pipeline",
    "mixup": "serjax.augment.pipeline",
    "mixup_targets": "serjax.augment.pipeline",
    "training_inputs": "serjax.augment.pipeline",
    "VTLP_BOUNDARY": "serjax.augment.spectral",
    "mask_features": "serjax.augment.spectral",
    "mask_time": "serjax.augment.spectral",
    "random_spans": "serjax.augment.spectral",
    "shift_pitch": "serjax.augment.spectral",
    "stretch_time": "serjax.augment.spectral",
    "vtlp_filterbank": "serjax.augment.spectral",
    "vtlp_warp": "serjax.augment.spectral",
    "SPEED_OVERSAMPLE": "serjax.augment.waveform",
    "SPEED_TAPS": "serjax.augment.waveform",
    "add_noise": "serjax.augment.waveform",
    "apply_gain": "serjax.augment.waveform",
    "change_speed": "serjax.augment.waveform",
    "read_positions": "serjax.augment.waveform",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
