"""Pure-JAX speech feature extraction: STFT, mel, MFCC, deltas and masked normalisation.

Every function is pure, jit-compatible (shape-fixing arguments are static Python values),
batched over leading axes and laid out ``(..., frames, features)``. Defaults follow librosa.
"""

from dsp.cepstral import dct_matrix, lifter_weights, mfcc_from_log_mel
from dsp.deltas import delta, stack_deltas
from dsp.framing import frame, get_window, padded_window, preemphasis
from dsp.frontend import (
    FeatureConfig,
    features,
    features_chunked,
    features_from_power,
    power_stage,
)
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
from dsp.spectral import magnitude_spectrogram, power_spectrogram, stft

__all__ = [
    "FeatureConfig",
    "apply_filterbank",
    "cmvn",
    "dct_matrix",
    "delta",
    "features",
    "features_chunked",
    "features_from_power",
    "frame",
    "frame_mask",
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
    "stack_deltas",
    "stft",
]
