import collections
import pathlib

import pytest
from data_testlib import real_folder
from hypothesis import given, settings
from hypothesis import strategies as st

from serjax.data import (
    Split,
    Utterance,
    emodb_s1_split,
    file_fraction_split,
    filter_speakers,
    load_corpus,
    loso_folds,
    merge_splits,
    per_corpus_speaker_fraction_split,
    ravdess_s3_split,
    speaker_fraction_split,
    speaker_kfold,
    speaker_split,
)


def _corpus(corpus: str, speakers: dict[str, str | None], per_speaker: int = 3):
    return [
        Utterance(
            pathlib.Path(f"/{corpus}/{spk}_{i}.wav"),
            corpus,
            spk,
            "anger" if i % 2 else "neutral",
            gender,
            {"id": f"{spk}_{i}"},
        )
        for spk, gender in speakers.items()
        for i in range(per_speaker)
    ]


def _ravdess():
    return _corpus(
        "ravdess", {f"{i:02d}": "female" if i % 2 == 0 else "male" for i in range(1, 25)}
    )


def _emodb():
    from serjax.data.corpora import EMODB_GENDER

    return _corpus("emodb", dict(EMODB_GENDER))


def _assert_partition(split: Split, utts):
    parts = [split.train, split.val, split.test]
    assert sorted(u.path for p in parts for u in p) == sorted(u.path for u in utts)
    speaker_sets = [{u.speaker_id for u in p} for p in parts]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not speaker_sets[i] & speaker_sets[j]


def test_split_refuses_a_shared_speaker():
    utts = _emodb()
    a = [u for u in utts if u.speaker == "03"]
    with pytest.raises(ValueError, match="speaker emodb:03 is in both train and test"):
        Split(train=a[:2], val=(), test=a[2:])


def test_same_id_in_two_corpora_is_two_speakers():
    utts = _emodb() + _ravdess()
    split = speaker_split(utts, test_speakers=["emodb:03"])
    assert split.speakers("test") == ("emodb:03",)
    assert "ravdess:03" in split.speakers("train")
    both = speaker_split(utts, test_speakers=["03"])  # plain id: every corpus's "03"
    assert both.speakers("test") == ("emodb:03", "ravdess:03")


def test_speaker_split_checks_its_arguments():
    utts = _emodb()
    with pytest.raises(ValueError, match="'3' has no utterance"):
        speaker_split(utts, test_speakers=["3"])
    with pytest.raises(ValueError, match="both validation and test"):
        speaker_split(utts, val_speakers=["03"], test_speakers=["03"])


def test_emodb_s1_split_on_synthetic_records():
    utts = _emodb()
    split = emodb_s1_split(utts)
    assert split.speakers("val") == ("emodb:15",)
    assert split.speakers("test") == ("emodb:16",)
    assert len(split.speakers("train")) == 8
    _assert_partition(split, utts)
    with pytest.raises(ValueError, match="emodb only"):
        emodb_s1_split(utts + _ravdess())


def test_emodb_s1_split_on_the_real_corpus():
    utts = load_corpus("emodb", real_folder("emodb").parent)
    split = emodb_s1_split(utts)
    assert (len(split.train), len(split.val), len(split.test)) == (408, 56, 71)


def test_ravdess_s3_split():
    split = ravdess_s3_split(_ravdess())
    assert split.speakers("test") == ("ravdess:01", "ravdess:02")
    assert {u.gender for u in split.test} == {"male", "female"}
    assert len(split.speakers("train")) == 22 and not split.val


def test_loso_folds():
    utts = _emodb()
    folds = loso_folds(utts, seed=0)
    assert [name for name, _ in folds] == sorted({u.speaker for u in utts})
    val_speakers = set()
    for name, split in folds:
        assert split.speakers("test") == (f"emodb:{name}",)
        assert len(split.speakers("val")) == 1
        assert len(split.speakers("train")) == 8
        _assert_partition(split, utts)
        val_speakers |= set(split.speakers("val"))
    assert len(val_speakers) > 1  # drawn, not always the same speaker
    assert loso_folds(list(reversed(utts)), seed=0)[3][1].speakers("val") == folds[3][1].speakers(
        "val"
    )
    different = [f[1].speakers("val") for f in loso_folds(utts, seed=1)]
    assert different != [f[1].speakers("val") for f in folds]


def test_loso_needs_enough_speakers():
    with pytest.raises(ValueError, match="at least 3 speakers"):
        loso_folds(_corpus("tess", {"OAF": "female", "YAF": "female"}), seed=0)


def test_actor_kfold_six_folds_of_four_balanced_actors():
    utts = _ravdess()
    folds = speaker_kfold(utts, k=6, seed=0, n_val_speakers=2)
    tested = []
    for name, split in folds:
        assert name.startswith("fold")
        assert len(split.speakers("test")) == 4
        assert collections.Counter(u.gender for u in split.test) == {"male": 6, "female": 6}
        assert len(split.speakers("val")) == 2
        _assert_partition(split, utts)
        tested += split.speakers("test")
    assert sorted(tested) == sorted({u.speaker_id for u in utts})  # each actor tested once
    other_seed = [s.speakers("test") for _, s in speaker_kfold(utts, k=6, seed=1)]
    assert other_seed != [s.speakers("test") for _, s in folds]


def test_fraction_split_80_20_by_actor():
    utts = _ravdess()
    split = speaker_fraction_split(utts, 0.2, seed=3)
    assert len(split.speakers("test")) == 5 and len(split.speakers("train")) == 19
    assert not split.val
    _assert_partition(split, utts)
    genders = collections.Counter(u.gender for u in split.test)
    assert sorted(genders.values()) == [2 * 3, 3 * 3]  # 2 + 3 actors of 3 utterances
    assert speaker_fraction_split(list(reversed(utts)), test_fraction=0.2, seed=3) == Split(
        train=[u for u in reversed(utts) if u in split.train],
        test=[u for u in reversed(utts) if u in split.test],
    )


@pytest.mark.parametrize(("val", "test"), [(0.5, 0.5), (-0.1, 0.2), (0.0, 1.0)])
def test_fraction_split_rejects_bad_fractions(val, test):
    with pytest.raises(ValueError, match="fractions"):
        speaker_fraction_split(_ravdess(), test_fraction=test, val_fraction=val, seed=0)


def test_even_split_of_several_corpora_with_gender_filter(caplog):
    tess = _corpus("tess", {"OAF": "female", "YAF": "female"})
    cremad = _corpus("cremad", {str(1001 + i): ("female" if i % 3 else "male") for i in range(30)})
    utts = filter_speakers(tess + _ravdess() + cremad, gender="female")
    assert {u.gender for u in utts} == {"female"}
    split = per_corpus_speaker_fraction_split(
        utts, seed=0
    )  # 80 / 10 / 10 % of each corpus's speakers
    _assert_partition(split, utts)
    for corpus in ("ravdess", "cremad"):
        for part in ("train", "val", "test"):
            assert any(u.corpus == corpus for u in getattr(split, part)), (corpus, part)
    # Two speakers cannot fill three parts: train and test get one each, with a warning.
    assert {u.corpus for u in split.val} == {"ravdess", "cremad"}
    assert len({u.speaker for u in split.test if u.corpus == "tess"}) == 1
    assert "tess has 2 speakers" in caplog.text


@pytest.mark.parametrize(
    ("n", "fractions", "expected"),
    [
        # Largest remainder alone: 24 actors at 70 / 10 / 20 % (S2) -> 16.8, 2.4, 4.8.
        (24, (0.7, 0.1, 0.2), [17, 2, 5]),
        # 12 female RAVDESS actors at 60 / 20 / 20 % (S5): 7.2, 2.4, 2.4.
        (12, (0.6, 0.2, 0.2), [7, 3, 2]),
        # Three speakers, three parts: one each (the test part takes one of train's two).
        (3, (0.6, 0.2, 0.2), [1, 1, 1]),
        # Two speakers (TESS) at 60 / 20 / 20 %: the remainder goes to validation (1, 1, 0),
        # then test takes validation's only speaker.
        (2, (0.6, 0.2, 0.2), [1, 0, 1]),
        (2, (0.8, 0.1, 0.1), [1, 0, 1]),
        (2, (0.2, 0.4, 0.4), [1, 0, 1]),  # train first, even with the smallest fraction
        (2, (0.8, 0.0, 0.2), [1, 0, 1]),
        (1, (0.6, 0.2, 0.2), [1, 0, 0]),
        (2, (0.6, 0.4, 0.0), [1, 1, 0]),  # no test fraction: validation keeps its speaker
    ],
)
def test_allocate_gives_test_speakers_before_validation(n, fractions, expected):
    from serjax.data.splits import _allocate

    assert _allocate(n, fractions) == expected


def test_two_speaker_corpus_gives_test_speakers_under_s5_fractions(caplog):
    tess = _corpus("tess", {"OAF": "female", "YAF": "female"})
    ravdess = filter_speakers(_ravdess(), gender="female")
    for seed in range(4):
        split = per_corpus_speaker_fraction_split(
            tess + ravdess, val_fraction=0.2, test_fraction=0.2, seed=seed
        )
        _assert_partition(split, tess + ravdess)
        by_part = {
            p: {u.speaker for u in getattr(split, p) if u.corpus == "tess"}
            for p in ("train", "val", "test")
        }
        assert len(by_part["train"]) == 1 and len(by_part["test"]) == 1 and not by_part["val"]
        assert by_part["train"] | by_part["test"] == {"OAF", "YAF"}
        ravdess_parts = [
            len({u.speaker for u in getattr(split, p) if u.corpus == "ravdess"})
            for p in ("train", "val", "test")
        ]
        assert ravdess_parts == [7, 3, 2]
    assert "tess has 2 speakers: too few to give val any" in caplog.text


def test_file_fraction_split_is_random_by_file_and_says_it_is_speaker_dependent():
    utts = _corpus("ravdess", {f"{i:02d}": "female" for i in range(1, 25)}, per_speaker=10)
    split = file_fraction_split(utts, 0.2, val_fraction=0.1, seed=5)
    # 240 files at 70 / 10 / 20 %: 168, 24, 48 exactly.
    assert (len(split.train), len(split.val), len(split.test)) == (168, 24, 48)
    assert sorted(u.path for p in (split.train, split.val, split.test) for u in p) == sorted(
        u.path for u in utts
    )
    assert split.speaker_independent is False
    # Speakers are shared between the parts: most test speakers are also training speakers.
    shared = set(split.speakers("test")) & set(split.speakers("train"))
    assert len(shared) >= len(split.speakers("test")) - 2
    # The seed alone decides, not the input order; another seed draws other files.
    again = file_fraction_split(list(reversed(utts)), 0.2, val_fraction=0.1, seed=5)
    assert {u.path for u in again.test} == {u.path for u in split.test}
    other = file_fraction_split(utts, 0.2, val_fraction=0.1, seed=6)
    assert {u.path for u in other.test} != {u.path for u in split.test}
    # Merging keeps the label and skips the speaker check.
    assert (
        merge_splits(split, speaker_split(_emodb(), test_speakers=["03"])).speaker_independent
        is False
    )
    with pytest.raises(ValueError, match="fractions"):
        file_fraction_split(utts, 0.6, val_fraction=0.5, seed=0)


def test_a_speaker_independent_split_still_refuses_shared_speakers():
    utts = _emodb()
    with pytest.raises(ValueError, match="in both"):
        Split(train=utts[:2], test=utts[1:3])
    assert Split(train=utts[:2], test=utts[1:3], speaker_independent=False).test == tuple(utts[1:3])


def test_merge_rechecks_disjointness():
    utts = _emodb()
    a = speaker_split(utts, test_speakers=["03"])
    b = speaker_split(utts, test_speakers=["08"])
    with pytest.raises(ValueError, match="in both"):
        merge_splits(a, b)


def test_filter_speakers():
    utts = _emodb()
    assert {u.speaker for u in filter_speakers(utts, speakers=["03", "emodb:08"])} == {"03", "08"}
    assert {u.gender for u in filter_speakers(utts, gender="male")} == {"male"}
    unknown = _corpus("cremad", {"1001": None})
    assert filter_speakers(unknown, gender="female") == []
    with pytest.raises(ValueError, match="gender"):
        filter_speakers(utts, gender="f")


@settings(max_examples=40, deadline=None)
@given(
    n_speakers=st.integers(4, 12),
    per_speaker=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    k=st.integers(2, 3),
    test_fraction=st.floats(0.05, 0.5),
)
def test_every_protocol_partitions_by_speaker(n_speakers, per_speaker, seed, k, test_fraction):
    speakers = {f"s{i}": ("female", "male", None)[i % 3] for i in range(n_speakers)}
    utts = _corpus("savee", speakers, per_speaker)
    splits = [s for _, s in loso_folds(utts, seed=seed)]
    splits += [s for _, s in speaker_kfold(utts, k=k, seed=seed, n_val_speakers=1)]
    splits.append(speaker_fraction_split(utts, test_fraction=test_fraction, seed=seed))
    splits.append(
        speaker_fraction_split(utts, test_fraction=test_fraction, val_fraction=0.2, seed=seed)
    )
    for split in splits:
        _assert_partition(split, utts)
        assert split.train and split.test
