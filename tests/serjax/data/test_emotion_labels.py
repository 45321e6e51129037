import pathlib

import numpy as np
import pytest

from serjax.data import (
    CANONICAL_EMOTIONS,
    CORPORA,
    CORPUS_CLASSES,
    CORPUS_LABEL_CODES,
    Utterance,
    encode_labels,
    select_labels,
)


def _utts(*labels: str) -> list[Utterance]:
    return [
        Utterance(pathlib.Path(f"{i}.wav"), "ravdess", f"{i % 3:02d}", label, None, {})
        for i, label in enumerate(labels)
    ]


def test_every_corpus_maps_onto_canonical_names():
    assert set(CORPUS_LABEL_CODES) == set(CORPORA)
    for codes in CORPUS_LABEL_CODES.values():
        assert set(codes.values()) <= set(CANONICAL_EMOTIONS)
    assert len(CANONICAL_EMOTIONS) == len(set(CANONICAL_EMOTIONS)) == 9


@pytest.mark.parametrize(
    ("corpus", "n_classes"),
    [("emodb", 7), ("ravdess", 8), ("tess", 7), ("savee", 7), ("cremad", 6)],
)
def test_class_counts(corpus, n_classes):
    assert len(set(CORPUS_CLASSES[corpus])) == n_classes


def test_the_documented_foldings():
    assert CORPUS_LABEL_CODES["emodb"]["A"] == "fear"  # Angst: anxiety/fear
    assert CORPUS_LABEL_CODES["emodb"]["L"] == "boredom"
    assert CORPUS_LABEL_CODES["tess"]["ps"] == "surprise"  # pleasant surprise
    assert CORPUS_LABEL_CODES["ravdess"]["02"] == "calm"
    assert CORPUS_LABEL_CODES["savee"]["sa"] == "sadness"
    assert CORPUS_LABEL_CODES["savee"]["su"] == "surprise"
    assert CORPUS_LABEL_CODES["cremad"]["FEA"] == "fear"


def test_select_drops_other_classes_and_logs_the_counts(caplog):
    caplog.set_level("INFO")
    utts = _utts("anger", "calm", "surprise", "calm", "neutral")
    kept = select_labels(utts, ["neutral", "anger"])
    assert [u.label for u in kept] == ["anger", "neutral"]
    assert [u.path for u in kept] == [utts[0].path, utts[4].path]
    log = caplog.text
    assert "Dropped 3 utterances" in log
    assert "calm: 2" in log
    assert "surprise: 1" in log


def test_mapping_merges_before_selecting():
    utts = _utts("anger", "calm", "neutral", "surprise")
    kept = select_labels(utts, ["neutral", "anger"], {"calm": "neutral"})
    assert [u.label for u in kept] == ["anger", "neutral", "neutral"]
    assert kept[1].path == utts[1].path
    assert utts[1].label == "calm"  # inputs are not modified


def test_mapping_to_a_new_name_allows_it_as_a_class():
    utts = _utts("anger", "happiness", "sadness")
    kept = select_labels(
        utts, ["negative", "happiness"], {"anger": "negative", "sadness": "negative"}
    )
    assert [u.label for u in kept] == ["negative", "happiness", "negative"]


def test_no_classes_keeps_everything():
    utts = _utts("anger", "calm")
    assert select_labels(utts, None) == utts


@pytest.mark.parametrize(
    ("classes", "mapping", "message"),
    [
        (["anger", "angry"], None, "unknown classes"),
        (["anger", "anger"], None, "repeat"),
        (["anger"], {"angry": "anger"}, "unknown emotions"),
    ],
)
def test_invalid_label_sets_are_rejected(classes, mapping, message):
    with pytest.raises(ValueError, match=message):
        select_labels(_utts("anger"), classes, mapping)


def test_missing_class_is_a_warning(caplog):
    select_labels(_utts("anger"), ["anger", "boredom"])
    assert "boredom" in caplog.text


def test_encode_labels_uses_class_order():
    utts = _utts("neutral", "anger", "neutral")
    np.testing.assert_array_equal(encode_labels(utts, ["anger", "neutral"]), [1, 0, 1])
    assert encode_labels(utts, ["anger", "neutral"]).dtype == np.int32
    with pytest.raises(ValueError, match="not in classes"):
        encode_labels(utts, ["anger"])
