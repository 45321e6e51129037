"""Canonical emotion names shared by every corpus, and label-set selection.

Each corpus codes its emotions its own way (Emo-DB ``W``, RAVDESS ``05``, TESS ``angry``, SAVEE
``a``, CREMA-D ``ANG``). Loaders translate the code into one of ``CANONICAL_EMOTIONS`` so that
corpora can be merged and compared; the raw code stays in ``Utterance.extra["code"]``.

Canonical names and the codes that map to them:

============  =====  =======  =========  =====  =======
canonical     emodb  ravdess  tess       savee  cremad
============  =====  =======  =========  =====  =======
anger         W      05       angry      a      ANG
boredom       L
disgust       E      07       disgust    d      DIS
fear          A      06       fear       f      FEA
happiness     F      03       happy      h      HAP
sadness       T      04       sad        sa     SAD
neutral       N      01       neutral    n      NEU
calm                 02
surprise             08       ps         su
============  =====  =======  =========  =====  =======

Emo-DB's ``A`` is "Angst" (anxiety/fear) and TESS's ``ps`` is "pleasant surprise"; both are
folded into the nearest shared name.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from absl import logging

from serjax.data.utterance import Utterance

CANONICAL_EMOTIONS: tuple[str, ...] = (
    "anger",
    "boredom",
    "disgust",
    "fear",
    "happiness",
    "sadness",
    "neutral",
    "calm",
    "surprise",
)

# Raw code -> canonical name, per corpus. Codes are compared case-sensitively for Emo-DB,
# whose single letters are upper case by definition, and case-insensitively elsewhere (the
# loaders lower-case TESS/SAVEE codes and upper-case CREMA-D codes before looking them up).
CORPUS_LABEL_CODES: Mapping[str, Mapping[str, str]] = {
    "emodb": {
        "W": "anger",
        "L": "boredom",
        "E": "disgust",
        "A": "fear",
        "F": "happiness",
        "T": "sadness",
        "N": "neutral",
    },
    "ravdess": {
        "01": "neutral",
        "02": "calm",
        "03": "happiness",
        "04": "sadness",
        "05": "anger",
        "06": "fear",
        "07": "disgust",
        "08": "surprise",
    },
    "tess": {
        "angry": "anger",
        "disgust": "disgust",
        "fear": "fear",
        "happy": "happiness",
        "neutral": "neutral",
        "ps": "surprise",
        "sad": "sadness",
    },
    "savee": {
        "a": "anger",
        "d": "disgust",
        "f": "fear",
        "h": "happiness",
        "n": "neutral",
        "sa": "sadness",
        "su": "surprise",
    },
    "cremad": {
        "ANG": "anger",
        "DIS": "disgust",
        "FEA": "fear",
        "HAP": "happiness",
        "NEU": "neutral",
        "SAD": "sadness",
    },
}

# Each corpus's own classes as canonical names, in the order its documentation lists them.
CORPUS_CLASSES: Mapping[str, tuple[str, ...]] = {
    name: tuple(codes.values()) for name, codes in CORPUS_LABEL_CODES.items()
}


def select_labels(
    utts: Iterable[Utterance],
    classes: Sequence[str] | None,
    mapping: Mapping[str, str] | None = None,
) -> list[Utterance]:
    """Relabels utterances through ``mapping`` and keeps those whose label is in ``classes``.

    Args:
      utts: utterances with canonical labels.
      classes: the label set to keep, in class-index order; None keeps every label.
      mapping: canonical name -> new name, applied first (e.g. ``{"calm": "neutral"}`` merges
        RAVDESS's calm into neutral). Labels absent from it are unchanged.

    Returns:
      The kept utterances, in input order, with their mapped labels. Dropped classes are counted
      in the log, and a requested class that no utterance has is a logged warning.

    Raises:
      ValueError: a mapping key is not a canonical emotion, a class is neither canonical nor a
        mapping target, or ``classes`` repeats a name.
    """
    mapping = dict(mapping or {})
    unknown_keys = sorted(set(mapping) - set(CANONICAL_EMOTIONS))
    if unknown_keys:
        raise ValueError(
            f"label mapping has unknown emotions {unknown_keys}; "
            f"valid names: {', '.join(CANONICAL_EMOTIONS)}"
        )
    if classes is not None:
        classes = tuple(classes)
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes repeat a name: {list(classes)}")
        known = set(CANONICAL_EMOTIONS) | set(mapping.values())
        unknown = [c for c in classes if c not in known]
        if unknown:
            raise ValueError(
                f"unknown classes {unknown}; valid names: {', '.join(CANONICAL_EMOTIONS)} "
                f"(or a target of the label mapping)"
            )

    kept: list[Utterance] = []
    dropped: collections.Counter[str] = collections.Counter()
    for utt in utts:
        label = mapping.get(utt.label, utt.label)
        if classes is not None and label not in classes:
            dropped[label] += 1
            continue
        kept.append(utt if label == utt.label else dataclasses.replace(utt, label=label))

    if dropped:
        detail = ", ".join(f"{name}: {n}" for name, n in sorted(dropped.items()))
        logging.info(
            "Dropped %d utterances outside the label set (%s).", sum(dropped.values()), detail
        )
    if classes is not None:
        present = {u.label for u in kept}
        missing = [c for c in classes if c not in present]
        if missing:
            logging.warning("No utterance has the requested classes %s.", missing)
    return kept


def encode_labels(utts: Iterable[Utterance], classes: Sequence[str]) -> np.ndarray:
    """Class indices ``[N]`` int32 of the utterances' labels, by position in ``classes``.

    Raises:
      ValueError: an utterance's label is not in ``classes`` (run ``select_labels`` first).
    """
    index = {name: i for i, name in enumerate(classes)}
    out = []
    for utt in utts:
        if utt.label not in index:
            raise ValueError(f"{utt.path}: label {utt.label!r} is not in classes {list(classes)}")
        out.append(index[utt.label])
    return np.asarray(out, dtype=np.int32)
