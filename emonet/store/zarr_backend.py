"""zarr v3 backend: per partition one sharded, blosc-compressed float16 array
``features`` [total frames, n_mels] plus ``offsets`` (int64, n+1), ``files`` (str),
``labels`` (int16 class index, -1 unlabelled) and ``seconds`` (float32)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import zarr
import zarr.codecs as zc

from emonet.store.partition_plan import PartitionContent
from emonet.store.writer import StagedPartitionWriter

FRAMES_PER_CHUNK = 2048  # unit of reading
FRAMES_PER_SHARD = 32768  # unit of writing (one file on disk)


def compressor() -> zc.BloscCodec:
    # measured on log-mel float16: 2.6x smaller than float32, decodes at ~2 GB/s
    return zc.BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")


class ZarrPartitionWriter(StagedPartitionWriter):
    def __init__(self, staging: Path, content: PartitionContent, frames_per_shard: int = FRAMES_PER_SHARD,
                 frames_per_chunk: int = FRAMES_PER_CHUNK):
        self.shard = int(frames_per_shard)
        self.chunk = min(int(frames_per_chunk), self.shard)
        if self.shard % self.chunk:
            raise ValueError(f"frames per shard ({self.shard}) must be a multiple of frames per chunk ({self.chunk})")
        super().__init__(staging, content, f"zarr:{self.shard}:{self.chunk}")
        self._features = None

    def block_bounds(self) -> np.ndarray:
        total = self.content.total_frames
        return np.unique(np.concatenate([np.arange(0, total, self.shard), [total]])).astype(np.int64)

    def initialise(self) -> None:
        c = self.content
        g = zarr.open_group(str(self.dir), mode="w", zarr_format=3)
        g.create_array("features", shape=(c.total_frames, c.n_mels), dtype="float16",
                       chunks=(self.chunk, c.n_mels), shards=(self.shard, c.n_mels),
                       compressors=[compressor()], fill_value=0, dimension_names=("frame", "mel"))
        n = max(len(c), 1)
        g.create_array("offsets", data=c.offsets, chunks=(len(c.offsets),))
        g.create_array("labels", data=c.label_ids, chunks=(n,))
        g.create_array("seconds", data=c.seconds.astype(np.float32), chunks=(n,))
        files = g.create_array("files", shape=(len(c),), dtype=str, chunks=(n,))
        if len(c):
            files[:] = np.array(c.files, dtype=object)

    def _array(self):
        if self._features is None:
            self._features = zarr.open_array(str(self.dir / "features"), mode="r+")
        return self._features

    def discard_blocks_from(self, k: int) -> None:
        cdir = self.dir / "features" / "c"
        if cdir.is_dir():
            for sub in cdir.iterdir():
                if sub.name.isdigit() and int(sub.name) >= k:
                    shutil.rmtree(sub)

    def write_block(self, k: int, frames: np.ndarray) -> None:
        lo = int(self.bounds[k])
        self._array()[lo : lo + frames.shape[0]] = frames


class ZarrPartitionReader:
    def __init__(self, path: Path):
        g = zarr.open_group(str(path), mode="r", zarr_format=3)
        self.features = g["features"]
        self.offsets = np.asarray(g["offsets"][:], dtype=np.int64)
        self.labels = np.asarray(g["labels"][:], dtype=np.int64)
        self.seconds = np.asarray(g["seconds"][:], dtype=np.float64)
        self.files = [str(f) for f in g["files"][:]] if len(self.labels) else []
        total = int(self.offsets[-1])
        step = int(self.features.shards[0]) if self.features.shards else int(self.features.chunks[0])
        self.block_bounds = np.unique(np.concatenate([np.arange(0, total, step), [total]])).astype(np.int64)

    def read_frames(self, lo: int, hi: int) -> np.ndarray:
        return np.asarray(self.features[lo:hi])
