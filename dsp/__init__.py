"""Pure-JAX speech feature extraction: STFT, mel, MFCC, deltas, masked normalisation, pitch,
energy and spectral descriptors, and their utterance-level functionals.

Every function is pure, jit-compatible (shape-fixing arguments are static Python values),
batched over leading axes and laid out ``(..., frames, features)``. Defaults follow librosa.
"""

from dsp.cepstral import dct_matrix, lifter_weights, mfcc_from_log_mel
from dsp.deltas import delta, stack_deltas
from dsp.descriptors import (
    SPECTRAL_DESCRIPTORS,
    spectral_bandwidth,
    spectral_centroid,
    spectral_descriptors,
    spectral_flatness,
    spectral_flux,
    spectral_rolloff,
)
from dsp.framing import frame, get_window, padded_window, preemphasis
from dsp.frontend import (
    FeatureConfig,
    features,
    features_chunked,
    features_from_power,
    power_stage,
)
from dsp.functionals import FUNCTIONALS, PERCENTILES, functional_names, functionals
from dsp.masking import cmvn, frame_mask, masked_mean_var, num_frames
from dsp.mel import (
    apply_filterbank,
    hz_to_mel,
    log_mel_spectrogram,
    mel_filterbank,
    mel_frequencies,
    mel_spectrogram,
    mel_to_hz,
    power_to_db,
)
from dsp.prosody import PitchTrack, rms, yin, yin_periods, zero_crossing_rate
from dsp.spectral import DFT_METHODS, dft_basis, magnitude_spectrogram, power_spectrogram, stft
from dsp.utterance import UtteranceConfig, utterance_descriptors, utterance_functionals

__all__ = [
    "DFT_METHODS",
    "FUNCTIONALS",
    "PERCENTILES",
    "SPECTRAL_DESCRIPTORS",
    "FeatureConfig",
    "PitchTrack",
    "UtteranceConfig",
    "apply_filterbank",
    "cmvn",
    "dct_matrix",
    "delta",
    "dft_basis",
    "features",
    "features_chunked",
    "features_from_power",
    "frame",
    "frame_mask",
    "functional_names",
    "functionals",
    "get_window",
    "hz_to_mel",
    "lifter_weights",
    "log_mel_spectrogram",
    "magnitude_spectrogram",
    "masked_mean_var",
    "mel_filterbank",
    "mel_frequencies",
    "mel_spectrogram",
    "mel_to_hz",
    "mfcc_from_log_mel",
    "num_frames",
    "padded_window",
    "power_spectrogram",
    "power_stage",
    "power_to_db",
    "preemphasis",
    "rms",
    "spectral_bandwidth",
    "spectral_centroid",
    "spectral_descriptors",
    "spectral_flatness",
    "spectral_flux",
    "spectral_rolloff",
    "stack_deltas",
    "stft",
    "utterance_descriptors",
    "utterance_functionals",
    "yin",
    "yin_periods",
    "zero_crossing_rate",
]
