"""Evaluation: classification metrics (UAR first) computed from confusion matrices."""
