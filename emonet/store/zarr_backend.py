"""zarr v3 backend: per partition one sharded, blosc-compressed float16 array
``features`` [total frames, n_mels] plus ``offsets`` (int64, n+1), ``files`` (str),
``labels`` (int16 class index, -1 unlabelled) and ``seconds`` (float32)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
import zarr.codecs as zc

from emonet.store.partition_plan import PartitionContent
from emonet.store.writer import BlockItem, BlockLayout

FRAMES_PER_CHUNK = 2048  # unit of reading
FRAMES_PER_SHARD = 16384  # unit of writing (one file on disk, one writer)


def shard_bounds(total_frames: int, frames_per_shard: int) -> np.ndarray:
    """Frame offsets of shard edges: 0, one per shard, and the end."""
    return np.unique(np.concatenate([np.arange(0, total_frames, frames_per_shard), [total_frames]])).astype(np.int64)


def compressor() -> zc.BloscCodec:
    # Measured on log-mel float16 (bench/README.md): 2.6x smaller than float32. Blosc's
    # automatic block size gave zstd too little context (level 3: 2.43x); 256 KiB blocks
    # make level 3 as small as level 5 at twice the speed (~190 MB/s).
    return zc.BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", blocksize=262144)


@dataclass(frozen=True)
class ZarrLayout(BlockLayout):
    frames_per_shard: int = FRAMES_PER_SHARD
    frames_per_chunk: int = FRAMES_PER_CHUNK
    name: str = "zarr"

    def __post_init__(self) -> None:
        if self.frames_per_shard % self.frames_per_chunk:
            raise ValueError(
                f"frames per shard ({self.frames_per_shard}) must be a multiple of frames per chunk ({self.frames_per_chunk})"
            )

    def key(self) -> str:
        return f"zarr:{self.frames_per_shard}:{self.frames_per_chunk}"

    def block_bounds(self, content: PartitionContent) -> np.ndarray:
        return shard_bounds(content.total_frames, self.frames_per_shard)

    def initialise(self, stage: Path, content: PartitionContent, bounds: np.ndarray) -> None:
        c = content
        g = zarr.open_group(str(stage), mode="w", zarr_format=3)
        g.create_array(
            "features",
            shape=(c.total_frames, c.n_mels),
            dtype="float16",
            chunks=(self.frames_per_chunk, c.n_mels),
            shards=(self.frames_per_shard, c.n_mels),
            compressors=[compressor()],
            fill_value=0,
            dimension_names=("frame", "mel"),
        )
        n = max(len(c), 1)
        g.create_array("offsets", data=c.offsets, chunks=(len(c.offsets),))
        g.create_array("labels", data=c.label_ids, chunks=(n,))
        g.create_array("seconds", data=c.seconds.astype(np.float32), chunks=(n,))
        files = g.create_array("files", shape=(len(c),), dtype=str, chunks=(n,))
        if len(c):
            files[:] = np.array(c.files, dtype=object)

    def discard_blocks_from(self, stage: Path, k: int) -> None:
        cdir = stage / "features" / "c"
        if cdir.is_dir():
            for sub in cdir.iterdir():
                if sub.name.isdigit() and int(sub.name) >= k:
                    shutil.rmtree(sub)

    def write_block(self, stage: Path, k: int, lo: int, frames: np.ndarray, items: list[BlockItem]) -> None:
        _open_features(str(stage))[lo : lo + frames.shape[0]] = frames


_open_cache: dict[str, object] = {}


def _open_features(stage: str):
    """The staged features array, opened once per process."""
    arr = _open_cache.get(stage)
    if arr is None:
        if len(_open_cache) > 8:
            _open_cache.clear()
        arr = _open_cache[stage] = zarr.open_array(f"{stage}/features", mode="r+")
    return arr


class ZarrPartitionReader:
    def __init__(self, path: Path):
        path = str(path)
        self.features = zarr.open_array(f"{path}/features", mode="r", zarr_format=3)
        self.offsets = np.asarray(zarr.open_array(f"{path}/offsets", mode="r")[:], dtype=np.int64)
        self.labels = np.asarray(zarr.open_array(f"{path}/labels", mode="r")[:], dtype=np.int64)
        self.seconds = np.asarray(zarr.open_array(f"{path}/seconds", mode="r")[:], dtype=np.float64)
        self.files = [str(f) for f in zarr.open_array(f"{path}/files", mode="r")[:]] if len(self.labels) else []
        step = int(self.features.shards[0]) if self.features.shards else int(self.features.chunks[0])
        self.block_bounds = shard_bounds(int(self.offsets[-1]), step)

    def read_frames(self, lo: int, hi: int) -> np.ndarray:
        return np.asarray(self.features[lo:hi])
