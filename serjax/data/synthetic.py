"""A tiny synthetic "emotional speech" corpus, made on the fly, for smoke and end-to-end tests.

Each utterance is a voiced, vowel-like sound: a harmonic series on a fundamental frequency f0,
shaped by a falling source spectrum and three formant resonances, under a syllable-like
loudness envelope, plus a little noise. The class sets the three cues that real emotional
speech shows along its arousal axis:

==========  ==========  ===========  =================  ======================
class       code        base f0      level (peak)       syllable rate
==========  ==========  ===========  =================  ======================
sadness     low         110 Hz       0.08               2.5 Hz, smooth
neutral     mid         190 Hz       0.20               4 Hz
anger       high        320 Hz       0.50               6.5 Hz, sharp onsets
==========  ==========  ===========  =================  ======================

Nuisance variation keeps it from being a lookup table: each speaker has a fixed f0 factor
(within +/- 8 %) and vocal-tract (formant) scale, and each utterance draws its own duration,
f0 jitter (+/- 4 %), vibrato, vowel formants, gain (+/- 3 dB), envelope phase and noise. The f0
ranges of the classes stay more than half an octave apart, so pitch alone separates them, and
a small LSTM on log-mel features can learn the task to > 90 % within seconds; per-utterance
feature normalisation may remove the level cue but not the pitch or the rhythm.

Labels are canonical emotion names (see ``serjax.data.labels``) so that the corpus flows
through label selection, reports and plots like a real one; ``Utterance.extra["code"]`` holds
the arousal code (``low``/``mid``/``high``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

from serjax.data.utterance import Utterance
from serjax.files import atomic_open

__all__ = [
    "CORPUS_NAME",
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_CODES",
    "make_synthetic_corpus",
    "speaker_name",
    "synthesize_utterance",
]

CORPUS_NAME = "synthetic"
SYNTHETIC_CLASSES: tuple[str, ...] = ("sadness", "neutral", "anger")
SYNTHETIC_CODES: tuple[str, ...] = ("low", "mid", "high")

# Per-class cues, indexed like SYNTHETIC_CLASSES.
_BASE_F0_HZ = (110.0, 190.0, 320.0)
_PEAK_LEVEL = (0.08, 0.20, 0.50)
_SYLLABLE_RATE_HZ = (2.5, 4.0, 6.5)
# Exponent of the syllable envelope: > 1 sharpens each syllable's onset and decay.
_ENVELOPE_SHARPNESS = (1.0, 1.5, 3.0)

_SPEAKER_F0_SPREAD = 0.08
_F0_JITTER = 0.04
# Vowel formants (Hz) for an average vocal tract; each utterance picks one vowel.
_VOWELS = (
    (730.0, 1090.0, 2440.0),  # a
    (530.0, 1840.0, 2480.0),  # e
    (270.0, 2290.0, 3010.0),  # i
    (570.0, 840.0, 2410.0),  # o
    (300.0, 870.0, 2240.0),  # u
)


def speaker_name(speaker: int) -> str:
    """The speaker id of speaker index ``speaker`` (0-based): ``spk01``, ``spk02``, ..."""
    return f"spk{speaker + 1:02d}"


def _speaker_gender(speaker: int) -> str:
    return "female" if speaker % 2 == 0 else "male"


def _speaker_factors(speaker: int) -> tuple[float, float]:
    """Fixed (f0 factor, formant factor) of a speaker, spread evenly by the golden ratio."""
    u = (speaker * 0.6180339887498949) % 1.0  # in [0, 1), well spread for any count
    f0_factor = 1.0 + _SPEAKER_F0_SPREAD * (2.0 * u - 1.0)
    formant_factor = 1.0 + 0.1 * (2.0 * ((u + 0.5) % 1.0) - 1.0)
    return f0_factor, formant_factor


def synthesize_utterance(
    label_index: int,
    *,
    speaker: int,
    sample_rate: int,
    seconds: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One synthetic utterance of class ``SYNTHETIC_CLASSES[label_index]``.

    Args:
      label_index: class index into ``SYNTHETIC_CLASSES``.
      speaker: speaker index (>= 0); sets the speaker's f0 offset and formant scale.
      sample_rate: samples per second (>= 8000).
      seconds: duration (> 0).
      rng: source of the per-utterance variation; the same generator state gives the same
        samples.

    Returns:
      ``[round(seconds * sample_rate)]`` float32 mono waveform with peak magnitude < 1.
    """
    if not 0 <= label_index < len(SYNTHETIC_CLASSES):
        raise ValueError(
            f"label_index must be in [0, {len(SYNTHETIC_CLASSES)}) for classes "
            f"{SYNTHETIC_CLASSES}, got {label_index}"
        )
    if speaker < 0:
        raise ValueError(f"speaker must be >= 0, got {speaker}")
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be >= 8000 Hz, got {sample_rate}")
    num_samples = round(seconds * sample_rate)
    if num_samples < 1:
        raise ValueError(f"seconds must give at least one sample, got {seconds}")

    f0_factor, formant_factor = _speaker_factors(speaker)
    f0 = _BASE_F0_HZ[label_index] * f0_factor * (1.0 + rng.uniform(-_F0_JITTER, _F0_JITTER))
    t = np.arange(num_samples) / sample_rate

    # Pitch contour: slow vibrato plus a gentle declination across the utterance, as in
    # read speech; integrated to a phase so the harmonics stay coherent.
    vibrato = 0.015 * np.sin(2 * np.pi * rng.uniform(4.0, 6.0) * t + rng.uniform(0, 2 * np.pi))
    declination = rng.uniform(-0.04, 0.0) * t / max(seconds, 1e-9)
    inst_f0 = f0 * (1.0 + vibrato + declination)
    phase = 2 * np.pi * np.cumsum(inst_f0) / sample_rate

    # Harmonic amplitudes: -6 dB/octave source tilt times a sum of formant resonances.
    formants = np.asarray(_VOWELS[rng.integers(len(_VOWELS))]) * formant_factor
    bandwidths = np.array([80.0, 120.0, 160.0])
    nyquist = 0.5 * sample_rate
    num_harmonics = int(min(4000.0, 0.9 * nyquist) // (f0 * 1.05))
    k = np.arange(1, max(num_harmonics, 1) + 1)
    freqs = k * f0
    resonance = np.sum(
        1.0 / (1.0 + ((freqs[:, None] - formants[None, :]) / bandwidths[None, :]) ** 2), axis=1
    )
    amps = (1.0 / k) * (0.4 + resonance)
    amps /= np.sqrt(np.sum(amps**2))
    harmonic_phases = rng.uniform(0, 2 * np.pi, size=k.shape)
    voiced = np.zeros(num_samples)
    for kk, a, ph in zip(k, amps, harmonic_phases, strict=True):
        voiced += a * np.sin(kk * phase + ph)

    # Syllable envelope: a raised cosine at the class's rate, sharpened for high arousal,
    # with 20 ms fades so the file starts and ends in silence without clicks.
    rate = _SYLLABLE_RATE_HZ[label_index] * rng.uniform(0.9, 1.1)
    syllables = 0.5 * (1.0 - np.cos(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    envelope = 0.15 + 0.85 * syllables ** _ENVELOPE_SHARPNESS[label_index]
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    gain = _PEAK_LEVEL[label_index] * 10.0 ** (rng.uniform(-3.0, 3.0) / 20.0)

    signal = voiced / max(np.max(np.abs(voiced)), 1e-9) * envelope * fade * gain
    noise = rng.normal(scale=0.003 * gain + 2e-4, size=num_samples)
    return np.clip(signal + noise, -0.99, 0.99).astype(np.float32)


def _wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    """Writes ``data`` atomically unless ``path`` already holds exactly these bytes."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    with atomic_open(path, "wb") as f:
        f.write(data)


def make_synthetic_corpus(
    root: str | Path,
    *,
    num_speakers: int = 6,
    per_class_per_speaker: int = 6,
    sample_rate: int = 16000,
    min_seconds: float = 0.6,
    max_seconds: float = 1.6,
    seed: int = 0,
) -> list[Utterance]:
    """Writes the synthetic corpus as 16-bit WAV files and returns its utterances.

    Files are ``root/synthetic/spk{NN}/{label}_{i:03d}.wav``. Each file's content depends only
    on ``(seed, speaker, class, i, sample_rate, min_seconds, max_seconds)``, so a larger corpus
    contains a smaller one with the same seed, and a second call rewrites nothing (files are
    compared byte for byte and only replaced, atomically, when they differ).

    Args:
      root: data root; the corpus goes to its ``synthetic`` sub-folder.
      num_speakers: number of speakers (>= 1), named ``spk01``, ``spk02``, ...
      per_class_per_speaker: utterances per class and speaker (>= 1).
      sample_rate: sampling rate of the files, Hz.
      min_seconds, max_seconds: utterance durations are uniform in this range.
      seed: corpus seed.

    Returns:
      ``Utterance`` records sorted by speaker, class (in ``SYNTHETIC_CLASSES`` order) and
      index, with ``corpus="synthetic"``, the canonical emotion as ``label``, gender
      ``"female"`` for odd-numbered speakers (spk01, spk03, ...) and ``"male"`` for the others,
      and ``extra = {"id": "spk01_anger_003", "code": "low"|"mid"|"high", "index": "003"}``.
    """
    # Imported here so that the signal generator works without the corpus machinery.
    if num_speakers < 1 or per_class_per_speaker < 1:
        raise ValueError(
            f"num_speakers and per_class_per_speaker must be >= 1, got {num_speakers} and "
            f"{per_class_per_speaker}"
        )
    if not 0 < min_seconds <= max_seconds:
        raise ValueError(
            f"need 0 < min_seconds <= max_seconds, got {min_seconds} and {max_seconds}"
        )
    base = Path(root) / CORPUS_NAME
    utterances: list[Utterance] = []
    for speaker in range(num_speakers):
        spk = speaker_name(speaker)
        folder = base / spk
        folder.mkdir(parents=True, exist_ok=True)
        for label_index, label in enumerate(SYNTHETIC_CLASSES):
            for i in range(per_class_per_speaker):
                # One independent stream per file: the file does not depend on the corpus size.
                rng = np.random.default_rng([seed, speaker, label_index, i])
                seconds = float(rng.uniform(min_seconds, max_seconds))
                audio = synthesize_utterance(
                    label_index, speaker=speaker, sample_rate=sample_rate, seconds=seconds, rng=rng
                )
                path = folder / f"{label}_{i:03d}.wav"
                _write_if_changed(path, _wav_bytes(audio, sample_rate))
                utterances.append(
                    Utterance(
                        path=path,
                        corpus=CORPUS_NAME,
                        speaker=spk,
                        label=label,
                        gender=_speaker_gender(speaker),
                        extra={
                            "id": f"{spk}_{label}_{i:03d}",
                            "code": SYNTHETIC_CODES[label_index],
                            "index": f"{i:03d}",
                        },
                    )
                )
    return utterances
