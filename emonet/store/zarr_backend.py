"""zarr v3 backend: per partition one sharded, blosc-compressed float16 array
``features`` [total frames, n_mels] plus ``offsets`` (int64, n+1), ``files`` (str),
``labels`` (int16 class index, -1 unlabelled) and ``seconds`` (float32). Block k is the
shard file ``features/c/<k>/0``."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
import zarr.codecs as zc

from emonet.errors import ConfigError
from emonet.store.codec import DEFAULT_CODEC, Codec
from emonet.store.content import PartitionContent
from emonet.store.staging import BlockItem, BlockLayout, file_crc32

FRAMES_PER_CHUNK = 2048  # unit of reading
FRAMES_PER_SHARD = 16384  # unit of writing (one file on disk, one writer)


def shard_bounds(total_frames: int, frames_per_shard: int) -> np.ndarray:
    """Frame offsets of shard edges: 0, one per shard, and the end."""
    return np.unique(np.concatenate([np.arange(0, total_frames, frames_per_shard), [total_frames]])).astype(np.int64)


def shard_path(partition: Path, k: int) -> Path:
    return Path(partition) / "features" / "c" / str(k) / "0"


def compressor(setting: Codec) -> zc.BloscCodec | None:
    """The chunks' compressor for ``setting`` (None: stored raw). Measured on log-mel
    float16 (bench/README.md): blosc's automatic block size gave zstd too little context
    (level 3: 2.43x); 256 KiB blocks make level 3 as small as level 5 at twice the speed."""
    if setting.raw:
        return None
    s = setting
    return zc.BloscCodec(cname=s.cname, clevel=s.clevel, shuffle=s.shuffle, blocksize=s.blocksize)


def make_layout(frames_per_shard: int | None, setting: Codec | None = None) -> ZarrLayout:
    fps = frames_per_shard or FRAMES_PER_SHARD
    return ZarrLayout(frames_per_shard=fps, frames_per_chunk=min(FRAMES_PER_CHUNK, fps), codec=setting or DEFAULT_CODEC)


@dataclass(frozen=True)
class ZarrLayout(BlockLayout):
    frames_per_shard: int = FRAMES_PER_SHARD
    frames_per_chunk: int = FRAMES_PER_CHUNK
    codec: Codec = DEFAULT_CODEC  # the chunks' compression
    name: str = "zarr"

    def __post_init__(self) -> None:
        if self.frames_per_shard <= 0 or self.frames_per_shard % self.frames_per_chunk:
            raise ConfigError(
                f"--frames-per-shard ({self.frames_per_shard}) must be a positive multiple of frames per chunk "
                f"({self.frames_per_chunk})"
            )

    def key(self) -> str:
        return f"zarr:{self.frames_per_shard}:{self.frames_per_chunk}{self.codec.key_suffix()}"

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
            compressors=[chunk_codec] if (chunk_codec := compressor(self.codec)) is not None else [],
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

    def write_block(self, stage: Path, k: int, lo: int, frames: np.ndarray, items: list[BlockItem]) -> int:
        _open_features(str(stage))[lo : lo + frames.shape[0]] = frames
        return file_crc32(shard_path(stage, k))


_open_cache: dict[tuple, object] = {}


def _open_features(stage: str):
    """The staged features array, opened once per process (and again when the array at
    that path was made anew: a later run in the same process, or a forked worker)."""
    st = os.stat(f"{stage}/features/zarr.json")
    key = (stage, st.st_ino, st.st_mtime_ns, st.st_size)
    arr = _open_cache.get(key)
    if arr is None:
        if len(_open_cache) > 8:
            _open_cache.clear()
        arr = _open_cache[key] = zarr.open_array(f"{stage}/features", mode="r+")
    return arr


class Reader:
    """The zarr partition reader (see :class:`emonet.store.backends.PartitionReader`)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        p = str(path)
        self.features = zarr.open_array(f"{p}/features", mode="r", zarr_format=3)
        self.offsets = np.asarray(zarr.open_array(f"{p}/offsets", mode="r")[:], dtype=np.int64)
        self.labels = np.asarray(zarr.open_array(f"{p}/labels", mode="r")[:], dtype=np.int64)
        self.seconds = np.asarray(zarr.open_array(f"{p}/seconds", mode="r")[:], dtype=np.float64)
        self.files = [str(f) for f in zarr.open_array(f"{p}/files", mode="r")[:]] if len(self.labels) else []
        self._plain_sharding = _is_plain_sharding(self.features)
        self._blosc = self._plain_sharding and _inner_codecs(self.features)[-1] == "blosc"
        step = int(self.features.shards[0]) if self.features.shards else int(self.features.chunks[0])
        self.block_bounds = shard_bounds(int(self.offsets[-1]), step) if len(self.offsets) else np.zeros(1, np.int64)

    def block_path(self, k: int) -> Path:
        return shard_path(self.path, k)

    def read_block(self, k: int, blob: bytes | None = None) -> np.ndarray:
        blob = self.block_path(k).read_bytes() if blob is None else blob
        return self.decode(k, blob, 0, int(self.block_bounds[k + 1] - self.block_bounds[k]))

    def decode(self, k: int, blob: bytes, a: int, z: int) -> np.ndarray:
        """Frames ``a:z`` (from the block's start) of shard k, decoded from ``blob``, the
        shard file's bytes: only the chunks they lie in (zarr is never asked to read the
        file again, so no other bytes than the checked ones become frames)."""
        frames = int(self.block_bounds[k + 1] - self.block_bounds[k])
        if self._plain_sharding:
            shards, chunks = self.features.shards[0], self.features.chunks[0]
            return decode_shard(blob, frames, shards, chunks, self.features.shape[1], a, z, self._blosc)
        return self._decode_with_zarr(k, blob)[a:z]

    def _decode_with_zarr(self, k: int, blob: bytes) -> np.ndarray:
        """Another sharded layout than this backend writes: zarr decodes the shard from an
        in-memory copy of the array's metadata and the checked bytes."""
        from zarr.core.buffer import default_buffer_prototype
        from zarr.storage import MemoryStore

        buf = default_buffer_prototype().buffer
        meta = json.dumps(self.features.metadata.to_dict()).encode()
        key = "/".join(["c", str(k), *["0"] * (len(self.features.shape) - 1)])
        mem = MemoryStore({"zarr.json": buf.from_bytes(meta), key: buf.from_bytes(blob)})
        lo, hi = int(self.block_bounds[k]), int(self.block_bounds[k + 1])
        return np.asarray(zarr.open_array(mem, mode="r")[lo:hi])


def _is_plain_sharding(features) -> bool:
    """Whether the array is laid out as this backend writes it (so :func:`decode_shard`
    applies): shards of whole rows, chunks of bytes (+ blosc, any of its compressors, or
    none), index at the end."""
    try:
        codecs = features.metadata.to_dict()["codecs"]
        conf = codecs[0]["configuration"]
        index = [c["name"] for c in conf["index_codecs"]]
    except (AttributeError, KeyError, IndexError, TypeError):
        return False
    return (
        len(codecs) == 1
        and codecs[0]["name"] == "sharding_indexed"
        and _inner_codecs(features) in (["bytes", "blosc"], ["bytes"])
        and conf["codecs"][0]["configuration"].get("endian") == "little"
        and index == ["bytes", "crc32c"]
        and conf.get("index_location", "end") == "end"
        and features.dtype == np.float16
        and features.shards is not None
        and features.shards[1] == features.shape[1]
    )


def _inner_codecs(features) -> list[str]:
    """Names of the codecs of a sharded array's chunks (empty if not sharded as expected)."""
    try:
        return [c["name"] for c in features.metadata.to_dict()["codecs"][0]["configuration"]["codecs"]]
    except (AttributeError, KeyError, IndexError, TypeError):
        return []


def decode_shard(
    blob: bytes,
    frames: int,
    shard_rows: int,
    rows: int,
    n_mels: int,
    a: int = 0,
    z: int | None = None,
    blosc: bool = True,
) -> np.ndarray:
    """float16 [z - a, n_mels]: frames ``a:z`` (default: all ``frames``) of one shard
    file's bytes, decoding only the chunks they lie in, without zarr's async machinery
    (~1.5x faster per block). The shard's index (chunk offsets and sizes) is at its end,
    followed by its CRC-32C; each chunk is a blosc frame (any compressor: its header names
    it) of a whole [rows, n_mels] chunk, or with ``blosc`` False the chunk's raw bytes."""
    z = frames if z is None else z
    if not 0 <= a <= z <= frames:
        raise ValueError(f"frames {a}-{z} are outside the shard's {frames}")
    per_shard = shard_rows // rows  # the index lists every chunk of a full shard
    j0, j1 = a // rows, -(-z // rows)
    index = np.frombuffer(blob, dtype="<u8", count=2 * per_shard, offset=len(blob) - 4 - 16 * per_shard)
    out = np.empty(((j1 - j0) * rows, n_mels), np.float16)  # every chunk written below (no zeroing pass)
    flat = out.reshape(-1).view(np.uint8)
    step = rows * n_mels * 2
    codec = _blosc() if blosc else None
    for j in range(j0, j1):
        off, size = int(index[2 * j]), int(index[2 * j + 1])
        dest = flat[(j - j0) * step : (j - j0 + 1) * step]
        if off == 2**64 - 1:  # a chunk zarr did not write (all fill value 0); the checksum covers the index
            dest[:] = 0
            continue
        if off + size > len(blob) - 4 - 16 * per_shard:
            raise ValueError(f"chunk {j} lies outside the shard file")
        if codec is None:
            if size != step:
                raise ValueError(f"chunk {j} holds {size} bytes, not {step}")
            dest[:] = np.frombuffer(blob, np.uint8, size, off)
        else:
            if size < 16 or int.from_bytes(blob[off + 4 : off + 8], "little") != step:  # blosc header: nbytes
                raise ValueError(f"chunk {j} does not decode to {step} bytes")
            codec.decode(memoryview(blob)[off : off + size], out=dest)  # straight into place
    return out[a - j0 * rows : z - j0 * rows]


def _blosc():
    from numcodecs import Blosc

    return Blosc()
