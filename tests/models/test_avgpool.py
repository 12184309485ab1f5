"""The original EmoNet's avgpool top: an 8x8 average pool over the cnn's final map, flattened,
on a fixed input length (the -w window)."""

from __future__ import annotations

import pytest
import torch

from emonet.errors import ConfigError, ModelError
from emonet.models import ModelConfig, build_model
from emonet.models.checkpoint import checkpoint_config
from tests.helpers import F64

pytestmark = pytest.mark.usefixtures("float64")  # see tests/models/conftest.py

TASKS = {"a": ["neg", "neu", "pos"]}


@pytest.mark.parametrize(("frames", "size"), [(126, 1024), (63, 512)])  # 4 s and 2 s at the default hop
def test_vector_size_of_the_default_network(frames, size):
    """128 mels x 4 s -> a 16 x 16 x 256 map -> 2 x 2 cells x 256 channels = 1024; 2 s -> 512."""
    net = build_model(ModelConfig(classifier="avgpool", input_frames=frames), TASKS).eval()
    assert net.feature_dim == size
    assert net.heads["a"].fc1.in_features == size
    seen = []
    net.heads["a"].register_forward_pre_hook(lambda _, args: seen.append(args[0].shape))
    with torch.no_grad():
        net(torch.randn(2, frames, 128), None, "a")
    assert seen == [(2, size)]


def test_a_clip_is_scored_the_same_alone_padded_and_in_a_batch(tiny, randomize):
    net = randomize(build_model(tiny(n_mels=64, classifier="avgpool", input_frames=64), TASKS)).eval()
    x = torch.randn(2, 64, 64)
    with torch.no_grad():
        for length in (64, 40, 9):
            alone = net(x[:1, :length], torch.tensor([length]), "a")  # padded to 64 frames by the model
            padded = x.clone()
            padded[0, length:] = 50.0  # garbage past the clip: left out of every cell
            together = net(padded, torch.tensor([length, 64]), "a")[:1]
            torch.testing.assert_close(together, alone, **F64)


def test_a_longer_input_than_the_window_is_refused(tiny):
    net = build_model(tiny(n_mels=64, classifier="avgpool", input_frames=64), TASKS).eval()
    with pytest.raises(ModelError, match=r"at most 64 frames \(its -w window\), got 65"):
        net(torch.randn(1, 65, 64), None, "a")


def test_the_map_must_hold_one_8x8_cell():
    with pytest.raises(ConfigError, match=r"x 56 frames, and both need at least 57; use a longer -w"):
        build_model(ModelConfig(classifier="avgpool", input_frames=56), TASKS)
    with pytest.raises(ConfigError, match=r"-c avgpool flattens .* give a window \(-w SECONDS\)"):
        build_model(ModelConfig(classifier="avgpool"), TASKS)
    with pytest.raises(ConfigError, match=r"classifier attention takes any length"):
        ModelConfig(input_frames=126)


def test_meanpool_is_the_global_masked_mean(tiny, randomize):
    """-c meanpool (an improvement): the mean over every valid position of the map, any length."""
    net = randomize(build_model(tiny(classifier="meanpool"), TASKS)).eval()
    seen = []
    net.heads["a"].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    x = torch.randn(1, 40, 32)
    with torch.no_grad():
        feat, _ = net.cnn(x.transpose(1, 2).unsqueeze(1), torch.tensor([40]), "a")
        net(x, None, "a")
    torch.testing.assert_close(seen[0], feat.mean(dim=(2, 3)), **F64)


def test_a_checkpoint_from_before_the_8x8_top_loads_its_global_mean(tmp_path):
    """A file written before input_frames existed: its avgpool was the global masked mean."""
    old = ModelConfig(classifier="meanpool").to_dict()
    del old["input_frames"]
    old["classifier"] = "avgpool"
    assert checkpoint_config(tmp_path / "m.safetensors", {"config": old}).classifier == "meanpool"
    new = ModelConfig(classifier="avgpool", input_frames=126).to_dict()
    assert checkpoint_config(tmp_path / "m.safetensors", {"config": new}) == ModelConfig.from_dict(new)
