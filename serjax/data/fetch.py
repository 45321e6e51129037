"""Fetches the freely downloadable corpora, or says where to get the others.

Emo-DB and RAVDESS have public direct URLs; TESS, SAVEE and CREMA-D need a licence page,
a registration or Git LFS, so for them the error says where to get them and where to put them.
The command line is ``python -m serjax.data.download`` (see ``serjax/data/download.py``).

Verification. The archives' own checksums are not published with them, so a download is
checked in three ways: its size against the server's ``Content-Length``, the zip's CRC-32 of
every member, and the unpacked contents. For Emo-DB the unpacked wav files must match the
SHA-256 of the original release (``serjax/data/emodb_sha256.py``); for RAVDESS the unpacked
folder must hold the 1440 speech files of 24 actors, named as the corpus names them.

Atomicity. The archive is fetched and unpacked in a temporary folder beside the destination,
verified there, and renamed into place only when every check passed, so an interrupted or
failed download never leaves a half-filled corpus folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import pathlib
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from typing import TextIO

from absl import logging

from serjax.data.corpora import EXPECTED_LAYOUT, corpus_dir, scan_corpus
from serjax.data.emodb_sha256 import EMODB_SHA256SUMS
from serjax.data.listing import LFS_FETCH_HINT, audio_files, lfs_pointers
from serjax.progress import StatusLine

_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download that failed or did not verify; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a corpus comes from.

    Attributes:
      homepage: the official page.
      licence: the corpus's licence, in words.
      how: what to fetch and how to unpack it, for manual installs.
      url: a public direct URL of a zip archive, or None when it needs a manual step.
      marker: a glob, relative to the corpus folder, that matches files of the unpacked layout.
      expected_files: how many utterances the unpacked corpus must hold.
    """

    homepage: str
    licence: str
    how: str
    url: str | None = None
    marker: str = "**/*.wav"
    expected_files: int | None = None


SOURCES: Mapping[str, Source] = {
    "emodb": Source(
        homepage="http://emodb.bilderbar.info/download/",
        licence="free for research",
        how="download download.zip and unpack it",
        url="http://emodb.bilderbar.info/download/download.zip",
        marker="wav/*.wav",
        expected_files=535,
    ),
    "ravdess": Source(
        homepage="https://zenodo.org/records/1188976",
        licence="CC BY-NC-SA 4.0 (Livingstone & Russo 2018)",
        how="download Audio_Speech_Actors_01-24.zip and unpack it",
        url="https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip?download=1",
        marker="Actor_*/*.wav",
        expected_files=1440,
    ),
    "tess": Source(
        homepage="https://tspace.library.utoronto.ca/handle/1807/24487",
        licence="CC BY-NC-ND 4.0",
        how="download the 2800 files (14 folders such as OAF_angry) and unpack them",
    ),
    "savee": Source(
        homepage="http://kahlan.eps.surrey.ac.uk/savee/",
        licence="free for research, after registration",
        how="register, download AudioData.zip and unpack it (AudioData/DC/a01.wav, ...)",
    ),
    "cremad": Source(
        homepage="https://github.com/CheyneyComputerScience/CREMA-D",
        licence="Open Database License",
        how=(
            "clone the repository with Git LFS (`git lfs install`, then `git clone` it) and "
            "keep AudioWAV/ and VideoDemographics.csv"
        ),
    ),
}


def instructions(name: str, data_root: pathlib.Path) -> str:
    """How to install corpus ``name`` under ``data_root`` by hand."""
    source = SOURCES[name]
    return (
        f"{name} ({source.licence}) is available from {source.homepage}: {source.how} into "
        f"{data_root / name}, so that it holds {EXPECTED_LAYOUT[name]}."
    )


def placeholder_problem(name: str, folder: pathlib.Path, files: list[pathlib.Path]) -> str | None:
    """Why the audio ``files`` of corpus ``name`` under ``folder`` are not audio (Git LFS
    pointer files), with the remedy; None when none of them is a pointer."""
    pointers = lfs_pointers(files)
    if not pointers:
        return None
    return (
        f"{len(pointers)} of the {len(files)} audio files under {folder} are Git LFS pointer "
        f"files ({pointers[0].stat().st_size}-byte text placeholders such as "
        f"{pointers[0].relative_to(folder)}), not audio: {LFS_FETCH_HINT}, or get {name} from "
        f"{SOURCES[name].homepage}"
    )


def parse_sha256sums(text: str) -> dict[str, str]:
    """``sha256sum`` output -> {relative path: hex digest}."""
    sums = {}
    for line in text.splitlines():
        if line.strip():
            digest, path = line.split(maxsplit=1)
            sums[path.lstrip("*")] = digest.lower()
    return sums


def _default_manifest(name: str) -> dict[str, str] | None:
    return parse_sha256sums(EMODB_SHA256SUMS) if name == "emodb" else None


class _Progress:
    """A one-line progress display; a plain line per 10 % when the stream is not a terminal."""

    def __init__(self, label: str, total: int | None, stream: TextIO):
        self.label, self.total, self.stream = label, total, stream
        self.line = StatusLine(stream, min_interval=0.2)
        self.last_decile = -1

    def update(self, done: int, final: bool = False) -> None:
        mb = f"{done / 1e6:.1f} MB"
        if self.total:
            mb += f" of {self.total / 1e6:.1f} MB ({100 * done / self.total:.0f} %)"
        if self.line.enabled:
            self.line.show(f"{self.label}: {mb}", force=final)
            if final:
                self.line.finish()
        else:
            decile = 10 * done // self.total if self.total else (10 if final else -1)
            if decile > self.last_decile:
                self.last_decile = decile
                self.stream.write(f"{self.label}: {mb}\n")
                self.stream.flush()


def fetch(url: str, dest: pathlib.Path, *, label: str, stream: TextIO | None = None) -> int:
    """Downloads ``url`` to ``dest``, showing progress; returns the number of bytes.

    Raises:
      DownloadError: the server cannot be reached or answers with an error, or fewer/more
        bytes arrive than its ``Content-Length`` announced.
    """
    stream = stream or sys.stderr
    try:
        with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
            progress = _Progress(label, total, stream)
            done = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                done += len(chunk)
                progress.update(done)
            progress.update(done, final=True)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"{url} answered HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise DownloadError(f"cannot reach {url} ({e.reason}): check the network") from e
    except http.client.IncompleteRead as e:
        raise DownloadError(f"the transfer from {url} was cut short ({e!r})") from e
    except (TimeoutError, ConnectionError, http.client.HTTPException) as e:
        raise DownloadError(f"the download from {url} failed ({e!r})") from e
    if total is None:
        logging.warning("%s sent no Content-Length; the size cannot be checked.", url)
    elif done != total:
        raise DownloadError(
            f"received {done} bytes from {url} but Content-Length announced {total}: "
            "the transfer was cut short"
        )
    return done


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify_manifest(folder: pathlib.Path, manifest: Mapping[str, str]) -> None:
    """Checks that every file of ``manifest`` is under ``folder`` with its SHA-256.

    Raises:
      DownloadError: naming up to five missing or different files.
    """
    bad = []
    for rel, digest in sorted(manifest.items()):
        path = folder / rel
        if not path.is_file():
            bad.append(f"{rel} is missing")
        elif _sha256(path) != digest:
            bad.append(f"{rel} has the wrong SHA-256")
    if bad:
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise DownloadError(
            f"the unpacked files do not match the release: {'; '.join(bad[:5])}{more}"
        )


def _find_layout(unpacked: pathlib.Path, marker: str) -> pathlib.Path:
    """The shallowest folder under ``unpacked`` in which ``marker`` matches files.

    Archives differ in whether they wrap their contents in a top folder; this finds the corpus
    folder either way.
    """
    candidates = [unpacked] + sorted(
        (p for p in unpacked.rglob("*") if p.is_dir() and "__MACOSX" not in p.parts),
        key=lambda p: (len(p.parts), str(p)),
    )
    for folder in candidates:
        if any(p.is_file() for p in folder.glob(marker)):
            return folder
    raise DownloadError(f"the archive holds no files matching {marker!r}")


def download_corpus(
    name: str,
    data_root: str | os.PathLike[str] | None,
    *,
    url: str | None = None,
    manifest: Mapping[str, str] | None = None,
    expected_files: int | None = None,
    stream: TextIO | None = None,
) -> pathlib.Path:
    """Downloads, verifies and unpacks corpus ``name`` into ``data_root/name``.

    Args:
      name: a corpus with a public URL (``SOURCES[name].url``).
      data_root: the data root; None reads ``SERJAX_DATA_DIR``. Created when missing.
      url: a mirror (``http(s)://`` or ``file://``) in place of the official URL.
      manifest: {relative path: SHA-256} the unpacked files must match; defaults to the
        shipped Emo-DB manifest for ``emodb`` and to none otherwise.
      expected_files: the number of utterances the corpus must hold; defaults to the
        corpus's full size (535 for Emo-DB, 1440 for RAVDESS).
      stream: where progress goes (default stderr).

    Returns:
      The corpus folder. An existing folder with audio in it is returned untouched.

    Raises:
      DownloadError: the download, the archive or the verification failed (nothing is left
        behind), the corpus cannot be downloaded directly (the message says how to get it), or
        the existing folder holds Git LFS pointer files instead of audio (it is left alone).
    """
    target = corpus_dir(name, data_root)
    if existing := audio_files(target):
        if problem := placeholder_problem(name, target, existing):
            raise DownloadError(f"{problem}.")
        return target
    source = SOURCES[name]
    if url is None:
        if source.url is None:
            raise DownloadError(instructions(name, target.parent))
        url = source.url
    if expected_files is None:
        expected_files = source.expected_files
    if manifest is None:
        manifest = _default_manifest(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix=f".{name}-download-", dir=target.parent))
    try:
        archive = work / "archive.zip"
        fetch(url, archive, label=f"{name} {url}", stream=stream)
        if not zipfile.is_zipfile(archive):
            raise DownloadError(f"{url} did not return a zip archive")
        with zipfile.ZipFile(archive) as zf:
            broken = zf.testzip()
            if broken is not None:
                raise DownloadError(f"{url}: archive member {broken} fails its CRC check")
            zf.extractall(work / "unpacked")
        archive.unlink()
        folder = _find_layout(work / "unpacked", source.marker)
        if manifest:
            verify_manifest(folder, manifest)
        utts = scan_corpus(name, folder)
        if expected_files is not None and len(utts) != expected_files:
            raise DownloadError(
                f"the archive holds {len(utts)} {name} utterances, expected {expected_files}"
            )
        _move_into_place(folder, target)
    except (DownloadError, ValueError, zipfile.BadZipFile) as e:
        raise DownloadError(
            f"Downloading {name} failed: {e}. {instructions(name, target.parent)}"
        ) from e
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logging.info("%s is ready in %s.", name, target)
    return target


def _move_into_place(folder: pathlib.Path, target: pathlib.Path) -> None:
    try:
        # rename(2) replaces an empty directory but never a non-empty one.
        os.replace(folder, target)
    except OSError as e:
        if target.is_dir() and audio_files(target):
            logging.info("%s appeared meanwhile (another download); keeping it.", target)
            return
        raise DownloadError(f"cannot move the corpus into {target} ({e}); is it in use?") from e


def ensure_corpus(
    name: str, data_root: str | os.PathLike[str] | None, *, download: bool = True
) -> pathlib.Path:
    """The folder of corpus ``name``, downloading it first when missing and possible.

    Raises:
      ValueError: unknown corpus, or no data root given or in ``SERJAX_DATA_DIR``.
      FileNotFoundError: the corpus is missing and cannot (or may not) be downloaded, or its
        folder holds Git LFS pointer files instead of audio; the message says where it was
        looked for and how to get it.
      DownloadError: the download failed.
    """
    folder = corpus_dir(name, data_root)
    if existing := audio_files(folder):
        if problem := placeholder_problem(name, folder, existing):
            raise FileNotFoundError(f"{problem}.")
        return folder
    source = SOURCES[name]
    if download and source.url is not None:
        return download_corpus(name, folder.parent)
    hint = (
        f" Or run `python -m serjax.data.download {name} --dest {folder.parent}`."
        if source.url
        else ""
    )
    raise FileNotFoundError(
        f"No {name} audio under {folder}. {instructions(name, folder.parent)}{hint}"
    )
