"""What a folder of audio holds: its audio files, listed once each, and what was left out and why.

Walking. Folders are searched recursively and symbolic links to folders are followed (a data
root may link its corpus folders from elsewhere), but each real folder, known by its
``(st_dev, st_ino)``, is entered once: a link that points back up (``corpus/loop -> ..``) is not
followed again, so no file appears twice and no walk runs forever. A file reached by several
paths (a linked folder, a symbolic or hard link to it) is listed once, under the first of its
paths in sorted order.

Left out in silence: hidden files and folders and ``__MACOSX``, which archive tools leave
behind, and files whose extension is not audio (label files, PDFs). Left out with a reason
(``AudioListing.skipped``): audio in a format that cannot be decoded here (``.m4a``, ``.aac``,
``.wma``, ...), with the conversion that makes it usable, and symbolic links to nothing.

Placeholders. A repository cloned without Git LFS (CREMA-D's, for one) holds small text
"pointer" files under the audio files' names (the format:
https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md); :func:`is_lfs_pointer` recognises
them so that they are reported as such, not as broken audio.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

# What soundfile (libsndfile >= 1.1) decodes; the format itself is read from the content.
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".oga", ".opus", ".mp3"}
    | {".au", ".snd", ".caf", ".w64", ".rf64", ".sph"}
)

# Audio formats libsndfile cannot decode (AAC and ALAC in MP4, Windows Media, AMR, Monkey's
# Audio, WavPack, AC-3, Matroska audio, Speex, RealAudio): reported, never dropped in silence.
UNSUPPORTED_AUDIO_EXTENSIONS = frozenset(
    {".m4a", ".m4b", ".aac", ".alac", ".wma", ".amr", ".ape", ".wv", ".ac3", ".mka", ".spx", ".ra"}
)

# https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md: a pointer file starts with this
# line and is well under 1 KiB.
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
_LFS_POINTER_MAX_BYTES = 1024

LFS_FETCH_HINT = (
    "the repository was cloned without Git LFS: run `git lfs install` and `git lfs pull` "
    "inside the clone to fetch the audio"
)


def convert_hint(path: pathlib.Path) -> str:
    """Why ``path`` (an unsupported audio format) is skipped and what to convert it to."""
    return (
        f"{path.suffix.lower()} audio cannot be decoded (supported: WAV, FLAC, OGG/Opus, MP3, "
        f"AIFF, ...): convert it to WAV or FLAC, e.g. `ffmpeg -i {path.name} {path.stem}.wav`"
    )


@dataclasses.dataclass(frozen=True)
class AudioListing:
    """The audio files under a folder, and the audio-like files left out.

    Attributes:
      files: readable-looking audio files (by extension), sorted, each listed once.
      skipped: ``(path, reason)`` for each file left out with a reason, sorted by path.
    """

    files: tuple[pathlib.Path, ...]
    skipped: tuple[tuple[pathlib.Path, str], ...]

    def skipped_summary(self, folder: pathlib.Path) -> str:
        """One line counting and naming the skipped files (a few of them), with the remedy."""
        names = ", ".join(p.name for p, _ in self.skipped[:5])
        more = f" and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
        kinds = sorted({p.suffix.lower() for p, _ in self.skipped if _is_unsupported(p)})
        remedy = (
            f"{', '.join(kinds)} audio cannot be decoded: convert to WAV or FLAC, e.g. "
            f"`ffmpeg -i {self.skipped[0][0].name} {self.skipped[0][0].stem}.wav`"
            if kinds
            else self.skipped[0][1]
        )
        count = f"{len(self.skipped)} file{'s' if len(self.skipped) != 1 else ''}"
        return f"{folder}: skipped {count} ({names}{more}): {remedy}."


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _is_unsupported(path: pathlib.Path) -> bool:
    return path.suffix.lower() in UNSUPPORTED_AUDIO_EXTENSIONS


def list_audio(folder: str | os.PathLike[str]) -> AudioListing:
    """The audio files under ``folder`` (recursively), each real folder and file visited once.

    A folder that does not exist, or is not a folder, gives an empty listing.
    """
    found: dict[pathlib.Path, tuple[int, int]] = {}
    skipped: list[tuple[pathlib.Path, str]] = []
    seen_folders: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        try:
            status = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (status.st_dev, status.st_ino) in seen_folders:
            dirnames[:] = []  # reached again through a link: its contents are listed already
            continue
        seen_folders.add((status.st_dev, status.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for filename in sorted(filenames):
            path = pathlib.Path(dirpath, filename)
            suffix = path.suffix.lower()
            if _is_hidden(filename) or (
                suffix not in AUDIO_EXTENSIONS and suffix not in UNSUPPORTED_AUDIO_EXTENSIONS
            ):
                continue
            try:
                file_status = path.stat()
            except OSError:
                skipped.append((path, "a symbolic link to a file that does not exist"))
                continue
            if suffix in UNSUPPORTED_AUDIO_EXTENSIONS:
                skipped.append((path, convert_hint(path)))
            else:
                found[path] = (file_status.st_dev, file_status.st_ino)
    files, seen_files = [], set()
    for path in sorted(found):
        if found[path] not in seen_files:
            seen_files.add(found[path])
            files.append(path)
    return AudioListing(files=tuple(files), skipped=tuple(sorted(skipped)))


def audio_files(folder: str | os.PathLike[str]) -> list[pathlib.Path]:
    """The audio files under ``folder`` (recursively), sorted, each once; see :func:`list_audio`."""
    return list(list_audio(folder).files)


def is_lfs_pointer(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a Git LFS pointer file (a small text placeholder), not the content."""
    try:
        path = pathlib.Path(path)
        if path.stat().st_size > _LFS_POINTER_MAX_BYTES:
            return False
        with path.open("rb") as f:
            return f.read(len(LFS_POINTER_PREFIX)) == LFS_POINTER_PREFIX
    except OSError:
        return False


def lfs_pointers(files: list[pathlib.Path] | tuple[pathlib.Path, ...]) -> list[pathlib.Path]:
    """The Git LFS pointer files among ``files``."""
    return [path for path in files if is_lfs_pointer(path)]


def undecodable_reason(path: str | os.PathLike[str], error: Exception) -> str:
    """The reason a file that failed to decode is reported with: a Git LFS pointer file is
    named as such, with how to fetch the audio; anything else gives the decoder's ``error``."""
    if is_lfs_pointer(path):
        return f"a Git LFS pointer file, not audio: {LFS_FETCH_HINT}"
    return f"cannot decode ({error})"
