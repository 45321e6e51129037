"""Fuzzing the audio loader: whatever the bytes, finite float32 audio or an AudioError naming the
file; never another exception, never a hang.

Cases come from a seeded generator (the same ones on every run): random bytes, files of each
container (WAV, FLAC, OGG Vorbis, AIFF) cut at random lengths or with random bytes written
over their header, and valid WAV files with random rates, channel counts, sample formats and
lengths. Each case runs in a thread with a time limit, so a decoder that never returns fails
the test instead of stalling it.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serjax.data import AudioError, Preprocessing
from serjax.data.stream import mono_blocks, open_audio

CASE_SECONDS = 5.0  # a case that takes longer has hung (they take milliseconds)
CONTAINERS = {  # format: (subtype, extension)
    "WAV": ("PCM_16", "wav"),
    "FLAC": ("PCM_16", "flac"),
    "OGG": ("VORBIS", "ogg"),
    "AIFF": ("PCM_24", "aiff"),
}
WAV_SUBTYPES = ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW")
PREPROCESSING = Preprocessing(sample_rate=16000, trim_silence=True, remove_dc=True, min_samples=1)


def _valid(fmt: str, rng: np.random.Generator) -> bytes:
    subtype, _ = CONTAINERS[fmt]
    rate = int(rng.choice([8000, 16000, 44100]))
    x = 0.3 * np.sin(np.arange(int(rng.integers(200, 4000))) * 0.05) * rng.uniform(0.1, 1)
    buffer = io.BytesIO()
    sf.write(buffer, x, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _cases(rng: np.random.Generator) -> list[tuple[str, bytes, str]]:
    """``(name, content, extension)`` of every case."""
    cases = [(f"random{i}", rng.bytes(int(rng.integers(1, 3000))), "wav") for i in range(40)]
    for fmt, (_, ext) in CONTAINERS.items():
        whole = _valid(fmt, rng)
        for i in range(25):
            cut = int(rng.integers(1, min(len(whole), 400)))  # into the header
            cases.append((f"{fmt}_cut{i}", whole[:cut], ext))
        for i in range(15):
            cut = int(rng.integers(1, len(whole)))  # anywhere
            cases.append((f"{fmt}_tail{i}", whole[:cut], ext))
        for i in range(15):
            spoiled = bytearray(whole)
            at = int(rng.integers(0, min(len(whole), 64)))
            spoiled[at : at + 4] = rng.bytes(4)
            cases.append((f"{fmt}_spoiled{i}", bytes(spoiled), ext))
    for i in range(40):
        buffer = io.BytesIO()
        channels = int(rng.integers(1, 9))
        frames = int(rng.integers(0, 3000))
        samples = rng.uniform(-1, 1, (frames, channels)) * rng.choice([0, 1e-6, 0.5, 1.0])
        samples += rng.choice([0.0, 0.2])  # a DC offset, or none
        rate = int(rng.choice([1000, 8000, 11025, 22050, 48000, 96000, 192000]))
        sf.write(
            buffer, np.clip(samples, -1, 1), rate, format="WAV", subtype=rng.choice(WAV_SUBTYPES)
        )
        cases.append((f"wav_params{i}", buffer.getvalue(), "wav"))
    return cases


def _load_whole(path: Path) -> np.ndarray:
    return PREPROCESSING.load(path)


def _load_blocks(path: Path) -> np.ndarray:
    with open_audio(path) as f:
        blocks = list(mono_blocks(f, str(path), 512))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


def _outcome(loader, path: Path):
    """The loader's result or exception, or None when it ran out of time."""
    box: list = []

    def call():
        try:
            box.append(loader(path))
        except BaseException as e:  # the test inspects it
            box.append(e)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(CASE_SECONDS)
    return box[0] if box else None


@pytest.mark.parametrize("loader", [_load_whole, _load_blocks], ids=["whole", "blocks"])
def test_loader_never_fails_otherwise(tmp_path, loader):
    rng = np.random.default_rng(14)
    outcomes = {"audio": 0, "error": 0}
    for name, content, ext in _cases(rng):
        path = tmp_path / f"{name}.{ext}"
        path.write_bytes(content)
        result = _outcome(loader, path)
        assert result is not None, f"{name}: no answer within {CASE_SECONDS} s"
        if isinstance(result, AudioError):
            assert result.path == path and str(path) in str(result), name
            outcomes["error"] += 1
        elif isinstance(result, BaseException):
            raise AssertionError(f"{name}: {type(result).__name__}: {result}") from result
        else:
            assert result.dtype == np.float32 and result.ndim == 1, name
            assert np.isfinite(result).all(), name
            outcomes["audio"] += 1
    # Both outcomes occur: the cases reach the decoders, not only the error paths.
    assert outcomes["audio"] > 20 and outcomes["error"] > 100, outcomes
