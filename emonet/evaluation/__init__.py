"""Evaluation of a trained model on a store's partitions (``emonet evaluate``).

Modules: ``metrics`` (unweighted average recall, accuracy, macro F1, per-class recall and
precision, confusion matrices), ``scoring`` (whole-utterance batches through a model),
``evaluator`` (:func:`evaluate`: a checkpoint scored on the partition of feature stores) and
``outputs`` (results.json, predictions.csv and confusion-matrix PNGs). The CLI command lives
in ``emonet/cli/evaluate.py``; this package is the Python API a notebook calls.
"""

__all__ = ["Evaluation", "TaskEvaluation", "evaluate"]


def __getattr__(name: str):
    # Imported on first use: emonet.training imports emonet.evaluation.metrics, and the
    # evaluator imports emonet.training, so an eager import here would be circular.
    if name in __all__:
        from emonet.evaluation import evaluator

        return getattr(evaluator, name)
    raise AttributeError(f"module 'emonet.evaluation' has no attribute {name!r}")
