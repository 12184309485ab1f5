"""The original EmoNet's losses on real batches of a real store: class weights as sum(w l) /
batch size, two-class tasks as the sigmoid output with binary losses (same loss and same
gradients, by construction), and focal's probability clip."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import emonet
from emonet.models import ModelConfig, build_model
from emonet.training import batches
from emonet.training.losses import LOSSES, TaskLoss, balanced_class_weights

TINY = ModelConfig(n_blocks=1, n_filters=4, n_mels=32, classifier="attention")


def _real_batch(store_path, task: str):
    """A fresh model in float64 (so two formulas of one function agree to 1e-10) and its logits
    on the first real batch of the task's train partition."""
    torch.manual_seed(0)
    store = emonet.open_store(store_path)
    model = build_model(TINY, {task: store.classes(task)}).double().eval()
    # standardised bands: the raw log-mels through a fresh model in eval mode (BNs at mean 0 / var 1)
    # saturate the sigmoid, and focal's clip then zeroes every gradient
    x, lengths, labels = next(iter(batches(store, task, batch_size=8, window=1.0, band_norm=True)))
    return store, model, model(x.double(), lengths, task), labels


def test_class_weights_scale_each_item_and_divide_by_the_batch_size(small_store):
    store, _, logits, labels = _real_batch(small_store, "acted")
    train = store.partition("acted", "train").label_ids
    w = torch.as_tensor(balanced_class_weights(train, len(store.classes("acted"))))
    counts = torch.bincount(torch.as_tensor(train), minlength=len(w)).double()
    assert w.double().tolist() == pytest.approx((counts.sum() / (len(w) * counts)).tolist())
    # the demo's train partitions are balanced (weights 1): weights as an unbalanced one gives
    w = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64)
    assert float(w[labels].sum()) != pytest.approx(len(labels))  # so the two normalisations differ here
    per_item = F.cross_entropy(logits, labels, reduction="none").detach()
    loss = TaskLoss("crossentropy", len(w), w.numpy())(logits, labels)
    assert loss.item() == pytest.approx(float((w[labels] * per_item).sum() / len(labels)), rel=1e-6)
    loss.backward()  # a real backward through the model


def _binary_reference(kind: str, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The original's two-class losses of its Dense(1, sigmoid) output z, averaged over the batch."""
    y = labels.to(z.dtype)
    if kind in ("crossentropy", "ordinal"):  # ordinal: plain binary cross entropy for two classes
        return F.binary_cross_entropy_with_logits(z, y)
    p = torch.sigmoid(z).clamp(1e-7, 1 - 1e-7)
    p_t = torch.where(labels == 1, p, 1 - p)
    alpha_t = torch.where(labels == 1, 0.25, 0.75).to(z.dtype)
    return (-alpha_t * (1 - p_t) ** 2 * torch.log(p_t)).mean()  # the mean, not the original's batch sum


@pytest.mark.parametrize("kind", list(LOSSES)[:3])
def test_two_class_losses_and_gradients_are_the_sigmoid_outputs_binary_ones(small_store, kind):
    assert list(LOSSES)[:3] == ["crossentropy", "focal", "ordinal"]
    store, model, logits, labels = _real_batch(small_store, "arousal")
    assert len(store.classes("arousal")) == 2 and set(labels.tolist()) == {0, 1}
    head = model.heads["arousal"]
    assert head.fc2.out_features == 1  # the original's Dense(1)
    assert torch.equal(logits[:, 0], torch.zeros(len(labels)))  # logits (0, z)
    params = [p for p in model.parameters() if p.requires_grad]
    ours = TaskLoss(kind, 2)(logits, labels)
    ref = _binary_reference(kind, logits[:, 1], labels)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-10)
    g_ours = torch.autograd.grad(ours, params, retain_graph=True)
    g_ref = torch.autograd.grad(ref, params)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)
    assert any(float(g.abs().max()) > 0 for g in g_ours)


def test_a_two_class_head_saved_with_two_outputs_loads_with_the_same_probabilities(small_store):
    _, model, _, _ = _real_batch(small_store, "arousal")
    head = model.heads["arousal"]
    old = {k: v.clone() for k, v in head.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    f64 = dict(generator=gen, dtype=torch.float64)
    a, b = torch.randn(2, old["fc2.weight"].shape[1], **f64), torch.randn(2, **f64)
    old["fc2.weight"], old["fc2.bias"] = a, b  # an earlier head: Dense(2)
    head.load_state_dict(old)
    h = torch.randn(5, head.fc1.in_features, **f64)
    hidden = head.drop(torch.relu(head.bn(head.fc1(h))))
    expect = torch.softmax(hidden @ a.T + b, dim=1)
    torch.testing.assert_close(torch.softmax(head(h), dim=1), expect, rtol=1e-12, atol=1e-14)


def test_focal_clips_probabilities_at_1e_7():
    clipped = -math.log(1e-7) * (1 - 1e-7) ** 2
    three = TaskLoss("focal", 3)(torch.tensor([[40.0, 0.0, 0.0]]), torch.tensor([1]))
    assert float(three) == pytest.approx(0.25 * clipped, rel=1e-5)
    two = TaskLoss("focal", 2)(torch.tensor([[0.0, 30.0]]), torch.tensor([0]))  # p_0 = sigmoid(-30)
    assert float(two) == pytest.approx(0.75 * clipped, rel=1e-5)
