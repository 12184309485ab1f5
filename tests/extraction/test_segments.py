"""Segments (csv columns start,end): two segments of one long file and a whole file extract
three utterances; a segment's features are those of a wav holding just its samples (the
rule in emonet/data/segments.py); bad segments are one line naming the csv, row and fix;
resuming and a changed csv take the segment into account."""

import numpy as np
import pytest
import soundfile as sf

from emonet.cli.app import main
from emonet.data.features import FeatureConfig
from emonet.extraction.featurize import Featurizer
from emonet.store import open_store
from emonet.store.content import PartitionContent
from emonet.store.staging import BlockRecord, StagedPartition
from emonet.store.zarr_backend import ZarrLayout
from tests.helpers import tree_digest, write_csv, write_wav

SEG_HEADER = "file,label,start,end"


def _signal(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A chirp with noise: every frame differs, so a misplaced frame shows."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * (100 + 40 * t) * t) + 0.02 * rng.standard_normal(t.size)
    return np.stack([x * (1 - 0.3 * c) for c in range(channels)], axis=1) if channels > 1 else x


def _extract(store, data, train, *extra) -> int:
    return main(
        ["extract", "-s", str(store), "-dp", str(data), "--task", "t", "-tr", str(train), "-q", *map(str, extra)]
    )


def _frames(store, key: str) -> np.ndarray:
    p = open_store(store).partition("t", "train")
    return p[p.files.index(key)][2]


@pytest.fixture
def corpus(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "long.wav", _signal(10, 16000), 16000, subtype="PCM_16")  # the stdlib (wave) reader
    sf.write(data / "long44.wav", _signal(8, 44100, 2, seed=1), 44100, subtype="PCM_24")  # soundfile, resampled
    write_wav(data / "short.wav", seconds=1.3, freq=500)
    rows = [
        ("long.wav", "a", "1.024", "3.5"),
        ("long.wav", "b", "4.25", "6"),
        ("short.wav", "a", "", ""),
        ("long44.wav", "b", "2.5", "5.125"),
    ]
    return data, write_csv(tmp_path / "train.csv", rows, header=SEG_HEADER)


def test_segments_are_utterances_framed_as_wavs_of_their_samples(tmp_path, corpus):
    data, train = corpus
    store = tmp_path / "store"
    assert _extract(store, data, train) == 0
    p = open_store(store).partition("t", "train")
    assert p.files == ["long.wav@1.024-3.5", "long.wav@4.25-6", "short.wav", "long44.wav@2.5-5.125"]
    assert [p[i][1] for i in range(4)] == ["a", "b", "a", "b"]
    assert p.meta["seconds"] == pytest.approx(2.476 + 1.75 + 1.3 + 2.625, abs=1e-4)

    # the same samples cut into wavs of their own (samples round(start*rate) to round(end*rate)),
    # extracted as whole files: bit-identical frames
    cuts = tmp_path / "cuts"
    long16, _ = sf.read(data / "long.wav", dtype="int16")
    long44, _ = sf.read(data / "long44.wav", dtype="int32")
    cuts.mkdir()
    sf.write(cuts / "a.wav", long16[16384:56000], 16000, subtype="PCM_16")
    sf.write(cuts / "b.wav", long16[68000:96000], 16000, subtype="PCM_16")
    sf.write(cuts / "c.wav", long44[110250 : round(5.125 * 44100)], 44100, subtype="PCM_24")
    (cuts / "short.wav").write_bytes((data / "short.wav").read_bytes())
    ref_csv = write_csv(tmp_path / "ref.csv", [("a.wav", "a"), ("b.wav", "b"), ("short.wav", "a"), ("c.wav", "b")])
    ref = tmp_path / "ref"
    assert _extract(ref, cuts, ref_csv) == 0
    r = open_store(ref).partition("t", "train")
    for i in range(4):
        assert np.array_equal(p[i][2], r[i][2]), p.files[i]

    # against the whole file's frames: a segment starting on a hop (1.024 s = 32 x 512
    # samples) has the whole file's frames 32.. except near its edges (the centred
    # frames' zero padding, 1024 // 2 samples = 1 frame at each end)
    whole_csv = write_csv(tmp_path / "whole.csv", [("long.wav", "a")])
    whole = tmp_path / "whole"
    assert _extract(whole, data, whole_csv) == 0
    w = _frames(whole, "long.wav")
    seg = p[0][2]
    inner = slice(1, len(seg) - 1)
    assert np.allclose(seg[inner], w[32:][inner], atol=2e-2)
    # the edge frames see zero padding where the whole file has samples
    assert not np.allclose(seg[0], w[32], atol=2e-2) and not np.allclose(seg[-1], w[32 + len(seg) - 1], atol=2e-2)


def test_csv_without_segment_columns_extracts_as_before(tmp_path, corpus):
    data, _ = corpus
    old = write_csv(tmp_path / "old.csv", [("short.wav", "a"), ("long.wav", "b")])
    blank = write_csv(tmp_path / "blank.csv", [("short.wav", "a", "", ""), ("long.wav", "b")], header=SEG_HEADER)
    assert _extract(tmp_path / "s1", data, old) == 0
    assert _extract(tmp_path / "s2", data, blank) == 0
    p1, p2 = (open_store(tmp_path / s).partition("t", "train") for s in ("s1", "s2"))
    assert p1.files == p2.files == ["short.wav", "long.wav"]
    for i in range(2):
        assert np.array_equal(p1[i][2], p2[i][2])
    # only the csv's name and checksum differ in the metadata
    m1, m2 = dict(p1.meta), dict(p2.meta)
    for m in (m1, m2):
        m.pop("csv"), m.pop("content_id")
    assert m1 == m2


BAD = {
    "past the end": (("long.wav", "a", "8", "10.5"), "ends after the end of the file, which is 10 s long; fix end"),
    "end before start": (("long.wav", "a", "3", "2"), "end 2 is not after start 3; end must be greater than start"),
    "end equals start": (("long.wav", "a", "3", "3.0"), "end 3.0 is not after start 3"),
    "negative": (("long.wav", "a", "-1", "2"), "start -1 is negative"),
    "nan": (("long.wav", "a", "nan", "2"), "start 'nan' is not a finite number of seconds"),
    "not a number": (("long.wav", "a", "1", "2s"), "end '2s' is not a number of seconds; write it as e.g. 1.25"),
    "start only": (("long.wav", "a", "1", ""), "has start '1' but no end; fill in both"),
    "end only": (("long.wav", "a", "", "2"), "has end '2' but no start"),
    "shorter than a frame": (("long.wav", "a", "1", "1.05"), "shorter than one frame (1024 samples = 0.064 s"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_segment_is_one_line_naming_csv_row_and_fix(tmp_path, corpus, capsys, name):
    data, _ = corpus
    row, needle = BAD[name]
    train = write_csv(tmp_path / "train.csv", [("short.wav", "a", "", ""), row], header=SEG_HEADER)
    store = tmp_path / "store"
    assert _extract(store, data, train) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert f"{train} row 3" in err and needle in err, err
    assert not store.exists() or not open_store(store).tasks


def test_header_with_one_segment_column(tmp_path, corpus, capsys):
    data, _ = corpus
    train = write_csv(tmp_path / "train.csv", [("long.wav", "a", "1")], header="file,label,start")
    assert _extract(tmp_path / "store", data, train) == 2
    err = capsys.readouterr().err.strip()
    assert f"{train}: line 1 has a 'start' column but no 'end' column" in err and "\n" not in err


def test_skip_bad_lists_bad_segments(tmp_path, corpus, capsys):
    data, _ = corpus
    rows = [("short.wav", "a", "", ""), BAD["past the end"][0], ("long.wav", "b", "1", "2"), BAD["nan"][0]]
    train = write_csv(tmp_path / "train.csv", rows, header=SEG_HEADER)
    store = tmp_path / "store"
    assert _extract(store, data, train, "--skip-bad") == 0
    out = capsys.readouterr().out
    assert "skipped 2 bad row(s)" in out and "ends after the end of the file" in out
    p = open_store(store).partition("t", "train")
    assert p.files == ["short.wav", "long.wav@1-2"]
    assert [r["row"] for r in p.meta["skipped"]] == [3, 5]


def test_same_segment_twice_is_a_duplicate_other_segments_are_not(tmp_path, corpus, capsys):
    data, _ = corpus
    rows = [("long.wav", "a", "1", "2"), ("long.wav", "a", "1.0", "2.000"), ("long.wav", "a", "1", "2.5")]
    train = write_csv(tmp_path / "train.csv", [*rows, ("long.wav", "a", "", ""), ("./long.wav", "b")])
    train.write_text(train.read_text().replace("file,label", SEG_HEADER, 1))
    assert _extract(tmp_path / "store", data, train) == 2
    err = capsys.readouterr().err
    assert f"{train} row 3: 'long.wav@1-2' (same file and segment) duplicates row 2" in err
    assert "(1 more bad row(s)" in err  # ./long.wav is long.wav, whole, again (row 6)


def test_changed_segment_is_a_changed_csv(tmp_path, corpus, capsys):
    data, train = corpus
    store = tmp_path / "store"
    assert _extract(store, data, train) == 0
    before = tree_digest(store)
    assert _extract(store, data, train) == 0 and tree_digest(store) == before  # up to date
    train.write_text(train.read_text().replace("4.25,6", "4.25,6.5"))
    capsys.readouterr()
    assert _extract(store, data, train) == 2
    assert "already extracted from a different train.csv" in capsys.readouterr().err
    assert tree_digest(store) == before
    assert _extract(store, data, train, "--overwrite") == 0
    assert "long.wav@4.25-6.5" in open_store(store).partition("t", "train").files


def test_interrupted_segment_extraction_resumes_to_the_same_store(tmp_path, corpus, monkeypatch):
    data, train = corpus
    ref, store = tmp_path / "ref", tmp_path / "store"
    args = ("--frames-per-shard", "40", "--workers", "1")
    assert _extract(ref, data, train, *args) == 0

    record = StagedPartition.record

    def record_then_stop(self, k, block):
        record(self, k, block)
        if k == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(StagedPartition, "record", record_then_stop)
    assert _extract(store, data, train, *args) == 130
    monkeypatch.setattr(StagedPartition, "record", record)
    assert (store / ".staging").exists()
    assert _extract(store, data, train, *args) == 0
    assert tree_digest(store, exclude=()) == tree_digest(ref, exclude=())


def test_staging_of_other_segment_bounds_is_not_resumed(tmp_path):
    def content(segments):
        return PartitionContent(
            "t", "train", ["f@0-1", "f@1-2"], [0, 0], [32, 32], [1.0, 1.0], n_mels=4,
            paths=["/x/f.wav"] * 2, segments=segments,
        )  # fmt: skip

    lay = ZarrLayout(frames_per_shard=16, frames_per_chunk=16)
    sp = StagedPartition(tmp_path / "s", content([(0.0, 1.0), (1.0, 2.0)]), lay, ["a"])
    sp.prepare()
    sp.record(0, BlockRecord(16, [0.0] * 4, [0.0] * 4, 0))
    assert StagedPartition(tmp_path / "s", content([(0.0, 1.0), (1.0, 2.0)]), lay, ["a"]).blocks_done == 1
    # the same keys (to the microsecond) but other bounds: written afresh
    moved = StagedPartition(tmp_path / "s", content([(0.0, 1.0), (1.0000001, 2.0)]), lay, ["a"])
    assert moved.blocks_done == -1
    # whole files: the fingerprint is the one stores had before segments existed
    whole = dict(task="t", partition="train", files=["f"], label_ids=[0], frames=[3], seconds=[1.0], n_mels=4)
    assert PartitionContent(**whole).fingerprint() == PartitionContent(**whole, segments=[None]).fingerprint()


def test_overlap_warning_only_for_shared_audio(tmp_path, corpus, capsys):
    data, train = corpus
    apart = write_csv(tmp_path / "apart.csv", [("long.wav", "a", "6", "9")], header=SEG_HEADER)
    over = write_csv(tmp_path / "over.csv", [("long.wav", "a", "3", "4"), ("long44.wav", "a")], header=SEG_HEADER)
    assert _extract(tmp_path / "s1", data, train, "-te", apart) == 0
    assert "warning" not in capsys.readouterr().err  # other parts of one recording
    assert _extract(tmp_path / "s2", data, train, "-te", over) == 0
    err = capsys.readouterr().err
    assert "warning: task 't': 2 file(s) are in both train and test (e.g. 'long.wav@1.024-3.5')" in err


def test_prefetching_decoder_reads_segments(corpus):
    """The GPU path decodes in threads ahead of the mel: segments travel with their paths."""
    data, _ = corpus
    paths = [str(data / "long.wav"), str(data / "short.wav"), str(data / "long44.wav")] * 3
    segments = [(1.0, 2.0), None, (0.5, 1.75)] * 3
    f = Featurizer(FeatureConfig())
    serial = list(f.many(paths, segments=segments))
    prefetched = list(f.many(paths, prefetch_threads=2, segments=segments))
    assert [x.shape[0] for x in serial[:3]] == [32, 41, 40]
    assert all(np.array_equal(a, b) for a, b in zip(serial, prefetched, strict=True))


def test_an_end_at_most_10_ms_past_the_file_is_its_end(tmp_path, corpus, capsys):
    """Metadata rounds boundaries up: an end up to 10 ms after the file's end stops at the end
    (the stdlib and the soundfile reader alike); 11 ms is still one line naming the row."""
    data, _ = corpus
    rows = [("long.wav", "a", "8", "10.009"), ("long44.wav", "b", "6", "8.01"), ("long.wav", "b", "8", "10")]
    store = tmp_path / "store"
    assert _extract(store, data, write_csv(tmp_path / "ok.csv", rows, header=SEG_HEADER)) == 0
    p = open_store(store).partition("t", "train")
    assert p.files == ["long.wav@8-10.009", "long44.wav@6-8.01", "long.wav@8-10"]
    assert p.meta["seconds"] == pytest.approx(2 + 2 + 2, abs=1e-6)  # clamped to the files' ends
    assert np.array_equal(p[0][2], p[2][2])  # the same samples: 8 s to the end
    bad = write_csv(tmp_path / "bad.csv", [("long.wav", "a", "8", "10.011")], header=SEG_HEADER)
    assert _extract(tmp_path / "other", data, bad) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.csv row 2" in err and "ends after the end of the file" in err
