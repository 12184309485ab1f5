"""Stored bytes are checked on read: flipped bytes, deleted or swapped blocks and damaged
indexes or metadata are a StoreCorruptError naming the partition and block, never data;
`emonet verify` reports per partition and `emonet info` notices missing blocks."""

import shutil

import numpy as np
import pytest

from emonet.cli.app import main
from emonet.errors import StoreCorruptError
from emonet.store import open_store
from emonet.store.verify import verify_store


def _block(store, k, part="train"):
    return open_store(store).partition("t", part)._reader.block_path(k)


def _flip(path, at=None):
    blob = bytearray(path.read_bytes())
    i = len(blob) // 2 if at is None else at
    blob[i] ^= 0x01
    path.write_bytes(bytes(blob))


def test_intact_store_reads_and_verifies(small_store, capsys):
    report = verify_store(small_store)
    assert report.ok and [p.partition for p in report.partitions] == ["train", "devel"]
    assert all(p.blocks > 1 for p in report.partitions)
    assert main(["verify", str(small_store)]) == 0
    assert "every block matches its checksum" in capsys.readouterr().out


def test_flipped_byte_in_a_block_is_an_error_naming_partition_and_block(small_store, capsys):
    clean = [x for _, _, x in open_store(small_store).partition("t", "train")]
    _flip(_block(small_store, 1))
    p = open_store(small_store).partition("t", "train")
    with pytest.raises(StoreCorruptError, match=r"partition t/train\): block 1 .*fails its checksum"):
        list(p)
    i = int(np.searchsorted(p.offsets, p.block_bounds[1], side="right")) - 1  # an item in block 1
    with pytest.raises(StoreCorruptError, match="block 1"):
        p[i]
    # the other partition still reads, and verify reports exactly the damaged one
    assert len(list(open_store(small_store).partition("t", "devel"))) == 6
    report = verify_store(small_store)
    assert [(c.partition, c.ok) for c in report.partitions] == [("train", False), ("devel", True)]
    assert main(["verify", str(small_store)]) == 3
    out, err = capsys.readouterr()
    assert "t/train: DAMAGED" in out and "t/devel: ok" in out and "block 1" in out
    assert len(err.strip().splitlines()) == 1 and "damaged" in err
    # without checks the damage goes unnoticed (or not): the checks are what catch it
    unchecked = [x for _, _, x in open_store(small_store, verify=False).partition("t", "train")]
    assert len(unchecked) == len(clean)


def test_deleted_block_is_found_by_info_and_verify(small_store, capsys):
    _block(small_store, 2).unlink()
    assert main(["info", str(small_store)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing" in err and "t/train" in err and "block 2" in err
    report = verify_store(small_store)
    assert not report.ok and "missing" in report.damaged[0].problems[0]


def test_swapped_blocks_are_detected(small_store):
    a, b = _block(small_store, 0), _block(small_store, 1)
    tmp = a.with_name("swap")
    shutil.move(a, tmp)
    shutil.move(b, a)
    shutil.move(tmp, b)
    with pytest.raises(StoreCorruptError, match="block 0"):
        list(open_store(small_store).partition("t", "train"))


def test_damaged_index_is_detected(small_store, capsys):
    part = small_store / "t" / "train"
    if (part / "index.npz").exists():  # webdataset
        _flip(part / "index.npz", at=200)
    else:  # zarr: delete the offsets chunk (zarr would read zeros)
        (part / "offsets" / "c" / "0").unlink()
    with pytest.raises(StoreCorruptError, match="t/train.*index"):
        open_store(small_store).partition("t", "train")
    assert main(["info", str(small_store)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("target", ["labels", "files", "meta"])
def test_corrupt_chunk_or_metadata_under_info_is_one_line(small_store, capsys, target):
    part = small_store / "t" / "train"
    if target == "meta":
        meta = part / ("zarr.json" if (part / "zarr.json").exists() else "partition.json")
        meta.write_text(meta.read_text()[:-20])
    elif (part / target).is_dir():
        chunk = part / target / "c" / "0"
        chunk.write_bytes(b"\x00garbage" + chunk.read_bytes()[8:])
    else:
        pytest.skip("webdataset keeps labels and files in index.npz (tested above)")
    assert main(["info", str(small_store)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("corrupt" in err or "unreadable" in err), err
    assert "Traceback" not in err
