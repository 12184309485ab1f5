"""Model set-up from a real feature store: tasks, labels, feature config, normalisation statistics."""

import pytest

from emonet.errors import ConfigError, ModelError, UnknownTaskError
from emonet.models import ModelConfig, load_checkpoint, save_checkpoint
from emonet.models.from_store import model_for_store
from emonet.store import open_store

TINY = ModelConfig(n_blocks=1, n_filters=4)


def test_inherited_tasks_keep_their_own_normalisation_statistics(demo_store, tmp_path):
    store = open_store(demo_store)
    base = model_for_store(store, ["acted"], "adapters", TINY).model
    own = {"mean": [0.25] * store.feature_config["n_mels"], "std": [3.0] * store.feature_config["n_mels"]}
    path = save_checkpoint(tmp_path / "base.safetensors", base, norm_stats={"acted": own})
    built = model_for_store(store, ["arousal"], "adapters", TINY, path, given=(), band_norm=True)
    mean, _ = store.normalization("arousal")
    assert built.model.norm_stats["acted"] == own  # inherited: its own, not the store's
    assert built.model.norm_stats["arousal"]["mean"] == pytest.approx(mean.tolist())  # trained now: the store's
    raw = model_for_store(store, ["arousal"], "adapters", TINY, path, given=()).model  # the original's raw log-mels
    n_mels = store.feature_config["n_mels"]
    assert raw.norm_stats["arousal"] == {"mean": [0.0] * n_mels, "std": [1.0] * n_mels}
    assert raw.norm_stats["acted"] == own
    out = save_checkpoint(tmp_path / "m.safetensors", built.model, extra=built.extra)
    assert load_checkpoint(out)[1]["norm_stats"]["acted"] == own


def test_initial_model_for_other_or_unknown_features_is_refused(demo_store, tmp_path):
    store = open_store(demo_store)
    base = model_for_store(store, ["acted"], "scratch", TINY).model
    base.feature_config = {**store.feature_config, "f_max": 7000.0}
    other = save_checkpoint(tmp_path / "other.safetensors", base)
    other_features = r"other.safetensors \(-im/--initial-model\): was made for other features than .*\(f_max 7000.0"
    with pytest.raises(ModelError, match=other_features):
        model_for_store(store, ["arousal"], "finetune", TINY, other, given=())
    base.feature_config = None
    bare = save_checkpoint(tmp_path / "bare.safetensors", base)
    with pytest.raises(
        ModelError, match=r"bare.safetensors \(-im/--initial-model\): has no feature config, so nothing says it fits"
    ):
        model_for_store(store, ["arousal"], "finetune", TINY, bare, given=())
    with pytest.raises(UnknownTaskError, match="task\\(s\\) nope not in the store"):
        model_for_store(store, ["nope"], "scratch", TINY)


def test_cnn_options_on_an_rnn_initial_model_are_refused(demo_store, tmp_path):
    store = open_store(demo_store)
    rnn = ModelConfig(model="rnn", rnn_hidden=8, rnn_layers=1)
    base = save_checkpoint(tmp_path / "rnn.safetensors", model_for_store(store, ["acted"], "scratch", rnn).model)
    # -N equal to the config's stored default would pass the architecture check, yet the rnn has no blocks
    with pytest.raises(
        ConfigError, match=r"-N/--number-of-resnet-blocks: option\(s\) of the cnn, which --model rnn does not have"
    ):
        model_for_store(store, ["arousal"], "finetune", ModelConfig(), base, given={"n_blocks"})
    assert model_for_store(store, ["arousal"], "finetune", ModelConfig(), base, given=()).model.config.model == "rnn"
