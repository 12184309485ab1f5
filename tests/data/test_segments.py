"""Segments in the data layer: parsing the csv cells, the utterance key, and reading only a
segment's samples (by seeking) with the same result as slicing the whole file."""

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from emonet.data.audio import AudioReadError, load_mono
from emonet.data.partitions import read_partition_csv
from emonet.data.segments import SegmentError, parse_segment, sample_range, segment_key, segment_problem
from tests.helpers import write_csv


def test_rows_expose_start_end_and_key(tmp_path):
    rows = [("a.wav", "x", "1.5", "4"), ("a.wav", "y", "", ""), ("b.wav", "x"), ("a.wav", "x", "0", "0.0000015")]
    pc = read_partition_csv(write_csv(tmp_path / "t.csv", rows, header="file,label,start,end"), "train")
    assert not pc.problems
    got = [(r.file, r.start, r.end, r.segment, r.key) for r in pc.rows]
    assert got == [
        ("a.wav", 1.5, 4.0, (1.5, 4.0), "a.wav@1.5-4"),
        ("a.wav", None, None, None, "a.wav"),
        ("b.wav", None, None, None, "b.wav"),  # a row may stop before the segment columns
        ("a.wav", 0.0, 1.5e-06, (0.0, 1.5e-06), "a.wav@0-0.000002"),
    ]


def test_columns_in_any_order_and_case(tmp_path):
    p = write_csv(tmp_path / "t.csv", [("2", "a.wav", "1", "x")], header="End,file,Start,label")
    (r,) = read_partition_csv(p, "train").rows
    assert (r.file, r.label, r.start, r.end) == ("a.wav", "x", 1.0, 2.0)


def test_csv_without_segment_columns_has_whole_files(tmp_path):
    pc = read_partition_csv(write_csv(tmp_path / "t.csv", [("a.wav", "x")]), "train")
    assert [(r.start, r.end, r.key) for r in pc.rows] == [(None, None, "a.wav")]


@pytest.mark.parametrize(
    "start, end, needle",
    [
        ("1", "", "has start '1' but no end"),
        ("", "1", "has end '1' but no start"),
        ("x", "1", "start 'x' is not a number of seconds"),
        ("inf", "1", "start 'inf' is not a finite number"),
        ("0", "NaN", "end 'NaN' is not a finite number"),
        ("-0.5", "1", "start -0.5 is negative"),
        ("2", "1", "end 1 is not after start 2"),
    ],
)
def test_parse_segment_refuses(start, end, needle):
    with pytest.raises(SegmentError, match=needle):
        parse_segment(start, end)


def test_segment_key_and_sample_range():
    assert parse_segment(" -0 ", "2.50") == (0.0, 2.5) and segment_key("d/a.wav", (0.0, 2.5)) == "d/a.wav@0-2.5"
    assert segment_key("a.wav", None) == "a.wav"
    assert sample_range((0.5, 1.25), 16000) == (8000, 20000)
    assert sample_range((1 / 3, 2 / 3), 44100) == (14700, 29400)


def test_segment_problem():
    assert segment_problem((0.0, 1.0), 16000, 16000, 16000, 1024) is None
    # an end up to 10 ms (160 samples at 16 kHz) past the file's end is its end; one sample more is not
    assert segment_problem((0.0, 1.0), 16000, 15840, 16000, 1024) is None
    assert sample_range((0.0, 1.0), 16000, 15840) == (0, 15840)
    assert "which is 0.989938 s long" in segment_problem((0.0, 1.0), 16000, 15839, 16000, 1024)
    # 1000 samples at 8 kHz are 2000 at 16 kHz: enough for one frame of 1024
    assert segment_problem((0.0, 0.125), 8000, 8000, 16000, 1024) is None
    assert "shorter than one frame" in segment_problem((0.0, 0.06), 16000, 16000, 16000, 1024)


@pytest.mark.parametrize(
    "name, rate, channels, subtype",
    [
        ("a.wav", 16000, 1, "PCM_16"),
        ("b.wav", 44100, 2, "PCM_16"),
        ("c.wav", 22050, 1, "PCM_24"),
        ("d.flac", 8000, 2, "PCM_16"),
    ],
)
def test_segment_reads_the_slice_of_the_samples(tmp_path, name, rate, channels, subtype):
    rng = np.random.default_rng(0)
    data = (0.3 * rng.standard_normal((3 * rate, channels))).astype(np.float32)
    path = tmp_path / name
    sf.write(path, data, rate, subtype=subtype)
    full, _ = sf.read(path, dtype="float32", always_2d=True)
    segment = (0.7, 2.2)
    first, stop = sample_range(segment, rate)
    cut = torch.from_numpy(full[first:stop].mean(axis=1, dtype=np.float32) if channels > 1 else full[first:stop, 0])
    expected = cut if rate == 16000 else AF.resample(cut, rate, 16000)
    wav, converted = load_mono(path, 16000, segment)
    assert converted == (rate != 16000 or channels != 1)
    assert torch.equal(wav, expected)
    with pytest.raises(AudioReadError, match="the segment ends at 3.5 s, after the end of the audio \\(3 s\\)"):
        load_mono(path, 16000, (1.0, 3.5))
