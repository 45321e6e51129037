"""Waveform batch to utterance-level functionals in one jittable call.

    utterance_descriptors:  waveform [..., T] -> LLDs [..., frames, D], n_frames, mask
    utterance_functionals:  waveform [..., T] -> functionals [..., D * len(FUNCTIONALS)]

The low-level descriptors (LLDs), one row per 10 ms frame at the defaults, are F0 in semitones
(voiced frames only), periodicity, RMS level in dB, zero-crossing rate, MFCCs, five spectral
descriptors, then the regression deltas of all but F0 (whose voiced stretches are broken by
gaps), and optionally the log-mel bands the MFCCs come from (without deltas). Every setting
lives in the frozen, hashable ``UtteranceConfig``, a static argument of
``jax.jit(utterance_functionals, static_argnums=2)``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from dsp import _checks
from dsp.deltas import delta
from dsp.descriptors import SPECTRAL_DESCRIPTORS, spectral_descriptors
from dsp.frontend import FeatureConfig, features_from_power, power_stage
from dsp.functionals import functional_names, functionals
from dsp.masking import frame_mask
from dsp.mel import power_to_db
from dsp.prosody import rms, yin, yin_periods, zero_crossing_rate

# eGeMAPS' semitone reference (Eyben et al. 2016): 0 st at 27.5 Hz, the piano's lowest A.
_SEMITONE_REFERENCE_HZ = 27.5


@dataclasses.dataclass(frozen=True)
class UtteranceConfig:
    """Settings of ``utterance_functionals``; frozen and hashable (a jit static argument).

    The defaults analyse 16 kHz speech in 25 ms windows every 10 ms. The spectral LLDs and the
    MFCCs share one STFT (periodic Hann of ``win_length`` zero-padded to ``n_fft``); RMS and
    zero crossings read unwindowed ``win_length`` frames. YIN needs a longer frame to hold two
    periods of its lowest F0: 1024 samples (64 ms) at 16 kHz reach down to ``fmin = 60`` Hz with
    room to spare (librosa's hard limit is one period, ``sample_rate / fmin < frame_length -
    1``). All frames are centred on ``t * hop_length`` and, the three frame lengths being even,
    a signal of ``L`` samples has ``1 + L // hop_length`` frames in every LLD.

    Attributes:
      sample_rate: Hz.
      n_fft, win_length, hop_length: STFT geometry in samples (even ``n_fft`` and
        ``win_length``); ``win_length`` is also the RMS and zero-crossing frame.
      n_mels, n_mfcc: MFCCs from ``n_mels`` Slaney mel bands in dB (``dsp.FeatureConfig``
        with ``kind="mfcc"`` and otherwise its defaults: no liftering, no CMVN).
      f0_frame_length: YIN frame in samples (even).
      fmin, fmax: YIN's F0 search range in Hz.
      trough_threshold, voicing_threshold: YIN's absolute threshold and the aperiodicity below
        which a frame is voiced (``dsp.yin``).
      roll_percent: spectral rolloff fraction.
      delta_width: regression half-width ``N`` of the deltas.
      log_mel: also describe each of the ``n_mels`` log-mel bands (dB, the MFCCs' own, before
        the DCT; no deltas): ``n_mels * 11`` more functionals.
      voiced: also describe every LLD but F0 (no deltas, no bands) over the voiced frames
        alone, as eGeMAPS does for its spectral LLDs (Eyben et al. 2016): ``voiced_`` columns,
        ``21 * 11`` more functionals at the default ``n_mfcc``.
    """

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 40
    n_mfcc: int = 13
    f0_frame_length: int = 1024
    fmin: float = 60.0
    fmax: float = 600.0
    trough_threshold: float = 0.1
    voicing_threshold: float = 0.35
    roll_percent: float = 0.85
    delta_width: int = 2
    log_mel: bool = False
    voiced: bool = False

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)
        _ = self.feature_config  # building it checks the STFT, mel and MFCC fields
        for name in ("n_fft", "win_length", "f0_frame_length"):
            if _checks.positive_int(name, getattr(self, name)) % 2:
                raise ValueError(
                    f"{name} must be even, so that every LLD has the same frames, got "
                    f"{getattr(self, name)}"
                )
        yin_periods(
            sample_rate=self.sample_rate,
            fmin=self.fmin,
            fmax=self.fmax,
            frame_length=self.f0_frame_length,
        )
        set_("fmin", float(self.fmin))
        set_("fmax", float(self.fmax))
        for name in ("trough_threshold", "voicing_threshold"):
            set_(name, _checks.real(name, getattr(self, name), low=0.0, low_open=True))
        roll_percent = _checks.real("roll_percent", self.roll_percent, low=0.0, low_open=True)
        if roll_percent >= 1.0:
            raise ValueError(f"roll_percent must be < 1, got {roll_percent!r}")
        set_("roll_percent", roll_percent)
        _checks.positive_int("delta_width", self.delta_width)
        for name in ("log_mel", "voiced"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")

    @property
    def feature_config(self) -> FeatureConfig:
        """The MFCC front end's ``dsp.FeatureConfig``."""
        return FeatureConfig(
            sample_rate=self.sample_rate,
            kind="mfcc",
            n_fft=self.n_fft,
            win_length=self.win_length,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
            n_mfcc=self.n_mfcc,
        )

    @property
    def descriptor_names(self) -> tuple[str, ...]:
        """Names of the LLD columns of ``utterance_descriptors``, in order."""
        base = (
            "periodicity",
            "rms_db",
            "zcr",
            *(f"mfcc{i}" for i in range(self.n_mfcc)),
            *(f"spectral_{name}" for name in SPECTRAL_DESCRIPTORS),
        )
        bands = tuple(f"log_mel{i}" for i in range(self.n_mels if self.log_mel else 0))
        voiced = tuple(f"voiced_{name}" for name in (base if self.voiced else ()))
        return ("f0_semitones", *base, *(f"{name}_delta" for name in base), *bands, *voiced)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the columns of ``utterance_functionals``, in order."""
        return functional_names(self.descriptor_names)

    @property
    def num_features(self) -> int:
        """Length ``N`` of the functionals vector: 43 LLDs x 11 functionals = 473 by default."""
        return len(self.feature_names)


def utterance_descriptors(
    x: jax.Array, lengths: jax.typing.ArrayLike, config: UtteranceConfig
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Frame-level descriptors of padded waveforms, in ``config.descriptor_names`` order.

    Columns: ``f0_semitones`` ``12 log2(f0 / 27.5 Hz)`` from ``dsp.yin``; ``periodicity``
    ``clip(1 - aperiodicity, 0, 1)``; ``rms_db`` ``dsp.power_to_db(rms ** 2)`` (20 log10 of
    the RMS, floored at -100 dB); ``zcr``; ``mfcc0 ..``; ``spectral_*`` from the magnitude of
    the MFCCs' STFT (``dsp.spectral_descriptors``); then the ``dsp.delta`` of every column but
    F0; with ``config.log_mel``, ``log_mel0 ..``, the MFCCs' log-mel bands in dB
    (``dsp.features`` with ``kind="log_mel"``); with ``config.voiced``, ``voiced_*``, the
    columns from ``periodicity`` to the last spectral descriptor again, masked to voiced frames.

    Args:
      x: float ``[..., T]`` waveforms padded to a common ``T > 0``.
      lengths: int ``[...]`` valid samples per example.
      config: the settings.

    Returns:
      ``(llds, n_frames, mask)``: ``llds`` ``[..., frames, D]`` (float32, or float64 for
      float64 input), values on padded frames unspecified; ``n_frames`` int32 ``[...]``;
      ``mask`` bool ``[..., frames, D]``, the frames each column's functionals read (valid
      frames, and voiced ones for F0 and the ``voiced_`` columns).
    """
    config = _checks.config(config, UtteranceConfig)
    x = _checks.float_array("x", x)
    lengths = _checks.int_array("lengths", lengths, shape=x.shape[:-1])
    feature_config = config.feature_config
    power, n_frames = power_stage(x, lengths, feature_config)
    mfcc = features_from_power(power, n_frames, feature_config)
    spectral = spectral_descriptors(
        jnp.sqrt(power), sample_rate=config.sample_rate, roll_percent=config.roll_percent
    )
    lengths = jnp.clip(lengths, 0, x.shape[-1])
    framing = dict(hop_length=config.hop_length, lengths=lengths)
    pitch = yin(
        x,
        sample_rate=config.sample_rate,
        fmin=config.fmin,
        fmax=config.fmax,
        frame_length=config.f0_frame_length,
        trough_threshold=config.trough_threshold,
        voicing_threshold=config.voicing_threshold,
        **framing,
    )
    level = power_to_db(jnp.square(rms(x, frame_length=config.win_length, **framing)))
    zcr = zero_crossing_rate(x, frame_length=config.win_length, **framing)
    per_frame = [jnp.clip(1.0 - pitch.aperiodicity, 0.0, 1.0), level, zcr]
    base = jnp.concatenate([jnp.stack(per_frame, axis=-1), mfcc, spectral], axis=-1)
    f0 = 12.0 * jnp.log2(pitch.f0 / _SEMITONE_REFERENCE_HZ)
    described = [f0[..., None], base, delta(base, width=config.delta_width, n_frames=n_frames)]
    if config.log_mel:
        bands = dataclasses.replace(feature_config, kind="log_mel")
        described.append(features_from_power(power, n_frames, bands))
    every_frame = sum(d.shape[-1] for d in described) - 1
    if config.voiced:
        described.append(base)
    llds = jnp.concatenate(described, axis=-1)
    voiced = pitch.voiced[..., None]
    columns = jnp.concatenate(
        [
            voiced,
            jnp.ones(voiced.shape[:-1] + (every_frame,), dtype=bool),
            jnp.broadcast_to(voiced, voiced.shape[:-1] + (llds.shape[-1] - 1 - every_frame,)),
        ],
        axis=-1,
    )
    return llds, n_frames, columns & frame_mask(n_frames, llds.shape[-2])[..., None]


def utterance_functionals(
    x: jax.Array, lengths: jax.typing.ArrayLike, config: UtteranceConfig
) -> jax.Array:
    """Padded waveforms to one functionals vector each, ``dsp.functionals`` of
    ``utterance_descriptors``.

    Each example's vector equals that of its unpadded signal alone.

    Args:
      x: float ``[..., T]`` waveforms padded to a common ``T > 0``.
      lengths: int ``[...]`` valid samples per example.
      config: the settings (static under ``jax.jit``).

    Returns:
      ``[..., config.num_features]``, columns named by ``config.feature_names``; float32 (float64
      for float64 input); 0 throughout for an empty example.
    """
    llds, n_frames, mask = utterance_descriptors(x, lengths, config)
    return functionals(llds, n_frames, mask=mask)
