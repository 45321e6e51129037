"""What augmentation a run applies: :class:`AugmentConfig`, read from ``config.augment``."""

from __future__ import annotations

import dataclasses
import math

import ml_collections

NOISE_COLORS = ("white", "pink")


def _range(name: str, value, *, positive: bool = False) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"augment.{name} must be a pair (low, high), got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"augment.{name} must be finite with low <= high, got {value!r}")
    if positive and low <= 0:
        raise ValueError(f"augment.{name} must be positive, got {value!r}")
    return low, high


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """What augmentation the train step applies; frozen and hashable (a static jit argument).

    Every on-device transform is off at probability 0 (or count 0), the default. A range
    ``(low, high)`` draws uniformly per example; equal bounds fix the value.

    Attributes:
      noise_prob, snr_db, noise_colors: add noise at an SNR (dB, over the valid samples) drawn
        from ``snr_db``, of a color drawn uniformly from ``noise_colors`` ("white", "pink").
      gain_prob, gain_db: scale the waveform by a gain in dB.
      speed_prob, speed: resample the waveform by a factor (> 1 faster and higher, as sox
        ``speed``); the valid length becomes ``round(length / factor)``.
      pitch_prob, semitones: scale the power spectrum's frequency axis by
        ``2 ** (semitones / 12)``, tempo unchanged.
      stretch_prob, stretch: resample the frame axis by a rate (> 1 faster); the valid frame
        count becomes ``round(n_frames / rate)``, pitch unchanged.
      vtlp_prob, vtlp_alpha: warp the mel filterbank's frequency axis by a factor alpha
        (piecewise linear, Nyquist fixed; alpha > 1 moves content up).
      time_masks, time_mask_frames: SpecAugment masks of 0..``time_mask_frames`` frames each,
        inside the valid frames.
      freq_masks, freq_mask_bins: SpecAugment masks of 0..``freq_mask_bins`` mel bands (or
        cepstral coefficients) each, the same bands in the static, Δ and ΔΔ blocks.
      mixup_alpha: > 0 enables mixup with a Beta(alpha, alpha) weight per example.
      offline: S2's literal host-side copies (see :func:`expand_offline`), with parameters
        drawn from ``snr_db``, ``semitones`` and ``stretch``; independent of the others.
    """

    noise_prob: float = 0.0
    snr_db: tuple[float, float] = (10.0, 30.0)
    noise_colors: tuple[str, ...] = NOISE_COLORS
    gain_prob: float = 0.0
    gain_db: tuple[float, float] = (-6.0, 6.0)
    speed_prob: float = 0.0
    speed: tuple[float, float] = (0.9, 1.1)
    pitch_prob: float = 0.0
    semitones: tuple[float, float] = (-2.0, 2.0)
    stretch_prob: float = 0.0
    stretch: tuple[float, float] = (0.8, 1.25)
    vtlp_prob: float = 0.0
    vtlp_alpha: tuple[float, float] = (0.9, 1.1)
    time_masks: int = 0
    time_mask_frames: int = 20
    freq_masks: int = 0
    freq_mask_bins: int = 8
    mixup_alpha: float = 0.0
    offline: bool = False

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)
        for name in (
            "noise_prob",
            "gain_prob",
            "speed_prob",
            "pitch_prob",
            "stretch_prob",
            "vtlp_prob",
        ):
            prob = float(getattr(self, name))
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"augment.{name} must be in [0, 1], got {prob}")
            set_(name, prob)
        for name in ("snr_db", "gain_db", "semitones"):
            set_(name, _range(name, getattr(self, name)))
        for name in ("speed", "stretch", "vtlp_alpha"):
            set_(name, _range(name, getattr(self, name), positive=True))
        colors = tuple(self.noise_colors)
        if not colors or any(c not in NOISE_COLORS for c in colors):
            raise ValueError(
                f"augment.noise_colors must be a non-empty selection of {', '.join(NOISE_COLORS)}, "
                f"got {self.noise_colors!r}"
            )
        set_("noise_colors", colors)
        for name in ("time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 0:
                raise ValueError(f"augment.{name} must be a non-negative integer, got {value!r}")
            set_(name, int(value))
        alpha = float(self.mixup_alpha)
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"augment.mixup_alpha must be >= 0, got {self.mixup_alpha!r}")
        set_("mixup_alpha", alpha)
        set_("offline", bool(self.offline))

    @property
    def waveform_transforms(self) -> bool:
        """Whether any transform acts on the waveform (gain, noise, speed)."""
        return self.gain_prob > 0 or self.noise_prob > 0 or self.speed_prob > 0

    @property
    def spectral_transforms(self) -> bool:
        """Whether any transform needs the dsp front end (pitch, stretch, VTLP, masks)."""
        return (
            self.pitch_prob > 0
            or self.stretch_prob > 0
            or self.vtlp_prob > 0
            or (self.time_masks > 0 and self.time_mask_frames > 0)
            or (self.freq_masks > 0 and self.freq_mask_bins > 0)
        )

    @property
    def transforms_inputs(self) -> bool:
        """Whether :func:`augmented_inputs` differs from ``model_inputs``."""
        return self.waveform_transforms or self.spectral_transforms

    @property
    def enabled(self) -> bool:
        """Whether the train step augments at all (input transforms or mixup)."""
        return self.transforms_inputs or self.mixup_alpha > 0

    def off(self) -> AugmentConfig:
        """The same ranges with every on-device transform off (``offline`` kept)."""
        return dataclasses.replace(
            self,
            noise_prob=0.0,
            gain_prob=0.0,
            speed_prob=0.0,
            pitch_prob=0.0,
            stretch_prob=0.0,
            vtlp_prob=0.0,
            time_masks=0,
            freq_masks=0,
            mixup_alpha=0.0,
        )

    @classmethod
    def from_config(cls, augment: ml_collections.ConfigDict) -> AugmentConfig:
        """Builds the config from ``config.augment``.

        Every field of this class is read where ``augment`` has it (lists become tuples);
        ``augment.enabled = False`` turns every on-device transform off and keeps ``offline``.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        values = {}
        for key, value in augment.items():
            if key in names:
                values[key] = tuple(value) if isinstance(value, list | tuple) else value
        aug = cls(**values)
        return aug if augment.get("enabled", True) else aug.off()
