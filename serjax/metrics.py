"""Classification metrics for speech emotion recognition, in plain NumPy.

The two headline numbers of the SER literature are

* **WA** (weighted accuracy): the plain accuracy, every utterance counts once, so frequent
  classes weigh more;
* **UA** (unweighted accuracy): the mean of the per-class recalls, every class counts once.

``UA`` averages the recall over the classes **present in the labels**. A class with no true
example has no defined recall (0 / 0); counting it as 0 would punish a model for a class the
evaluation split simply does not contain (common with speaker-independent folds), and counting
it as 1 would reward it. Skipping it is what scikit-learn's ``balanced_accuracy_score`` does.

Macro F1 averages F1 over the classes present in the labels **or** in the predictions (the
scikit-learn default when no label list is passed): a class that is predicted but never true
has F1 = 0 and lowers the average, as it should; a class absent from both is left out.

ROC-AUC is one-vs-rest per class, from the class's score column, by the rank (Mann-Whitney U)
formula with tied scores given their average rank; it is ``None`` for a class that has no
positive or no negative example in the split.

Everything here is host-side NumPy: inputs may be lists, NumPy or JAX arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "classification_metrics",
    "classification_report",
    "confusion_matrix",
    "roc_auc_one_vs_rest",
    "unweighted_accuracy",
    "weighted_accuracy",
]


def _as_label_vector(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
    return arr.astype(np.int64, copy=False)


def _check_pair(labels: Any, preds: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _as_label_vector(labels, "labels")
    p = _as_label_vector(preds, "preds")
    if y.shape != p.shape:
        raise ValueError(f"labels and preds differ in length: {y.shape[0]} vs {p.shape[0]}")
    if y.size == 0:
        raise ValueError("metrics of an empty set are undefined (no labels given)")
    return y, p


def _check_range(x: np.ndarray, num_classes: int, name: str) -> None:
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        bad = x[(x < 0) | (x >= num_classes)][0]
        raise ValueError(f"{name} holds class index {bad}, outside [0, {num_classes})")


def confusion_matrix(labels: Any, preds: Any, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Args:
      labels: true class indices, ``[N]`` ints in ``[0, num_classes)``.
      preds: predicted class indices, ``[N]``.
      num_classes: K.

    Returns:
      ``[K, K]`` int64 matrix; rows are true classes, columns predicted classes.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    y, p = _check_pair(labels, preds)
    _check_range(y, num_classes, "labels")
    _check_range(p, num_classes, "preds")
    flat = np.bincount(y * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def weighted_accuracy(labels: Any, preds: Any) -> float:
    """WA: the fraction of utterances classified correctly (plain accuracy)."""
    y, p = _check_pair(labels, preds)
    return float(np.mean(y == p))


def _per_class_recall(cm: np.ndarray) -> np.ndarray:
    """Recall per class, NaN where the class has no true example."""
    support = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def unweighted_accuracy(labels: Any, preds: Any, num_classes: int) -> float:
    """UA: the mean recall over the classes present in ``labels``.

    Classes without any true example are left out of the mean (see the module docstring);
    this equals scikit-learn's ``balanced_accuracy_score``.
    """
    recall = _per_class_recall(confusion_matrix(labels, preds, num_classes))
    return float(np.nanmean(recall))


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of ``scores``; tied values share the mean of the ranks they span."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # Start index of each run of equal values in the sorted order.
    run_start = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    run_end = np.r_[run_start[1:], scores.size]  # exclusive
    # Positions i..j-1 (0-based) hold ranks i+1..j, whose mean is (i + 1 + j) / 2.
    run_rank = (run_start + 1 + run_end) / 2.0
    ranks = np.empty(scores.size, dtype=np.float64)
    ranks[order] = np.repeat(run_rank, run_end - run_start)
    return ranks


def roc_auc_one_vs_rest(labels: Any, scores: Any) -> list[float | None]:
    """One-vs-rest ROC-AUC of each class column.

    AUC equals the probability that a random positive scores above a random negative (ties
    count one half), computed as ``(R+ - n+(n+ + 1)/2) / (n+ n-)`` with ``R+`` the sum of the
    positives' average ranks.

    Args:
      labels: ``[N]`` true class indices.
      scores: ``[N, K]`` scores, higher meaning more likely (probabilities or logits).

    Returns:
      K entries: the AUC of class k against the rest, or None when the split has no positive
      or no negative example of class k.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be [N, K], got shape {s.shape}")
    y = _as_label_vector(labels, "labels")
    if y.shape[0] != s.shape[0]:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    _check_range(y, s.shape[1], "labels")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values")
    out: list[float | None] = []
    for k in range(s.shape[1]):
        positive = y == k
        n_pos = int(positive.sum())
        n_neg = y.size - n_pos
        if n_pos == 0 or n_neg == 0:
            out.append(None)
            continue
        ranks = _average_ranks(s[:, k])
        u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
        out.append(float(u / (n_pos * n_neg)))
    return out


def classification_metrics(labels: Any, probs: Any, class_names: Sequence[str]) -> dict:
    """All the evaluation numbers of one split, as a JSON-serialisable dict.

    Args:
      labels: ``[N]`` true class indices.
      probs: ``[N, K]`` class probabilities (softmax outputs); the prediction is the argmax.
        Any per-class scores work for the argmax, but ROC-AUC is meant for probabilities.
      class_names: K names, in class-index order.

    Returns:
      ``{"num_examples", "wa", "ua", "macro_f1", "per_class": {name: {"precision", "recall",
      "f1", "support"}}, "confusion_matrix": [[int]], "roc_auc": {name: float | None},
      "mean_roc_auc": float | None}``. Precision, recall and F1 are 0.0 where their
      denominator is 0 (no prediction / no true example of that class). ``mean_roc_auc``
      averages the defined per-class AUCs.
    """
    names = [str(n) for n in class_names]
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(names):
        raise ValueError(f"probs must be [N, {len(names)}] for {len(names)} classes, got {p.shape}")
    num_classes = len(names)
    preds = np.argmax(p, axis=1)
    cm = confusion_matrix(labels, preds, num_classes)

    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    seen = (support > 0) | (predicted > 0)

    aucs = roc_auc_one_vs_rest(labels, p)
    defined = [a for a in aucs if a is not None]
    per_class = {
        name: {
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "support": int(support[k]),
        }
        for k, name in enumerate(names)
    }
    return {
        "num_examples": int(cm.sum()),
        "wa": float(tp.sum() / cm.sum()),
        "ua": float(np.mean(recall[support > 0])),
        "macro_f1": float(np.mean(f1[seen])),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "roc_auc": dict(zip(names, aucs, strict=True)),
        "mean_roc_auc": float(np.mean(defined)) if defined else None,
    }


def classification_report(metrics: dict, class_names: Sequence[str], *, digits: int = 3) -> str:
    """A plain-text table of ``classification_metrics`` output, laid out like scikit-learn's.

    One row per class (precision, recall, F1, one-vs-rest ROC-AUC, support), then WA, UA,
    macro F1 and mean ROC-AUC.
    """
    names = [str(n) for n in class_names]
    footer = ["WA (accuracy)", "UA (mean recall)", "macro F1", "mean ROC-AUC"]
    width = max(len(s) for s in [*names, *footer])
    col = max(digits + 3, 9)
    header = ["precision", "recall", "f1-score", "roc-auc", "support"]
    lines = [" " * width + "".join(f"{h:>{col + 1}}" for h in header), ""]

    def num(v: float | None) -> str:
        return f"{'n/a':>{col + 1}}" if v is None else f"{v:>{col + 1}.{digits}f}"

    for name in names:
        row = metrics["per_class"][name]
        lines.append(
            f"{name:>{width}}"
            + num(row["precision"])
            + num(row["recall"])
            + num(row["f1"])
            + num(metrics["roc_auc"].get(name))
            + f"{row['support']:>{col + 1}d}"
        )
    total = metrics.get("num_examples", sum(metrics["per_class"][n]["support"] for n in names))
    blank = " " * (col + 1)
    lines.append("")
    lines.append(
        f"{footer[0]:>{width}}" + blank * 2 + num(metrics["wa"]) + blank + f"{total:>{col + 1}d}"
    )
    lines.append(f"{footer[1]:>{width}}" + blank + num(metrics["ua"]))
    lines.append(f"{footer[2]:>{width}}" + blank * 2 + num(metrics["macro_f1"]))
    lines.append(f"{footer[3]:>{width}}" + blank * 3 + num(metrics.get("mean_roc_auc")))
    return "\n".join(lines) + "\n"
