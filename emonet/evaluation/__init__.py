"""Evaluation of a trained model on a store's partitions (``emonet evaluate``).

Modules: ``metrics`` (unweighted average recall, accuracy, macro F1, per-class recall and
precision, confusion matrices), ``scoring`` (the one forward loop: batches through a model),
``evaluator`` (:func:`evaluate`: a checkpoint scored on the partition of feature stores) and
``outputs`` (results.json, predictions.csv and confusion-matrix PNGs), ``label_maps`` (another
corpus's labels mapped onto a head's classes) and ``cross_corpus`` (:func:`cross_corpus`: the
train corpus x test corpus UAR table). The CLI command lives
in ``emonet/cli/evaluate.py``; this package is the Python API a notebook calls.
"""

from emonet.evaluation.cross_corpus import CrossCorpus, cross_corpus
from emonet.evaluation.evaluator import Evaluation, TaskEvaluation, evaluate

__all__ = ["CrossCorpus", "Evaluation", "TaskEvaluation", "cross_corpus", "evaluate"]
