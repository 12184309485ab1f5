"""--precision reaches the network in every scorer: ``emonet predict`` in bf16 on the CPU runs
other kernels than in fp32 (so its probabilities differ) yet agrees with fp32 and with
``emonet evaluate`` at the same precision."""

from __future__ import annotations

import numpy as np
import pytest

from emonet.errors import ConfigError
from emonet.evaluation import evaluate
from emonet.inference.predict import Predictor

pytestmark = pytest.mark.slow  # trains a run to score


def _probs(report) -> np.ndarray:
    return np.array([list(p.probabilities.values()) for p in report.predictions])


def test_predict_honours_the_precision(trained_run, demo_store, demo_corpus):
    run, _ = trained_run
    ckpt = run / "best.safetensors"
    scored = evaluate(ckpt, [demo_store], ["acted"], "test", precision="bf16", write=False).tasks["acted"]
    files = [demo_corpus / "data" / f for f in scored.files]
    fp32 = Predictor(ckpt, batch_size=4).predict(files, ["acted"])
    bf16 = Predictor(ckpt, batch_size=4, precision="bf16").predict(files, ["acted"])
    a, b, e = _probs(fp32), _probs(bf16), scored.probabilities
    # bf16 keeps 8 significant bits (relative rounding 2**-9 ~ 2e-3 per value) through every layer:
    # the probabilities move by a few 1e-3 here (2.6e-3 measured on this run); fp32 batchings
    # differ by < 1e-5, so a difference above 1e-4 shows that bf16 autocast ran at all
    assert np.abs(a - b).max() > 1e-4
    # 0.02 is ~10 bf16 roundings of a probability near 1: far above the noise, far below a wrong
    # feature, normalisation or mask (those move probabilities by > 0.1 on this model)
    np.testing.assert_allclose(b, a, rtol=0, atol=0.02)
    np.testing.assert_allclose(b, e, rtol=0, atol=0.02)  # evaluate in bf16: the same path
    # labels: the same wherever fp32's two best classes are further apart than the noise
    top2 = np.sort(a, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * 0.02
    assert clear.mean() > 0.5  # the check below is not vacuous
    for labels in ([p.label for p in bf16.predictions], [scored.classes[k] for k in scored.predictions]):
        assert [x for x, c in zip(labels, clear, strict=True) if c] == [
            p.label for p, c in zip(fp32.predictions, clear, strict=True) if c
        ]


def test_predict_refuses_an_unknown_precision(trained_run):
    run, _ = trained_run
    with pytest.raises(ConfigError, match=r"^--precision 'fp8' is not a precision; use one of fp32, bf16, fp16, auto$"):
        Predictor(run / "best.safetensors", precision="fp8")
