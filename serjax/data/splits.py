"""Speaker-independent train/validation/test splits (and one speaker-dependent one).

Every split is by speaker: ``Split`` refuses to exist if one speaker has utterances in two of
its parts. The one exception, :func:`file_fraction_split`, splits files at random as some
reports did, and says so (``Split.speaker_independent`` is False).

Speakers are told apart by corpus and id (``Utterance.speaker_id``), since RAVDESS actor "03"
and Emo-DB speaker "03" are different people. Functions that take speaker names
accept either the plain id (``"03"``, matching that id in every corpus present) or the
qualified one (``"ravdess:03"``).

Random choices (fold membership, validation speakers) come from ``seed`` alone and do not
depend on the order of the input list. Where speakers are shuffled, they are first grouped by
gender and interleaved, so that folds and parts get both genders in proportion.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Collection, Iterable, Sequence

import numpy as np
from absl import logging

from serjax.data.utterance import Utterance

PARTS = ("train", "val", "test")
GENDERS = ("female", "male")


@dataclasses.dataclass(frozen=True)
class Split:
    """Three speaker-disjoint parts; ``val`` and ``test`` may be empty.

    ``speaker_independent=False`` (only :func:`file_fraction_split`) lifts the check: a
    speaker-dependent split, whose figures are not comparable with the others'.

    Raises:
      ValueError: a speaker has utterances in two parts (the message names it).
    """

    train: tuple[Utterance, ...]
    val: tuple[Utterance, ...] = ()
    test: tuple[Utterance, ...] = ()
    speaker_independent: bool = True

    def __post_init__(self):
        owner: dict[str, str] = {}
        for part in PARTS:
            utts = tuple(getattr(self, part))
            object.__setattr__(self, part, utts)
            if not self.speaker_independent:
                continue
            for utt in utts:
                first = owner.setdefault(utt.speaker_id, part)
                if first != part:
                    raise ValueError(
                        f"speaker {utt.speaker_id} is in both {first} and {part} of a split"
                    )

    def speakers(self, part: str) -> tuple[str, ...]:
        """Sorted ``speaker_id``s of one part (``"train"``, ``"val"`` or ``"test"``)."""
        return tuple(sorted({u.speaker_id for u in getattr(self, part)}))

    def summary(self) -> str:
        return ", ".join(
            f"{part} {len(getattr(self, part))} utterances / {len(self.speakers(part))} speakers"
            for part in PARTS
        )


def _matches(utt: Utterance, speaker: str) -> bool:
    return speaker in (utt.speaker, utt.speaker_id)


def _speaker_ids(utts: Iterable[Utterance]) -> list[str]:
    return sorted({u.speaker_id for u in utts})


def _resolve(utts: Sequence[Utterance], speakers: Iterable[str], what: str) -> set[str]:
    """Qualified ids of the utterances' speakers that the names match; every name must match."""
    found: set[str] = set()
    for name in speakers:
        ids = {u.speaker_id for u in utts if _matches(u, str(name))}
        if not ids:
            present = ", ".join(sorted({u.speaker for u in utts}))
            raise ValueError(f"{what} speaker {name!r} has no utterance; speakers: {present}")
        found |= ids
    return found


def speaker_split(
    utts: Sequence[Utterance],
    *,
    val_speakers: Collection[str] = (),
    test_speakers: Collection[str] = (),
) -> Split:
    """Puts the named speakers in validation and test and everyone else in train.

    Raises:
      ValueError: a named speaker has no utterance, or is named for both parts.
    """
    val = _resolve(utts, val_speakers, "validation")
    test = _resolve(utts, test_speakers, "test")
    if val & test:
        raise ValueError(f"speakers {sorted(val & test)} are named for both validation and test")
    return _split_by_ids(utts, val, test)


def emodb_s1_split(utts: Sequence[Utterance]) -> Split:
    """Reference system S1's Emo-DB split: validation speaker 15, test 16, train the other 8.

    On the full corpus this gives 408 / 56 / 71 utterances.
    """
    _require_corpus(utts, "emodb")
    return speaker_split(utts, val_speakers=("15",), test_speakers=("16",))


def ravdess_s3_split(utts: Sequence[Utterance], *, val_speakers: Collection[str] = ()) -> Split:
    """Reference system S3's RAVDESS split: actors 1 (male) and 2 (female) are the test set."""
    _require_corpus(utts, "ravdess")
    return speaker_split(utts, val_speakers=val_speakers, test_speakers=("01", "02"))


def _require_corpus(utts: Sequence[Utterance], corpus: str) -> None:
    others = sorted({u.corpus for u in utts} - {corpus})
    if others:
        raise ValueError(f"this split is defined for {corpus} only, got utterances of {others}")


def _gender_of(utts: Iterable[Utterance]) -> dict[str, str]:
    """speaker_id -> gender ("unknown" when not known)."""
    return {u.speaker_id: u.gender or "unknown" for u in utts}


def _stratified_order(utts: Sequence[Utterance], rng: np.random.Generator) -> list[str]:
    """Speakers shuffled within each gender, then interleaved across genders.

    Contiguous runs of the result hold the genders in about their overall proportion.
    """
    by_gender: dict[str, list[str]] = collections.defaultdict(list)
    for sid, gender in sorted(_gender_of(utts).items()):
        by_gender[gender].append(sid)
    queues = []
    for gender in sorted(by_gender):
        group = by_gender[gender]
        queues.append([group[i] for i in rng.permutation(len(group))])
    # Interleave by each group's relative position so unequal groups spread evenly.
    keyed = [((i + 0.5) / len(q), g, sid) for g, q in enumerate(queues) for i, sid in enumerate(q)]
    return [sid for _, _, sid in sorted(keyed)]


def _fold_name(utts: Sequence[Utterance], speaker_id: str) -> str:
    single_corpus = len({u.corpus for u in utts}) == 1
    return speaker_id.split(":", 1)[1] if single_corpus else speaker_id


def _split_by_ids(utts: Sequence[Utterance], val: Collection[str], test: Collection[str]) -> Split:
    parts: dict[str, list[Utterance]] = {part: [] for part in PARTS}
    for utt in utts:
        sid = utt.speaker_id
        parts["val" if sid in val else "test" if sid in test else "train"].append(utt)
    return Split(**parts)


def _draw(rng: np.random.Generator, candidates: Sequence[str], n: int) -> list[str]:
    return sorted(candidates[i] for i in rng.choice(len(candidates), size=n, replace=False))


def loso_folds(
    utts: Sequence[Utterance], *, seed: int, n_val_speakers: int = 1
) -> list[tuple[str, Split]]:
    """Leave-one-speaker-out: one fold per speaker, that speaker being the test set.

    The validation speakers of each fold are drawn at random from the others.

    Returns:
      ``(name, split)`` per speaker in sorted order; the name is the test speaker (qualified
      with the corpus when several corpora are present).
    """
    speakers = _speaker_ids(utts)
    if len(speakers) < n_val_speakers + 2:
        raise ValueError(
            f"leave-one-speaker-out with {n_val_speakers} validation speakers needs at least "
            f"{n_val_speakers + 2} speakers, got {len(speakers)}"
        )
    folds = []
    for i, test in enumerate(speakers):
        rest = [s for s in speakers if s != test]
        val = _draw(np.random.default_rng([seed, i]), rest, n_val_speakers)
        folds.append((_fold_name(utts, test), _split_by_ids(utts, val, {test})))
    return folds


def speaker_kfold(
    utts: Sequence[Utterance], *, k: int, seed: int, n_val_speakers: int = 0
) -> list[tuple[str, Split]]:
    """k folds by speaker (RAVDESS's actors, or any corpus's speakers).

    Speakers are shuffled (gender-balanced, see the module doc) and cut into ``k`` groups of
    near-equal size; fold ``i`` tests on group ``i`` and draws ``n_val_speakers`` validation
    speakers from the rest. For RAVDESS, ``k=6`` gives 6 folds of 4 actors, 2 of each gender.

    Returns:
      ``("fold0", split), ...``.
    """
    speakers = _speaker_ids(utts)
    if not 2 <= k <= len(speakers):
        raise ValueError(f"k must be between 2 and the number of speakers ({len(speakers)}): {k}")
    order = _stratified_order(utts, np.random.default_rng(seed))
    groups = [list(g) for g in np.array_split(np.asarray(order), k)]
    folds = []
    for i, test in enumerate(groups):
        rest = [s for s in order if s not in test]
        if len(rest) <= n_val_speakers:
            raise ValueError(f"fold {i} leaves {len(rest)} speakers: too few for validation")
        val = _draw(np.random.default_rng([seed, i]), sorted(rest), n_val_speakers)
        folds.append((f"fold{i}", _split_by_ids(utts, val, set(test))))
    return folds


# With fewer speakers than non-empty parts, the parts get one speaker each in this order: a
# split without test speakers measures nothing, one without validation speakers only loses
# early stopping (the last epoch is tested).
_FILL_ORDER = (0, 2, 1)  # train, test, validation


def _allocate(n: int, fractions: Sequence[float]) -> list[int]:
    """Speaker counts per part (train, validation, test) of ``n`` speakers.

    Largest remainder first; then each part with a non-zero fraction but no speaker takes one,
    in the order train, test, validation: from the part with the most speakers if it has more
    than one, otherwise from a later part of that order that has one (so 2 speakers and three
    parts give train 1, test 1, validation 0).
    """
    exact = [n * f for f in fractions]
    counts = [int(np.floor(e)) for e in exact]
    for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[: n - sum(counts)]:
        counts[i] += 1
    order = [i for i in _FILL_ORDER if fractions[i] > 0]
    for rank, i in enumerate(order):
        if counts[i]:
            continue
        donors = [j for j in range(len(counts)) if counts[j] > 1]
        if donors:
            donor = max(donors, key=lambda j: counts[j])
        else:
            later = [j for j in order[rank + 1 :] if counts[j] == 1]
            if not later:
                continue
            donor = later[-1]
        counts[donor] -= 1
        counts[i] += 1
    return counts


def speaker_fraction_split(
    utts: Sequence[Utterance], test_fraction: float, *, val_fraction: float = 0.0, seed: int
) -> Split:
    """A random split by speaker with about the given fractions of speakers per part.

    Reference system S2's "20 % test by actor" is ``test_fraction=0.2`` (5 of RAVDESS's 24
    actors). Fractions count speakers, not utterances. When there are fewer speakers than
    non-empty parts, train gets one first, then test, then validation (``_allocate``), and a
    part left empty is logged as a warning.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"fractions must be in [0, 1) and leave some for train: val {val_fraction}, "
            f"test {test_fraction}"
        )
    fractions = (1 - val_fraction - test_fraction, val_fraction, test_fraction)
    order = _stratified_order(utts, np.random.default_rng(seed))
    n_train, n_val, _ = counts = _allocate(len(order), fractions)
    corpora = sorted({u.corpus for u in utts})
    for part, count, fraction in zip(PARTS, counts, fractions, strict=True):
        if fraction > 0 and count == 0:
            logging.warning(
                "%s has %d speakers: too few to give %s any; it is empty.",
                "+".join(corpora),
                len(order),
                part,
            )
    val = order[n_train : n_train + n_val]
    test = order[n_train + n_val :]
    return _split_by_ids(utts, set(val), set(test))


def file_fraction_split(
    utts: Sequence[Utterance], test_fraction: float, *, val_fraction: float = 0.0, seed: int
) -> Split:
    """A random split by file, regardless of speaker: speaker-dependent.

    What a report that splits "20 % of the data as test" without naming speakers most likely
    did (S2): every speaker has files in every part, so the model is tested on voices it was
    trained on, and its figures are higher than a speaker-independent split's. The part sizes
    are the fractions of the files (largest remainder, as :func:`speaker_fraction_split`
    counts speakers); which files go where comes from ``seed`` alone, not the input order.

    Returns:
      a ``Split`` with ``speaker_independent=False``.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"fractions must be in [0, 1) and leave some for train: val {val_fraction}, "
            f"test {test_fraction}"
        )
    n = len(utts)
    n_train, n_val, _ = _allocate(
        n, (1 - val_fraction - test_fraction, val_fraction, test_fraction)
    )
    canonical = sorted(range(n), key=lambda i: (utts[i].speaker_id, str(utts[i].path)))
    rank = np.empty(n, np.int64)  # each utterance's place in the seed's shuffled order
    rank[np.asarray(canonical, np.int64)[np.random.default_rng(seed).permutation(n)]] = np.arange(n)
    parts: dict[str, list[Utterance]] = {part: [] for part in PARTS}
    for utt, r in zip(utts, rank, strict=True):
        parts["train" if r < n_train else "val" if r < n_train + n_val else "test"].append(utt)
    return Split(**parts, speaker_independent=False)


def merge_splits(*splits: Split) -> Split:
    """Concatenates the parts of several splits (checking speaker-disjointness again, unless
    one of them is speaker-dependent)."""
    return Split(
        **{part: [u for s in splits for u in getattr(s, part)] for part in PARTS},
        speaker_independent=all(s.speaker_independent for s in splits),
    )


def per_corpus_speaker_fraction_split(
    utts: Sequence[Utterance],
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int,
) -> Split:
    """Splits each corpus by speaker with the same fractions, then merges the parts.

    This is reference system S5's "each corpus split evenly into train/val/test, then merged",
    made speaker-independent: every corpus contributes to every part in the same proportion
    of its speakers. A corpus with fewer speakers than non-empty parts still gives test
    speakers: one speaker to train, the next to test, then validation (TESS's two female
    speakers: one trains, the other is tested, none validates), with a logged warning.
    """
    by_corpus: dict[str, list[Utterance]] = collections.defaultdict(list)
    for utt in utts:
        by_corpus[utt.corpus].append(utt)
    return merge_splits(
        *(
            speaker_fraction_split(
                by_corpus[name], test_fraction, val_fraction=val_fraction, seed=seed
            )
            for name in sorted(by_corpus)
        )
    )


def filter_speakers(
    utts: Iterable[Utterance],
    *,
    gender: str | None = None,
    speakers: Collection[str] | None = None,
) -> list[Utterance]:
    """Keeps utterances of one gender (unknown gender is dropped) and/or of named speakers.

    Reference system S5 uses ``gender="female"``. The number dropped is logged.
    """
    if gender is not None and gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, got {gender!r}")
    utts = list(utts)
    if speakers is not None:
        wanted = _resolve(utts, speakers, "selected")
        kept = [u for u in utts if u.speaker_id in wanted]
    else:
        kept = utts
    if gender is not None:
        kept = [u for u in kept if u.gender == gender]
    if len(kept) < len(utts):
        logging.info("Speaker filter kept %d of %d utterances.", len(kept), len(utts))
    return kept
