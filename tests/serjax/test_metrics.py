"""Tests of serjax.metrics against values worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from serjax import metrics

NAMES = ["sadness", "neutral", "anger"]
# Seven utterances; argmax predictions are [0, 1, 1, 1, 2, 0, 2].
LABELS = [0, 0, 1, 1, 2, 2, 2]
PROBS = np.array(
    [
        [0.8, 0.1, 0.1],
        [0.3, 0.6, 0.1],
        [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.1],
        [0.1, 0.2, 0.7],
        [0.5, 0.2, 0.3],
        [0.2, 0.2, 0.6],
    ]
)


def test_confusion_matrix_counts_rows_true_columns_predicted():
    cm = metrics.confusion_matrix([0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 2, 0, 2], 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    assert np.issubdtype(cm.dtype, np.integer)


def test_confusion_matrix_keeps_absent_classes_as_zero_rows():
    cm = metrics.confusion_matrix([1, 1], [1, 0], 4)
    np.testing.assert_array_equal(cm, [[0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])


def test_weighted_accuracy_is_plain_accuracy():
    assert metrics.weighted_accuracy([0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 2, 0, 2]) == pytest.approx(
        5 / 7
    )


def test_unweighted_accuracy_is_mean_class_recall():
    # Recalls: 1/2, 2/2, 2/3.
    ua = metrics.unweighted_accuracy([0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 2, 0, 2], 3)
    assert ua == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)


def test_ua_differs_from_wa_on_imbalanced_data():
    # Always predicting the majority class: WA 0.8, UA 0.5.
    labels = [0] * 8 + [1] * 2
    preds = [0] * 10
    assert metrics.weighted_accuracy(labels, preds) == pytest.approx(0.8)
    assert metrics.unweighted_accuracy(labels, preds, 2) == pytest.approx(0.5)


def test_ua_ignores_classes_absent_from_labels():
    # Class 2 is never true (only predicted once): recalls 1/2 and 1, mean 0.75 -- not 0.5.
    assert metrics.unweighted_accuracy([0, 0, 1, 1], [0, 2, 1, 1], 3) == pytest.approx(0.75)


def test_input_errors_are_clear():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.weighted_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match=r"class index 3, outside \[0, 3\)"):
        metrics.confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="empty"):
        metrics.unweighted_accuracy([], [], 3)
    with pytest.raises(ValueError, match="integer class indices"):
        metrics.weighted_accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match=r"probs must be \[N, 3\]"):
        metrics.classification_metrics([0, 1], np.zeros((2, 2)), NAMES)


def test_average_ranks_share_ties():
    ranks = metrics._average_ranks(np.array([3.0, 1.0, 4.0, 1.0, 5.0, 4.0]))
    np.testing.assert_allclose(ranks, [3.0, 1.5, 4.5, 1.5, 6.0, 4.5])


def test_roc_auc_pairwise_with_ties():
    # Class 0 scores: positives {0.5, 0.9}, negatives {0.5, 0.1}. Of the four pairs three are
    # won and one tied: AUC = 3.5 / 4. Class 1 uses the complementary scores: same count.
    scores = np.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1], [0.1, 0.9]])
    aucs = metrics.roc_auc_one_vs_rest([0, 1, 0, 1], scores)
    assert aucs == pytest.approx([0.875, 0.875])


def test_roc_auc_is_none_without_positives_or_negatives():
    aucs = metrics.roc_auc_one_vs_rest([0, 0, 0], np.eye(3))
    assert aucs == [None, None, None]


def test_classification_metrics_by_hand():
    m = metrics.classification_metrics(LABELS, PROBS, NAMES)
    assert m["num_examples"] == 7
    assert m["wa"] == pytest.approx(5 / 7)
    assert m["ua"] == pytest.approx(13 / 18)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    # Precision from column sums (2, 3, 2), recall from row sums (2, 2, 3).
    expected = {
        "sadness": (1 / 2, 1 / 2, 1 / 2, 2),
        "neutral": (2 / 3, 1.0, 0.8, 2),
        "anger": (1.0, 2 / 3, 0.8, 3),
    }
    for name, (p, r, f1, support) in expected.items():
        row = m["per_class"][name]
        assert row["precision"] == pytest.approx(p)
        assert row["recall"] == pytest.approx(r)
        assert row["f1"] == pytest.approx(f1)
        assert row["support"] == support
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.8) / 3)
    # Sadness: positive scores {0.8, 0.3} against negatives {0.2, 0.1, 0.1, 0.5, 0.2}; 0.8 wins
    # all five pairs and 0.3 wins four, so AUC = 9/10. The other two classes separate fully.
    assert m["roc_auc"] == pytest.approx({"sadness": 0.9, "neutral": 1.0, "anger": 1.0})
    assert m["mean_roc_auc"] == pytest.approx((0.9 + 1.0 + 1.0) / 3)


def test_classification_metrics_zero_division_and_absent_class():
    # Labels only hold classes 0 and 1; class 2 is predicted once and never true.
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]])
    m = metrics.classification_metrics([0, 0, 1, 1], probs, NAMES)
    assert m["per_class"]["anger"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["ua"] == pytest.approx(0.75)
    # F1: sadness 2/3 (P 1, R 1/2), neutral 1, anger 0 (predicted, never true) -> counted.
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    # Sadness scores: positives {0.9, 0.1} vs negatives {0.2, 0.3}: 2 of 4 pairs won.
    assert m["roc_auc"] == pytest.approx({"sadness": 0.5, "neutral": 1.0, "anger": None})
    # The mean is over the defined AUCs only.
    assert m["mean_roc_auc"] == pytest.approx(0.75)


def test_macro_f1_leaves_out_classes_neither_true_nor_predicted():
    probs = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0]])
    m = metrics.classification_metrics([0, 1], probs, NAMES)
    assert m["macro_f1"] == pytest.approx(1.0)


def test_classification_metrics_is_json_serialisable():
    m = metrics.classification_metrics(np.asarray(LABELS, dtype=np.int32), PROBS, NAMES)
    assert json.loads(json.dumps(m)) == m


def test_classification_report_layout():
    m = metrics.classification_metrics(LABELS, PROBS, NAMES)
    report = metrics.classification_report(m, NAMES)
    rows = {line.split()[0]: line.split()[1:] for line in report.splitlines() if line.strip()}
    assert rows["neutral"] == ["0.667", "1.000", "0.800", "1.000", "2"]
    assert rows["sadness"] == ["0.500", "0.500", "0.500", "0.900", "2"]
    header = report.splitlines()[0].split()
    assert header == ["precision", "recall", "f1-score", "roc-auc", "support"]
    assert "WA (accuracy)" in report and "0.714" in report
    assert "UA (mean recall)" in report and "0.722" in report
    assert "macro F1" in report and "0.700" in report
    assert "mean ROC-AUC" in report and "0.967" in report


def test_classification_report_shows_undefined_auc():
    m = metrics.classification_metrics([0, 0], np.array([[0.9, 0.1], [0.8, 0.2]]), ["a", "b"])
    report = metrics.classification_report(m, ["a", "b"])
    row_a = next(line for line in report.splitlines() if line.split()[:1] == ["a"])
    assert row_a.split()[4] == "n/a"
