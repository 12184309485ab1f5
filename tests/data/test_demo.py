import numpy as np
import pytest
import soundfile as sf

from emonet.data.demo import generate_demo_corpus
from emonet.data.partitions import read_partition_csv
from emonet.store import open_store


@pytest.mark.slow
def test_demo_corpus_layout_and_determinism(tmp_path, demo_corpus):
    again = tmp_path / "again"
    generate_demo_corpus(again, files_per_task=24, min_seconds=0.5, max_seconds=1.5)
    for task in ("acted", "arousal", "valence"):
        for name in ("train.csv", "devel.csv", "test.csv"):
            assert (demo_corpus / "tasks" / task / name).is_file()
        for name in ("train.csv", "val.csv", "test.csv"):
            assert (demo_corpus / "multi-task-setup" / task / name).read_bytes() == (
                again / "multi-task-setup" / task / name
            ).read_bytes()
        rows = read_partition_csv(demo_corpus / "tasks" / task / "train.csv", "train").rows
        first = demo_corpus / "data" / rows[0].file
        assert first.read_bytes() == (again / "data" / rows[0].file).read_bytes()
        info = sf.info(str(first))
        assert info.samplerate == 16000 and info.channels == 1


@pytest.mark.slow
def test_demo_classes_are_learnable_from_logmel(demo_store):
    """A nearest-centroid classifier on mean log-mel beats chance clearly on held-out speakers."""
    store = open_store(demo_store)
    for task in store.tasks:

        def feats(part, task=task):
            p = store.partition(task, part)
            return np.stack([x.mean(0) for _, _, x in p]), p.label_ids

        xtr, ytr = feats("train")
        xte, yte = feats("test")
        k = len(store.classes(task))
        cents = np.stack([xtr[ytr == c].mean(0) for c in range(k)])
        pred = np.argmin(((xte[:, None] - cents[None]) ** 2).sum(-1), axis=1)
        recall = np.mean([np.mean(pred[yte == c] == c) for c in range(k)])
        assert recall > 1.5 / k, (task, recall)
