"""Audio I/O: decode any file soundfile reads, down-mix, resample with soxr, and cache.

Decoding, for every file and every array: decode (the format is read from the content, so an
AIFF file named ``.wav`` works) → down-mix to mono by averaging the channels → reject empty,
non-finite or silent audio (silence is judged without the DC offset, so a constant is silent) →
optionally remove the DC offset → resample to the requested rate with soxr. What follows
(silence trimming, peak normalisation, fixed and maximum duration) is
:class:`serjax.data.preprocess.Preprocessing`, the one object training and inference share.

``AudioCache`` keeps the decoded, resampled audio (the expensive part) in memory and, when given
a folder, on disk; the cheap steps after it are applied on every load, so one cache serves
every preprocessing choice.
"""

from __future__ import annotations

import collections
import hashlib
import os
import pathlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import soundfile as sf
import soxr
from absl import logging

from serjax.data.listing import undecodable_reason
from serjax.data.silence import dc_offset
from serjax.data.utterance import Utterance
from serjax.files import atomic_open

if TYPE_CHECKING:
    from serjax.data.preprocess import Preprocessing

# Below -80 dBFS peak a file holds no usable speech (16-bit quantisation noise is -90 dBFS).
SILENCE_PEAK = 10.0 ** (-80.0 / 20.0)
# The reason given for a silent input.
SILENT = "silent (peak below -80 dBFS once any DC offset is removed)"

_CACHE_FORMAT_VERSION = "1"

T = TypeVar("T", bound=Utterance | str | os.PathLike)


class AudioError(ValueError):
    """A file that cannot be used as audio; ``reason`` says why."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = pathlib.Path(path)
        self.reason = reason


def _as_path(item: Utterance | str | os.PathLike[str]) -> pathlib.Path:
    return item.path if isinstance(item, Utterance) else pathlib.Path(item)


def _check_rate(sample_rate: int) -> None:
    if not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")


def decode(
    path: str | os.PathLike[str],
    sample_rate: int,
    *,
    quality: str = "VHQ",
    remove_dc: bool = False,
) -> np.ndarray:
    """Decodes, down-mixes and resamples one file.

    Args:
      path: any file soundfile can decode, whatever its extension.
      sample_rate: output rate in Hz.
      quality: soxr quality, one of ``QQ``, ``LQ``, ``MQ``, ``HQ``, ``VHQ``. The default,
        the best, costs little next to decoding.
      remove_dc: subtract the mean before resampling (where the resampler would otherwise ring
        on the step of the offset at both ends).

    Returns:
      float32 ``[T]`` samples in [-1, 1] at ``sample_rate``.

    Raises:
      AudioError: missing, empty, undecodable, non-finite or silent (peak below -80 dBFS once
        any DC offset is removed).
    """
    _check_rate(sample_rate)
    path = pathlib.Path(path)
    if not path.is_file():
        raise AudioError(path, "no such file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        data, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError) as e:
        raise AudioError(path, undecodable_reason(path, e)) from e
    x = check_usable(data.mean(axis=1, dtype=np.float32), path)
    if remove_dc:
        x = without_dc(x)
    return to_rate(x, file_rate, sample_rate, quality=quality)


def as_mono_float32(samples: np.ndarray, name: str | os.PathLike[str]) -> np.ndarray:
    """float32 mono ``[T]`` of ``[T]`` or ``[T, C]`` samples (soundfile's layout).

    Integer PCM is scaled to [-1, 1) as soundfile scales it (unsigned 8-bit is centred first);
    channels are averaged.

    Raises:
      ValueError: not 1-D or ``[T, C]`` with at most 64 channels (the message names ``name``).
    """
    x = np.asarray(samples)
    if np.issubdtype(x.dtype, np.integer):
        half = float(2 ** (8 * x.dtype.itemsize - 1))
        offset = half if np.issubdtype(x.dtype, np.unsignedinteger) else 0.0  # 8-bit WAV
        x = ((x - offset) / half).astype(np.float32)
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2 and x.shape[1] <= 64:
        return x.mean(axis=1, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"{name} has shape {x.shape}; expected [samples] or [samples, channels]")
    return x


def ac_peak(x: np.ndarray) -> float:
    """The largest absolute sample of ``x`` once its mean is removed: ``max |x - mean(x)|``.

    Judged on this, a constant (a DC offset without sound) is silent, while a signal without
    DC gives its peak. It needs only the minimum, maximum and mean, so a stream can keep it.
    """
    if x.shape[0] == 0:
        return 0.0
    mean = dc_offset(x)
    return max(float(x.max()) - mean, mean - float(x.min()))


def without_dc(x: np.ndarray) -> np.ndarray:
    """float32 ``x`` minus its mean (a copy)."""
    return (x - np.float32(dc_offset(x))).astype(np.float32, copy=False)


def check_usable(x: np.ndarray, name: str | os.PathLike[str]) -> np.ndarray:
    """``x`` itself when it holds usable audio.

    Raises:
      AudioError: empty, non-finite or silent (:func:`ac_peak` below -80 dBFS: a constant DC
        offset is silent too), naming ``name``.
    """
    if x.shape[0] == 0:
        raise AudioError(name, "no audio samples")
    if not np.isfinite(x).all():
        raise AudioError(name, "non-finite samples")
    if ac_peak(x) < SILENCE_PEAK:
        raise AudioError(name, SILENT)
    return x


def to_rate(x: np.ndarray, rate: int, sample_rate: int, *, quality: str = "VHQ") -> np.ndarray:
    """float32 ``x`` resampled from ``rate`` to ``sample_rate`` Hz with soxr (a copy-free
    no-op when they are equal)."""
    if int(rate) != sample_rate:
        x = soxr.resample(x, int(rate), sample_rate, quality=quality)
    return np.ascontiguousarray(x, dtype=np.float32)


class AudioCache:
    """Decoded, resampled audio kept in memory and, optionally, on disk.

    Entries are keyed by the file's resolved path, size, modification time and the sample
    rate, so an edited or replaced file is decoded again. On disk each entry is one ``.npy``
    file, written to a temporary name and renamed into place, so a crash never leaves a partial
    entry and several processes may share the folder. The memory cache is unbounded: a whole
    corpus at 16 kHz takes a few hundred MB. Returned arrays may be shared with the cache and
    are read-only.

    Args:
      cache_dir: folder for the on-disk cache (created when missing); None keeps memory only.
      quality: soxr quality used when resampling.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None, *, quality: str = "VHQ"):
        self.cache_dir = pathlib.Path(cache_dir) if cache_dir is not None else None
        self.quality = quality
        self._memory: dict[str, np.ndarray] = {}
        self.stats: collections.Counter[str] = collections.Counter()

    def _key(self, path: pathlib.Path, sample_rate: int, remove_dc: bool) -> str:
        try:
            st = path.stat()
        except OSError as e:
            raise AudioError(path, "no such file") from e
        fields = (
            _CACHE_FORMAT_VERSION,
            str(path.resolve()),
            str(st.st_size),
            str(st.st_mtime_ns),
            str(sample_rate),
            self.quality,
            # Only when set, so that entries written before the option existed still match.
            *(["no DC"] if remove_dc else []),
        )
        return hashlib.sha256("\0".join(fields).encode()).hexdigest()

    def _read_disk(self, key: str) -> np.ndarray | None:
        if self.cache_dir is None:
            return None
        entry = self.cache_dir / f"{key}.npy"
        if not entry.exists():
            return None
        try:
            x = np.load(entry, allow_pickle=False)
        except (OSError, ValueError) as e:
            logging.warning("Ignoring unreadable cache entry %s: %s", entry, e)
            return None
        if x.dtype != np.float32 or x.ndim != 1:
            logging.warning(
                "Ignoring cache entry %s of dtype %s, shape %s", entry, x.dtype, x.shape
            )
            return None
        return x

    def _write_disk(self, key: str, x: np.ndarray) -> None:
        if self.cache_dir is None:
            return
        with atomic_open(self.cache_dir / f"{key}.npy", "wb") as f:
            np.save(f, x, allow_pickle=False)

    def decoded(
        self,
        item: Utterance | str | os.PathLike[str],
        sample_rate: int,
        *,
        remove_dc: bool = False,
    ) -> np.ndarray:
        """``decode(path, sample_rate, remove_dc=remove_dc)`` through the cache (read-only
        result)."""
        _check_rate(sample_rate)
        path = _as_path(item)
        key = self._key(path, sample_rate, remove_dc)
        x = self._memory.get(key)
        if x is not None:
            self.stats["memory_hits"] += 1
            return x
        x = self._read_disk(key)
        if x is not None:
            self.stats["disk_hits"] += 1
        else:
            self.stats["decoded"] += 1
            x = decode(path, sample_rate, quality=self.quality, remove_dc=remove_dc)
            self._write_disk(key, x)
        x.flags.writeable = False
        self._memory[key] = x
        return x

    def load_many(
        self, items: Sequence[T], preprocessing: Preprocessing
    ) -> tuple[list[T], list[np.ndarray]]:
        """Loads and preprocesses every item, skipping unusable files.

        Each skipped file gets one warning naming it and the reason; the total is logged at the
        end.

        Returns:
          ``(kept, waveforms)``: the items whose audio loaded, in input order, and their float32
          ``[T_i]`` waveforms.

        Raises:
          ValueError: no item could be loaded.
        """
        kept: list[T] = []
        waves: list[np.ndarray] = []
        reasons: collections.Counter[str] = collections.Counter()
        first_error = None
        start = time.monotonic()
        for i, item in enumerate(items):
            try:
                x = preprocessing.load(_as_path(item), self)
            except AudioError as e:
                logging.warning("Skipping %s: %s.", e.path, e.reason)
                reasons[e.reason.split(" (")[0]] += 1
                first_error = first_error or e
                continue
            kept.append(item)
            waves.append(x)
            logging.log_every_n_seconds(
                logging.INFO, "Loaded %d/%d audio files.", 10, i + 1, len(items)
            )
        if not kept:
            raise ValueError(
                f"None of the {len(items)} audio files could be used; first: {first_error}"
            )
        sample_rate = preprocessing.sample_rate
        seconds = sum(w.shape[0] for w in waves) / sample_rate
        skipped = sum(reasons.values())
        detail = "".join(f", {reason}: {n}" for reason, n in sorted(reasons.items()))
        logging.info(
            "Loaded %d audio files (%.1f min at %d Hz) in %.1f s; skipped %d%s.",
            len(kept),
            seconds / 60,
            sample_rate,
            time.monotonic() - start,
            skipped,
            detail,
        )
        return kept, waves
