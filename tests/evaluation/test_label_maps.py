"""Label maps of cross-corpus scoring: the three ways to give one, and one line for each bad map."""

from __future__ import annotations

import numpy as np
import pytest

from emonet.errors import ConfigError
from emonet.evaluation.label_maps import class_ids, parse_label_map

HEAD = ["angry", "happy", "neutral", "sad"]


def test_inline_json_and_csv_give_the_same_map(tmp_path):
    want = {"anger": "angry", "joy": "happy", "calm": "neutral"}
    (tmp_path / "m.json").write_text('{"anger": "angry", "joy": "happy", "calm": "neutral"}')
    (tmp_path / "m.csv").write_text("label,class\nanger,angry\njoy, happy\n\ncalm,neutral\n")
    (tmp_path / "bare.csv").write_text("anger,angry\njoy,happy\ncalm,neutral\n")
    assert parse_label_map("anger=angry, joy=happy,calm=neutral") == want
    for name in ("m.json", "m.csv", "bare.csv"):
        assert parse_label_map(tmp_path / name) == want
    assert parse_label_map(want) == want


def test_labels_map_by_name_unless_the_map_says_otherwise():
    ids = class_ids({"joy": "happy", "neutral": "sad"}, ["angry", "joy", "neutral"], HEAD, "h", "t")
    assert ids.tolist() == [0, 1, 3, -1]  # the last entry keeps -1 (unlabelled) at -1
    assert class_ids(None, ["sad", "angry"], HEAD, "h", "t").tolist() == [3, 0, -1]
    dropped = class_ids({"joy": "happy"}, ["joy", "bored", "sad"], HEAD, "h", "t", drop_unmapped=True)
    assert dropped.tolist() == [1, -2, 3, -1] and dropped.dtype == np.int64


def _one_line(call, *needles):
    with pytest.raises(ConfigError) as info:
        call()
    msg = str(info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_each_bad_map_is_one_line_naming_the_fix(tmp_path):
    _one_line(lambda: class_ids(None, ["angry", "bored", "calm"], HEAD, "emodb", "cremad"), "bored, calm", "'emodb'",
              "'cremad'", "--label-map", "--drop-unmapped")  # fmt: skip
    _one_line(lambda: class_ids({"x": "furious"}, ["x"], HEAD, "emodb", "t"), "'furious'", "angry, happy")
    _one_line(lambda: parse_label_map("a=angry,a=sad"), "'a' is mapped twice", "map it once")
    _one_line(lambda: parse_label_map(""), "empty")
    _one_line(lambda: parse_label_map(" , "), "empty")
    _one_line(lambda: parse_label_map("a=angry,b"), "'b' is not LABEL=CLASS", "--label-map")
    _one_line(lambda: parse_label_map("a=angry,=sad"), "empty label")
    files = {
        "dup.json": ('{"a": "angry", "a": "sad"}', "mapped twice"),
        "bad.json": ('{"a": "angry",', "not valid JSON"),
        "list.json": ('["a", "angry"]', "not a JSON object"),
        "num.json": ('{"a": 3}', "not a string"),
        "empty.json": ("{}", "empty"),
        "three.csv": ("a,angry,x\n", "row 1 has 3 columns"),
        "dup.csv": ("a,angry\na,sad\n", "mapped twice"),
        "empty.csv": ("label,class\n", "empty"),
    }
    for name, (text, needle) in files.items():
        (tmp_path / name).write_text(text)
        _one_line(lambda name=name: parse_label_map(tmp_path / name), str(tmp_path / name), needle)
    _one_line(lambda: parse_label_map(tmp_path / "none.json"), str(tmp_path / "none.json"), "no such file")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00a")
    _one_line(lambda: parse_label_map(tmp_path / "bin.csv"), "bin.csv", "cannot be read")
