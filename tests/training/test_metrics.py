"""Metrics against hand-computed cases."""

import numpy as np
import pytest

from emonet.evaluation.metrics import accuracy, classification_report, confusion_matrix, macro_f1, uar


def test_confusion_matrix_counts_true_rows_predicted_columns_and_ignores_unlabelled():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2, -1], [0, 1, 1, 2, 0, 2, 1], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_hand_computed_imbalanced_case():
    # true: 8 of class a, 2 of class b; predicted: all a
    cm = confusion_matrix([0] * 8 + [1] * 2, [0] * 10, 2)
    assert accuracy(cm) == pytest.approx(0.8)
    assert uar(cm) == pytest.approx(0.5)  # recalls 1.0 and 0.0
    # F1(a) = 2 * 0.8 * 1 / 1.8 = 0.888..., F1(b) = 0
    assert macro_f1(cm) == pytest.approx((16 / 18) / 2)


def test_hand_computed_three_classes():
    cm = np.array([[2, 1, 0], [0, 3, 1], [1, 0, 0]])
    # recalls 2/3, 3/4, 0; precisions 2/3, 3/4, 0
    assert uar(cm) == pytest.approx((2 / 3 + 3 / 4 + 0) / 3)
    assert accuracy(cm) == pytest.approx(5 / 8)
    f1 = [2 / 3, 3 / 4, 0.0]  # precision == recall per class here
    assert macro_f1(cm) == pytest.approx(sum(f1) / 3)
    rep = classification_report(cm, ["x", "y", "z"])
    assert rep["per_class"]["y"] == {"recall": 0.75, "precision": 0.75, "support": 4}
    assert rep["confusion_matrix"] == cm.tolist() and rep["n"] == 8


def test_class_without_true_items_is_left_out_of_uar():
    cm = confusion_matrix([0, 0, 1, 1], [0, 2, 1, 1], 3)
    assert uar(cm) == pytest.approx((0.5 + 1.0) / 2)


def test_summed_confusion_matrices_give_exact_metrics_of_the_whole():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 101), rng.integers(0, 4, 101)
    whole = confusion_matrix(y, p, 4)
    parts = confusion_matrix(y[::2], p[::2], 4) + confusion_matrix(y[1::2], p[1::2], 4)
    assert (whole == parts).all() and uar(whole) == uar(parts)


def test_empty_matrix_scores_zero():
    cm = np.zeros((3, 3), np.int64)
    assert uar(cm) == accuracy(cm) == macro_f1(cm) == 0.0
