"""Corpus loaders: one ``Utterance`` per audio file, labelled from the file's name.

Every corpus sits in its own folder under a data root (``emodb/``, ``ravdess/``, ``tess/``,
``savee/``, ``cremad/``). The folder is searched recursively, so both the official archives'
layouts and the common flattened copies work:

- ``emodb``: ``wav/03a01Fa.wav`` (speaker ``03``, text ``a01``, emotion ``F``, version ``a``).
- ``ravdess``: ``Actor_12/03-01-06-01-02-01-12.wav`` (modality, vocal channel, emotion,
  intensity, statement, repetition, actor; even actors are female). Only audio-only speech
  (``03-01-``) is kept by default; ``include_song=True`` adds the song files.
- ``tess``: ``OAF_angry/OAF_back_angry.wav`` (speaker ``OAF``/``YAF``, word, emotion).
- ``savee``: ``DC_a01.wav`` or ``DC/a01.wav`` (speaker ``DC``/``JE``/``JK``/``KL``, emotion,
  number).
- ``cremad``: ``AudioWAV/1001_DFA_ANG_XX.wav`` (actor, sentence, emotion, level); gender comes
  from ``VideoDemographics.csv`` anywhere in the folder, else it is unknown.

Any extension that soundfile can decode is accepted (the format itself is read from the
content when the audio is loaded); folders are listed by :func:`serjax.data.listing.list_audio`
(each real folder and file once, symbolic-link loops included). Hidden files and ``__MACOSX``
folders, which archive tools leave behind, are ignored; files with other extensions (label
files, PDFs) are ignored too. Audio in formats that cannot be decoded (``.m4a``, ...) is counted
and named in one warning that says what to convert it to. Audio files whose names do not parse
are skipped with one warning each and counted. When a copy holds the same utterance twice (some
redistributions nest a second copy of the corpus), the first path in sorted order is kept and
the duplicates are counted in one warning.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import inspect
import os
import pathlib
import re
from collections.abc import Callable, Mapping

from absl import logging

from serjax.data.labels import CORPUS_LABEL_CODES
from serjax.data.listing import AudioListing, list_audio
from serjax.data.utterance import Utterance

CORPORA: tuple[str, ...] = ("emodb", "ravdess", "tess", "savee", "cremad")

DATA_DIR_ENV = "SERJAX_DATA_DIR"

# What each folder should contain, for error messages.
EXPECTED_LAYOUT: Mapping[str, str] = {
    "emodb": "files like wav/03a01Fa.wav (speaker 03, text a01, emotion F, version a)",
    "ravdess": "files like Actor_12/03-01-06-01-02-01-12.wav (audio-only speech, 24 actors)",
    "tess": "files like OAF_angry/OAF_back_angry.wav (speaker OAF/YAF, word, emotion)",
    "savee": "files like DC_a01.wav or DC/a01.wav (speaker DC/JE/JK/KL, emotion, number)",
    "cremad": "files like AudioWAV/1001_DFA_ANG_XX.wav (actor, sentence, emotion, level)",
}

# Emo-DB's documentation lists the speakers' sexes; they are not in the file names.
EMODB_GENDER: Mapping[str, str] = {
    **dict.fromkeys(("03", "10", "11", "12", "15"), "male"),
    **dict.fromkeys(("08", "09", "13", "14", "16"), "female"),
}

TESS_SPEAKERS = ("OAF", "YAF")
# Misnamed files in the official TESS release, e.g. OA_bite_neutral.wav (speaker OAF).
TESS_SPEAKER_ALIASES: Mapping[str, str] = {"OA": "OAF", "YA": "YAF"}

SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")


@dataclasses.dataclass(frozen=True)
class _Parsed:
    speaker: str
    code: str
    uid: str
    gender: str | None
    extra: Mapping[str, str]


class _Excluded(Exception):
    """A well-formed name that the options leave out (RAVDESS song or video files)."""


def resolve_data_root(data_dir: str | os.PathLike[str] | None) -> pathlib.Path:
    """The data root: ``data_dir`` when given, else the ``SERJAX_DATA_DIR`` variable.

    Raises:
      ValueError: neither is set.
    """
    value = os.fspath(data_dir) if data_dir else os.environ.get(DATA_DIR_ENV, "")
    if not value:
        raise ValueError(
            "No data root: pass --data_dir or set the environment "
            f"variable {DATA_DIR_ENV} to the folder that holds {', '.join(CORPORA)}."
        )
    return pathlib.Path(value).expanduser()


def corpus_dir(name: str, data_root: str | os.PathLike[str] | None) -> pathlib.Path:
    """``data_root/name``, checking the name; the folder need not exist."""
    _check_name(name)
    return resolve_data_root(data_root) / name


def _check_name(name: str) -> None:
    if name not in CORPORA:
        raise ValueError(f"Unknown corpus {name!r}; valid names: {', '.join(CORPORA)}")


# --- name parsers: path -> _Parsed, ValueError(reason) when malformed -------------------------

_EMODB_RE = re.compile(r"(?P<speaker>\d{2})(?P<text>[ab]\d{2})(?P<code>[A-Z])(?P<version>[a-z])")


def _parse_emodb(path: pathlib.Path) -> _Parsed:
    m = _EMODB_RE.fullmatch(path.stem)
    if not m:
        raise ValueError("name is not SStttEv (e.g. 03a01Fa)")
    code = m["code"]
    if code not in CORPUS_LABEL_CODES["emodb"]:
        raise ValueError(f"unknown emotion code {code!r}")
    speaker = m["speaker"]
    return _Parsed(
        speaker=speaker,
        code=code,
        uid=path.stem,
        gender=EMODB_GENDER.get(speaker),
        extra={"text": m["text"], "version": m["version"]},
    )


_RAVDESS_RE = re.compile(r"(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})")
_RAVDESS_FIELDS = {
    "modality": {"01": "audio-video", "02": "video", "03": "audio"},
    "vocal_channel": {"01": "speech", "02": "song"},
    "intensity": {"01": "normal", "02": "strong"},
    "statement": {"01": "kids are talking by the door", "02": "dogs are sitting by the door"},
    "repetition": {"01": "1", "02": "2"},
}


def _parse_ravdess(path: pathlib.Path, *, include_song: bool) -> _Parsed:
    m = _RAVDESS_RE.fullmatch(path.stem)
    if not m:
        raise ValueError("name is not MM-VV-EE-II-SS-RR-AA (e.g. 03-01-06-01-02-01-12)")
    modality, channel, code, intensity, statement, repetition, actor = m.groups()
    values = dict(
        modality=modality,
        vocal_channel=channel,
        intensity=intensity,
        statement=statement,
        repetition=repetition,
    )
    extra = {}
    for field, value in values.items():
        if value not in _RAVDESS_FIELDS[field]:
            raise ValueError(f"invalid {field} {value!r}")
        extra[field] = _RAVDESS_FIELDS[field][value]
    if code not in CORPUS_LABEL_CODES["ravdess"]:
        raise ValueError(f"unknown emotion code {code!r}")
    if not 1 <= int(actor) <= 24:
        raise ValueError(f"actor {actor} is outside 01-24")
    if modality != "03" or (channel == "02" and not include_song):
        raise _Excluded
    return _Parsed(
        speaker=actor,
        code=code,
        uid=path.stem,
        gender="female" if int(actor) % 2 == 0 else "male",
        extra=extra,
    )


def _parse_tess(path: pathlib.Path) -> _Parsed:
    parts = path.stem.split("_")
    if len(parts) < 3:
        raise ValueError("name is not SPEAKER_word_emotion (e.g. OAF_back_angry)")
    speaker = TESS_SPEAKER_ALIASES.get(parts[0].upper(), parts[0].upper())
    if speaker not in TESS_SPEAKERS:
        raise ValueError(f"unknown speaker {parts[0]!r} (expected OAF or YAF)")
    code = parts[-1].lower()
    if code not in CORPUS_LABEL_CODES["tess"]:
        raise ValueError(f"unknown emotion {parts[-1]!r}")
    word = "_".join(parts[1:-1]).lower()
    return _Parsed(
        speaker=speaker,
        code=code,
        uid=f"{speaker}_{word}_{code}",
        gender="female",
        extra={"word": word},
    )


_SAVEE_RE = re.compile(
    r"(?:(?P<speaker>[a-z]{2})_)?(?P<code>sa|su|a|d|f|h|n)(?P<num>\d{1,2})", re.IGNORECASE
)


def _parse_savee(path: pathlib.Path) -> _Parsed:
    m = _SAVEE_RE.fullmatch(path.stem)
    if not m:
        raise ValueError("name is not SP_eNN or SP/eNN (e.g. DC_a01, DC/a01)")
    # Without a prefix the speaker is the folder's name, as in the official AudioData/DC/a01.wav.
    speaker = (m["speaker"] or path.parent.name).upper()
    if speaker not in SAVEE_SPEAKERS:
        raise ValueError(f"unknown speaker {speaker!r} (expected {'/'.join(SAVEE_SPEAKERS)})")
    code = m["code"].lower()
    number = f"{int(m['num']):02d}"
    return _Parsed(
        speaker=speaker,
        code=code,
        uid=f"{speaker}_{code}{number}",
        gender="male",
        extra={"number": number},
    )


_CREMAD_RE = re.compile(
    r"(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<code>[A-Z]{3})_(?P<level>[A-Z]{1,2})"
)
CREMAD_LEVELS = ("LO", "MD", "HI", "XX", "X")


def _parse_cremad(path: pathlib.Path, *, genders: Mapping[str, str]) -> _Parsed:
    m = _CREMAD_RE.fullmatch(path.stem.upper())
    if not m:
        raise ValueError("name is not AAAA_SSS_EEE_LL (e.g. 1001_DFA_ANG_XX)")
    if m["code"] not in CORPUS_LABEL_CODES["cremad"]:
        raise ValueError(f"unknown emotion code {m['code']!r}")
    if m["level"] not in CREMAD_LEVELS:
        raise ValueError(f"unknown level {m['level']!r} (expected {'/'.join(CREMAD_LEVELS)})")
    return _Parsed(
        speaker=m["actor"],
        code=m["code"],
        uid=path.stem.upper(),
        gender=genders.get(m["actor"]),
        extra={"sentence": m["sentence"], "level": m["level"]},
    )


def read_cremad_genders(folder: pathlib.Path) -> dict[str, str]:
    """Actor id -> "male"/"female" from ``VideoDemographics.csv`` under ``folder``, if any."""
    for path in sorted(folder.rglob("*.csv")):
        if path.name.lower() == "videodemographics.csv":
            with path.open(newline="", encoding="utf-8-sig") as f:
                return {
                    row["ActorID"].strip(): row["Sex"].strip().lower()
                    for row in csv.DictReader(f)
                    if row.get("ActorID") and row.get("Sex")
                }
    logging.info("No VideoDemographics.csv under %s: CREMA-D genders are unknown.", folder)
    return {}


# name -> (folder, **options) -> parse function. The keyword arguments of each factory are the
# options load_corpus accepts for that corpus.
_PARSER_FACTORIES: Mapping[str, Callable[..., Callable[[pathlib.Path], _Parsed]]] = {
    "emodb": lambda folder: _parse_emodb,
    "ravdess": lambda folder, *, include_song=False: functools.partial(
        _parse_ravdess, include_song=include_song
    ),
    "tess": lambda folder: _parse_tess,
    "savee": lambda folder: _parse_savee,
    "cremad": lambda folder: functools.partial(_parse_cremad, genders=read_cremad_genders(folder)),
}


def load_corpus(
    name: str, data_root: str | os.PathLike[str] | None = None, **options: object
) -> list[Utterance]:
    """Lists and labels the utterances of one corpus; no audio is decoded.

    Args:
      name: one of ``CORPORA``.
      data_root: the folder holding the corpus folders; None reads ``SERJAX_DATA_DIR``.
      **options: per corpus; ``ravdess`` takes ``include_song`` (default False).

    Returns:
      The utterances sorted by (speaker, id), an order that does not depend on the layout.

    Raises:
      ValueError: unknown corpus or option, or no usable file in the folder.
      FileNotFoundError: the corpus folder does not exist.
    """
    folder = corpus_dir(name, data_root)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"No {name} folder at {folder}: expected {EXPECTED_LAYOUT[name]} there. "
            f"`python -m serjax.data.download {name} --dest {folder.parent}` fetches it or "
            "says where to get it."
        )
    return scan_corpus(name, folder, **options)


def scan_corpus(name: str, folder: pathlib.Path, **options: object) -> list[Utterance]:
    """``load_corpus`` on an explicit corpus folder (which may be laid out in any way)."""
    _check_name(name)
    factory = _PARSER_FACTORIES[name]
    valid = [p for p in inspect.signature(factory).parameters if p != "folder"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown options {unknown} for corpus {name!r}; valid options: {valid or 'none'}"
        )
    parse = factory(folder, **options)
    listing = list_audio(folder)
    if listing.skipped:
        logging.warning("%s", listing.skipped_summary(folder))
    return _parse_files(name, folder, listing, parse)


def _parse_files(
    name: str,
    folder: pathlib.Path,
    listing: AudioListing,
    parse: Callable[[pathlib.Path], _Parsed],
) -> list[Utterance]:
    """Applies a corpus's name parser to the listed files, skipping and counting what does not
    parse."""
    files = listing.files
    codes = CORPUS_LABEL_CODES[name]
    by_uid: dict[str, Utterance] = {}
    malformed = excluded = 0
    duplicates: list[pathlib.Path] = []
    for path in files:
        try:
            parsed = parse(path)
        except _Excluded:
            excluded += 1
            continue
        except ValueError as e:
            logging.warning("Skipping %s: %s.", path, e)
            malformed += 1
            continue
        if parsed.uid in by_uid:
            duplicates.append(path)
            continue
        by_uid[parsed.uid] = Utterance(
            path=path,
            corpus=name,
            speaker=parsed.speaker,
            label=codes[parsed.code],
            gender=parsed.gender,
            extra={"id": parsed.uid, "code": parsed.code, **parsed.extra},
        )

    if duplicates:
        logging.warning(
            "%s: ignored %d files that repeat an utterance already found (first: %s).",
            name,
            len(duplicates),
            duplicates[0],
        )
    utts = sorted(by_uid.values(), key=lambda u: (u.speaker, u.extra["id"]))
    if not utts:
        skipped = f" {listing.skipped_summary(folder)}" if listing.skipped else ""
        raise ValueError(
            f"No usable {name} file under {folder} ({len(files)} audio files, {malformed} with "
            f"malformed names): expected {EXPECTED_LAYOUT[name]}.{skipped}"
        )
    logging.info(
        "%s: %d utterances, %d speakers from %s; skipped %d malformed names, excluded %d by "
        "option, ignored %d duplicates.",
        name,
        len(utts),
        len({u.speaker for u in utts}),
        folder,
        malformed,
        excluded,
        len(duplicates),
    )
    return utts
