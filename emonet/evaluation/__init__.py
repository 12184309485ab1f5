"""Evaluation of a trained model on a store's partitions (``emonet evaluate``).

What goes here: the metrics (unweighted average recall, accuracy, macro F1, confusion matrices,
per task), and ``evaluate``, which runs a checkpoint over a store's devel or test partition and
returns (and writes) those metrics. The CLI command lives in ``emonet/cli/``; this package is
the Python API a notebook calls.
"""
