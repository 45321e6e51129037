"""Command line: download the freely available corpora, print how to get the others.

Usage::

    python -m serjax.data.download emodb --dest DATA_ROOT   # fills DATA_ROOT/emodb/wav/
    python -m serjax.data.download all   # --dest defaults to $SERJAX_DATA_DIR

Emo-DB and RAVDESS are downloaded and verified; TESS, SAVEE and CREMA-D need a licence page, a
registration or Git LFS, so for them the command prints where to get them and where to put
them. A corpus folder that holds Git LFS pointer files instead of audio (a clone made without
Git LFS) is reported as such, with how to fetch the audio.

Exit status: 0 when every corpus is in place, 1 when a download failed, 2 when a corpus needs
a manual step (its instructions are printed). See ``serjax.data.fetch`` for how downloads are
verified.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from serjax.data.corpora import CORPORA, DATA_DIR_ENV, resolve_data_root
from serjax.data.fetch import (
    SOURCES,
    DownloadError,
    download_corpus,
    instructions,
    placeholder_problem,
)
from serjax.data.listing import audio_files


def main(argv: Sequence[str] | None = None) -> int:
    downloaded = [name for name in CORPORA if SOURCES[name].url]
    by_hand = [name for name in CORPORA if not SOURCES[name].url]
    parser = argparse.ArgumentParser(
        prog="python -m serjax.data.download",
        description="Download the freely available corpora; print how to get the others.",
        epilog=(
            f"Downloaded and verified: {', '.join(downloaded)}. Instructions printed (licence "
            f"page, registration or Git LFS): {', '.join(by_hand)}. Exit status: 0 all in "
            "place, 1 a download failed, 2 a corpus needs a manual step."
        ),
    )
    parser.add_argument(
        "corpora",
        nargs="+",
        choices=(*CORPORA, "all"),
        metavar="CORPUS",
        help=f"one or more of {', '.join(CORPORA)}, or all",
    )
    parser.add_argument("--dest", help="the data root (default: $SERJAX_DATA_DIR)")
    parser.add_argument("--url", help="download from this mirror instead (one corpus only)")
    args = parser.parse_args(argv)
    names = list(CORPORA) if "all" in args.corpora else list(dict.fromkeys(args.corpora))
    if args.url and len(names) != 1:
        parser.error("--url needs exactly one corpus")
    try:
        root = resolve_data_root(args.dest)
    except ValueError:
        parser.error(f"pass --dest or set {DATA_DIR_ENV} to the data root")
    status = 0
    for name in names:
        folder = root / name
        existing = audio_files(folder)
        if problem := existing and placeholder_problem(name, folder, existing):
            print(f"{name}: not usable yet. {problem}.")
            status = max(status, 2)
        elif existing:
            print(f"{name}: already in {folder}")
        elif SOURCES[name].url is None and args.url is None:
            print(f"{name}: needs a manual download. {instructions(name, root)}")
            status = max(status, 2)
        else:
            try:
                download_corpus(name, root, url=args.url)
            except DownloadError as e:
                print(f"error: {e}", file=sys.stderr)
                status = 1
            else:
                print(f"{name}: ready in {folder}")
    return status


if __name__ == "__main__":
    sys.exit(main())
