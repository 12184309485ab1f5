import json

import pytest

from emonet.errors import ConfigError
from emonet.models import ModelConfig
from emonet.models.config import check_options_for_model


def test_defaults_follow_the_reference():
    cfg = ModelConfig()
    assert (cfg.model, cfg.n_blocks, cfg.n_filters, cfg.widen_factor) == ("cnn", 2, 32, 1)
    assert cfg.dropout == (0.0, 0.5)
    assert cfg.adapter_type == "parallel"
    assert cfg.n_mels == 128
    assert cfg.attention_lambda == 0.3 and cfg.head_dropout == 0.2


@pytest.mark.parametrize("name", ["FCNAttention", "fcnattention", " attention "])
def test_seed_classifier_name_is_normalised(name):
    assert ModelConfig(classifier=name).classifier == "attention"


def test_single_dropout_applies_to_both_positions():
    assert ModelConfig(dropout=0.25).dropout == (0.25, 0.25)


def test_dict_round_trip_through_json():
    cfg = ModelConfig(
        model="fusion",
        adapter_type="series",
        classifier="attention",
        dropout=(0.1, 0.2),
        share_feature_layer=True,
        n_mels=64,
        rnn_bidirectional=True,
    )
    data = json.loads(json.dumps(cfg.to_dict()))
    assert ModelConfig.from_dict(data) == cfg
    assert ModelConfig.from_dict({}) == ModelConfig()  # missing keys take the defaults...
    del data["n_filters"], data["memory_format"]
    with pytest.raises(ConfigError, match=r"model config lacks key\(s\): n_filters$"):
        ModelConfig.from_dict(data, complete=True)  # ...unless complete (checkpoints), bar runtime fields


@pytest.mark.parametrize(
    "data, message",
    [
        ({"model": "transformer"}, r"'model' must be one of cnn, rnn, fusion; got 'transformer'"),
        ({"adapter_type": "lora"}, r"'adapter_type' must be one of parallel, series, none"),
        ({"classifier": "max"}, r"'classifier' must be one of avgpool, attention, meanpool"),
        ({"n_blocks": 0}, r"'n_blocks' must be an integer >= 1, got 0"),
        ({"n_filters": 8.5}, r"'n_filters' must be an integer >= 1"),
        ({"n_mels": True}, r"'n_mels' must be an integer >= 1"),
        ({"dropout": [0.1, 1.5]}, r"'dropout' must be a probability in \[0, 1\), got 1.5"),
        ({"dropout": [0.1, 0.2, 0.3]}, r"--dropout/-do must be one rate or two"),
        ({"head_dropout": -0.1}, r"'head_dropout' must be a probability"),
        ({"share_feature_layer": "yes"}, r"'share_feature_layer' must be true or false"),
        ({"attention_lambda": 0}, r"'attention_lambda' must be a number > 0"),
        ({"n_block": 3}, r"unknown model config key\(s\): n_block"),
        ({"model": 3}, r"'model' must be a string"),
        (
            {"classifier": "avgpool", "share_feature_layer": True},
            r"-sfl\) shares the attention layer; classifier avgpool",
        ),
        ({"model": "rnn", "adapter_type": "series"}, r"model rnn has bottleneck adapters"),
    ],
)
def test_from_dict_rejects_bad_values_clearly(data, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig.from_dict(data)


def test_from_dict_rejects_non_mapping():
    with pytest.raises(ValueError, match="must be a mapping"):
        ModelConfig.from_dict(["cnn"])


def test_architecture_dict_ignores_memory_format():
    a = ModelConfig(memory_format="contiguous")
    b = ModelConfig(memory_format="channels_last")
    assert a.architecture_dict() == b.architecture_dict()
    assert a.to_dict() != b.to_dict()


def test_cnn_options_given_for_rnn_are_refused():
    rnn = ModelConfig(model="rnn")
    check_options_for_model(rnn, {"classifier", "model"})  # options the rnn uses
    with pytest.raises(
        ConfigError, match=r"^-N/--number-of-resnet-blocks, -do/--dropout: option\(s\) of the cnn, which --model rnn"
    ):
        check_options_for_model(rnn, {"n_blocks", "dropout"})
    check_options_for_model(ModelConfig(model="fusion"), {"n_blocks", "dropout"})
