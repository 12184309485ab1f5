"""Classification metrics from a confusion matrix (rows: true class, columns: predicted).

Everything is computed from the confusion matrix, so metrics of a partition split over DDP
ranks are exact after summing (all-reducing) the ranks' matrices. UAR (unweighted average
recall, = macro recall = balanced accuracy) is the selection metric of the field; a class
with no true items is left out of the recall average (as scikit-learn's balanced accuracy).
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels, predictions, n_classes: int) -> np.ndarray:
    """int64 [n_classes, n_classes]: entry [t, p] counts items of true class t predicted p.
    Labels below 0 (unlabelled) are ignored."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)
    keep = labels >= 0
    flat = labels[keep] * n_classes + predictions[keep]
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def per_class_recall(cm: np.ndarray) -> np.ndarray:
    """Recall of each class (0 where the class has no true items)."""
    return _safe_div(np.diag(cm).astype(np.float64), cm.sum(axis=1).astype(np.float64))


def per_class_precision(cm: np.ndarray) -> np.ndarray:
    """Precision of each class (0 where nothing was predicted as the class)."""
    return _safe_div(np.diag(cm).astype(np.float64), cm.sum(axis=0).astype(np.float64))


def uar(cm: np.ndarray) -> float:
    """Unweighted average recall over the classes that have true items (0.0 if none)."""
    present = cm.sum(axis=1) > 0
    return float(per_class_recall(cm)[present].mean()) if present.any() else 0.0


def accuracy(cm: np.ndarray) -> float:
    """Share of items predicted correctly (weighted accuracy, WA)."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else 0.0


def macro_f1(cm: np.ndarray) -> float:
    """Mean F1 over the classes that occur as true or predicted (0 where a class's precision
    and recall are both 0)."""
    rec, prec = per_class_recall(cm), per_class_precision(cm)
    f1 = _safe_div(2 * rec * prec, rec + prec)
    seen = (cm.sum(axis=1) + cm.sum(axis=0)) > 0
    return float(f1[seen].mean()) if seen.any() else 0.0


def classification_report(cm: np.ndarray, classes: list[str]) -> dict:
    """Every metric as plain JSON-able data: uar, accuracy, macro_f1, macro_precision, n,
    per_class (class -> recall, precision, support) and the confusion matrix."""
    cm = np.asarray(cm, dtype=np.int64)
    rec, prec = per_class_recall(cm), per_class_precision(cm)
    predicted = cm.sum(axis=0) > 0
    return {
        "uar": uar(cm),
        "accuracy": accuracy(cm),
        "macro_f1": macro_f1(cm),
        "macro_precision": float(prec[predicted].mean()) if predicted.any() else 0.0,
        "n": int(cm.sum()),
        "per_class": {
            c: {"recall": float(rec[i]), "precision": float(prec[i]), "support": int(cm[i].sum())}
            for i, c in enumerate(classes)
        },
        "confusion_matrix": cm.tolist(),
    }
