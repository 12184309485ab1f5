"""pipelines/emobox.yaml end to end on two small corpora in EmoBox's layout (one with valid
files, one whose devel is carved out of train by speaker, with a segment line): its stages as
shipped, with the paths, the corpus list and the network made small. Ends with the
per-corpus table and each stage's mean over the corpora."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from emonet.cli.app import main
from emonet.store import open_store
from tests.helpers import write_emobox

SHIPPED = Path(__file__).resolve().parents[2] / "pipelines" / "emobox.yaml"
TINY = {
    "number-of-resnet-blocks": 1,
    "number-of-filters": 4,
    "num-mels": None,
    "window": 0.5,
    "batch-size": 8,
    "steps-per-epoch": 2,
    "epochs": 1,
}


def _pipeline(tmp_path, meta, downloads, corpora) -> Path:
    """The shipped pipeline, pointed at the test's corpora, with a tiny network."""
    spec = yaml.safe_load(SHIPPED.read_text())
    spec["workdir"] = str(tmp_path / "work")
    stages = spec["stages"]
    stages["features"]["foreach"] = {"corpus": corpora}
    stages["features"]["options"] |= {"emobox": str(meta), "data-path": str(downloads), "folds": ["all"]}
    stages["features"]["options"] |= {"num-mels": 32, "workers": 1}
    stages["single"]["foreach"] = {"corpus": corpora}
    stages["multi-task"]["options"]["tasks"] = [f"{c}-fold${{fold}}" for c in corpora]
    for name in ("multi-task", "single"):
        options = stages[name]["options"]
        options |= {k: v for k, v in TINY.items() if v is not None}
        options["balanced-weights"] = False
    path = tmp_path / "emobox.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.slow
def test_emobox_pipeline_ends_with_the_per_corpus_table_and_the_mean(tmp_path, capsys):
    meta, downloads = tmp_path / "EmoBox", tmp_path / "downloads"
    write_emobox(meta, downloads, "emodb", ["03", "08", "09", "10", "11", "12"], folds=2, segment=True)
    write_emobox(meta, downloads, "acme", ["21", "22", "23"], folds=1, valid=True)
    assert main(["run", str(_pipeline(tmp_path, meta, downloads, ["emodb", "acme"]))]) == 0
    work = tmp_path / "work"
    table = pd.read_csv(work / "cv_results.csv", keep_default_na=False)
    assert list(table["stage"]) == ["multi-task"] * 3 + ["single"] * 3
    for stage in ("multi-task", "single"):  # each corpus once, then the mean
        corpora = list(table[table["stage"] == stage]["corpus"])
        assert sorted(corpora[:2]) == ["acme", "emodb"] and corpora[2] == "mean"
    for stage in ("multi-task", "single"):
        rows = table[table["stage"] == stage]
        assert rows["ua_mean"].iloc[2] == pytest.approx(rows["ua_mean"].iloc[:2].mean(), abs=1e-4)
        assert list(rows["folds"]) == ["1", "1", ""]  # read as text: the mean row has no folds
    assert "| single | mean |" in (work / "cv_results.md").read_text()
    # the stores: every fold (folds: all), the label map applied, devel speakers not in train
    emodb, acme = open_store(work / "stores" / "emodb"), open_store(work / "stores" / "acme")
    assert emodb.tasks == ["emodb-fold1", "emodb-fold2"] and acme.tasks == ["acme-fold1"]
    for task in emodb.tasks:
        train, devel = emodb.partition(task, "train"), emodb.partition(task, "devel")
        speakers = [{f.split("/")[-1][:2] for f in p.files} for p in (train, devel)]
        assert speakers[1] and not speakers[0] & speakers[1]
        assert set(train.labels) == {"angry", "neutral"}
    fold1 = [f for p in ("train", "devel") for f in emodb.partition("emodb-fold1", p).files]
    assert sum(f.endswith("long.wav@0.75-1.5") for f in fold1) == 1
    assert acme.partition("acme-fold1", "devel").files == [f"acme/wav/{s}" for s in ("22a01Wa.wav", "22a01Na.wav")]
