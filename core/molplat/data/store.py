"""The preprocessed store: featurised samples written once in shards, read in place.

Layout of a store folder (one per dataset, representation and targets; see ``store_key``)::

    store.json               format, key, number of samples, shard bounds, elements, fields
    labelled.npy             bool [n]: whether sample i has every target
    shard-00000/records.bin  sample after sample, each one blob: its fields' values back to back
    shard-00000/index.bin    int64 [n, width]: where each blob starts, then per field the
                             stored type code and the array's shape
    shard-00000/meta.json    the shard's count and the sizes and SHA-256 digests of both files

Any representation whose ``featurize`` returns numpy arrays can be stored, without the
representation knowing: fields are flattened generically, plus the labels and the id.
Integers are kept in the smallest integer type that holds a sample's values (edge
indices of molecules fit int8) and given back in their original type.

Reading takes two positioned reads per sample (``os.pread``: its index row, then its
blob), so no file is loaded or mapped whole: the page cache holds what was read, and the
process's resident set stays that of one batch. (Memory maps were measured first: each
random read faulted in megabytes of large folios around it, counted in the resident set,
3.8 GB for one epoch of a 3.9M-sample store; see benchmarks/RESULTS.md.) Writing
streams: a sample is written as it comes, a shard is finished (``meta.json`` written
last) before the next begins, ``store.json`` after the last; a store whose files do not
match their sizes and digests is rebuilt. It needs nothing beyond numpy.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from molplat.files import atomic_write_text

STORE_FORMAT = 2
STORE_FILE = "store.json"
LABELLED_FILE = "labelled.npy"
ID_FIELD = "__id"
#: sample fields that are labels, not features
LABEL_FIELDS = ("__y", "__atom_y", "__forces")
DEFAULT_SHARD_SIZE = 50_000
#: the types values are stored in; the index gives each field of each sample its code
STORED_TYPES = tuple(np.dtype(t) for t in ("i1", "i2", "i4", "i8", "?", "<f4", "<f8", "u1"))


def store_key(dataset: dict[str, Any], representation: dict[str, Any], heads: dict[str, Any],
              backend: str = "molplat") -> str:
    """A digest of what the store holds: the dataset and representation with their settings, and the labels.

    ``backend`` (the ``[data] store_format``) enters the digest only when it is not the core's
    own, so stores built before backends existed keep their key.
    """
    content = {"format": STORE_FORMAT, "dataset": dataset, "representation": representation, "heads": heads}
    if backend != "molplat":
        content["backend"] = backend
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shard_bounds(count: int, rank: int, world: int) -> tuple[int, int]:
    """The contiguous block ``[start, stop)`` of ``count`` samples that rank ``rank`` of ``world`` reads.

    Blocks differ in size by at most one and together cover every sample once, in order.
    """
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} of {world}: a rank must lie in 0..world-1 and world be at least 1")
    base, extra = divmod(count, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class SampleRange:
    """Samples ``start..stop-1`` of a store, read on access: the default shard of a rank."""

    def __init__(self, store: Any, start: int, stop: int) -> None:
        self.store, self.start, self.stop = store, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: int) -> Any:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"shard index {index} out of range for {len(self)} samples")
        return self.store[self.start + index]


class SampleStoreBackend:
    """The core's store as a store backend (``[data] store_format = "molplat"``, the default).

    Every backend has these two methods (docs/contracts.md, "Store backends"); what they
    return behaves like ``SampleStore``: ``len``, ``[i]`` (a ``Sample``), ``shard(rank, world)``,
    ``labelled``, ``elements``, ``without_forces`` and ``folder``.
    """

    name = "molplat"

    def build(self, folder: str | os.PathLike, samples: Iterable[Any], key: str,
              progress: Callable[[int], None] | None = None, workers: int = 0) -> "SampleStore":
        return SampleStore.build(folder, samples, key, progress=progress)

    def open(self, folder: str | os.PathLike, key: str) -> "SampleStore | None":
        return SampleStore.open(folder, key)


def _stored_type(array: np.ndarray) -> np.dtype:
    """The smallest stored type for this array's values (integers shrink; the rest keep their type)."""
    if array.dtype.kind in "iu" and array.dtype.itemsize > 1:
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        for dtype in STORED_TYPES[:4]:
            info = np.iinfo(dtype)
            if info.min <= low and high <= info.max:
                return dtype
    if array.dtype not in STORED_TYPES:
        raise ValueError(f"the store cannot hold arrays of type {array.dtype}; featurize must return numbers")
    return array.dtype


def _fields(sample: Any) -> dict[str, np.ndarray]:
    """A sample's arrays by field; absent per-atom labels are stored as empty arrays (no atom has none)."""
    fields = {k: np.asarray(v) for k, v in sample.features.items()}
    fields["__y"] = np.asarray(sample.y, dtype=np.float64)
    fields["__atom_y"] = np.zeros((0, 0)) if sample.atom_y is None else np.asarray(sample.atom_y, dtype=np.float64)
    fields["__forces"] = np.zeros((0, 3)) if sample.forces is None else np.asarray(sample.forces, dtype=np.float64)
    fields[ID_FIELD] = np.frombuffer(str(sample.id).encode(), dtype=np.uint8)
    return fields


class _ShardWriter:
    """Appends samples to one shard's two files, hashing them as they are written."""

    def __init__(self, folder: Path, layout: dict[str, dict[str, Any]]) -> None:
        folder.mkdir(parents=True)
        self.folder, self.layout, self.count, self.position = folder, layout, 0, 0
        self.files: dict[str, tuple[IO[bytes], Any]] = {
            name: (open(folder / name, "wb"), hashlib.sha256()) for name in ("records.bin", "index.bin")}

    def _write(self, name: str, data: bytes) -> None:
        handle, digest = self.files[name]
        handle.write(data)
        digest.update(data)

    def add(self, fields: dict[str, np.ndarray]) -> None:
        if list(fields) != list(self.layout):
            raise ValueError(f"a sample has fields {list(fields)}, the first had {list(self.layout)}; featurize "
                             f"must return the same fields for every structure")
        row, blob = [self.position], []
        for name, array in fields.items():
            if array.ndim != self.layout[name]["ndim"]:
                raise ValueError(f"field {name!r} has {array.ndim} dimensions here and {self.layout[name]['ndim']} "
                                 f"in the first sample")
            stored = _stored_type(array)
            data = np.ascontiguousarray(array, dtype=stored).tobytes()
            row += [STORED_TYPES.index(stored), *array.shape]
            blob.append(data)
        data = b"".join(blob)
        self._write("records.bin", data)
        self._write("index.bin", np.asarray(row, dtype=np.int64).tobytes())
        self.position += len(data)
        self.count += 1

    def close(self) -> dict[str, Any]:
        files = {}
        for name, (handle, digest) in self.files.items():
            handle.flush()
            os.fsync(handle.fileno())
            files[name] = {"bytes": handle.tell(), "sha256": digest.hexdigest()}
            handle.close()
        meta = {"count": self.count, "files": files}
        atomic_write_text(self.folder / "meta.json", json.dumps(meta))
        return meta


class SampleStore:
    """A store folder opened for reading; ``store[i]`` is a ``molplat.data.Sample``.

    Safe to use from DataLoader worker processes: each process opens the files itself on
    first use.
    """

    def __init__(self, folder: Path, info: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.info = info
        self.bounds = np.asarray(info["bounds"], dtype=np.int64)  # [n_shards + 1]
        self.layout: dict[str, dict[str, Any]] = info["fields"]
        self.width = 1 + sum(1 + entry["ndim"] for entry in self.layout.values())
        self._fields = [(name, entry["ndim"], np.dtype(entry["dtype"])) for name, entry in self.layout.items()]
        self._handles: dict[int, tuple[int, int]] = {}
        self._pid = -1

    # -- building and opening ----------------------------------------------------------------
    @classmethod
    def build(cls, folder: str | os.PathLike, samples: Iterable[Any], key: str, shard_size: int = DEFAULT_SHARD_SIZE,
              progress: Callable[[int], None] | None = None) -> "SampleStore":
        """Write ``samples`` (any iterable of Sample), streaming: memory holds one sample at a time."""
        folder = Path(folder)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        bounds, elements, labelled, without_forces = [0], set(), bytearray(), []
        layout: dict[str, dict[str, Any]] = {}
        writer: _ShardWriter | None = None
        for sample in samples:
            fields = _fields(sample)
            if not layout:
                layout = {name: {"dtype": array.dtype.str, "ndim": array.ndim} for name, array in fields.items()}
            if writer is None:
                writer = _ShardWriter(folder / f"shard-{len(bounds) - 1:05d}", layout)
            writer.add(fields)
            elements.update(np.unique(sample.features["numbers"]).tolist())
            labelled.append(_labelled(sample))
            if sample.forces is None:
                without_forces.append(str(sample.id))
            if progress is not None:
                progress(1)
            if writer.count >= shard_size:
                bounds.append(bounds[-1] + writer.close()["count"])
                writer = None
        if writer is not None:
            bounds.append(bounds[-1] + writer.close()["count"])
        np.save(folder / LABELLED_FILE, np.frombuffer(bytes(labelled), dtype=bool))
        info = {"format": STORE_FORMAT, "key": key, "count": bounds[-1], "bounds": bounds,
                "elements": sorted(int(z) for z in elements), "fields": layout,
                "without_forces": {"count": len(without_forces), "first": without_forces[:1]},
                "labelled_sha256": _file_digest(folder / LABELLED_FILE)}
        atomic_write_text(folder / STORE_FILE, json.dumps(info, indent=1))
        return cls(folder, info)

    @classmethod
    def open(cls, folder: str | os.PathLike, key: str, verify: bool = True) -> "SampleStore | None":
        """The store in ``folder`` built for ``key``, or None when it is missing, unfinished, or damaged.

        ``verify`` checks every file's size and SHA-256 digest (a bit flip is found here;
        about a second per 1.5 GB); a damaged store gets a one-line notice and is rebuilt
        by the caller.
        """
        folder = Path(folder)
        path = folder / STORE_FILE
        if not path.is_file():
            return None
        try:
            info = json.loads(path.read_text())
            problem = None
            if info.get("format") != STORE_FORMAT or info.get("key") != key:
                problem = "it was built by another molplat version or for other data"
            else:
                problem = _verify(folder, info, verify)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problem = f"unreadable ({type(exc).__name__})"
        if problem:
            print(f"notice: store {folder} cannot be used ({problem}); rebuilding it", file=sys.stderr, flush=True)
            return None
        return cls(folder, info)

    # -- reading -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.info["count"])

    @property
    def elements(self) -> list[int]:
        return list(self.info["elements"])

    @property
    def without_forces(self) -> tuple[int, str | None]:
        """How many samples carry no forces, and the id of the first."""
        entry = self.info.get("without_forces", {"count": 0, "first": []})
        return int(entry["count"]), (entry["first"] or [None])[0]

    @property
    def labelled(self) -> np.ndarray:
        return np.load(self.folder / LABELLED_FILE)

    def shard_of(self, index: int) -> int:
        return int(np.searchsorted(self.bounds, index, side="right") - 1)

    def _files(self, number: int) -> tuple[int, int]:
        if self._pid != os.getpid():  # a fresh process (a DataLoader worker): open the files anew
            self._handles, self._pid = {}, os.getpid()
        if number not in self._handles:
            folder = self.folder / f"shard-{number:05d}"
            self._handles[number] = (os.open(folder / "index.bin", os.O_RDONLY),
                                     os.open(folder / "records.bin", os.O_RDONLY))
        return self._handles[number]

    def __getitem__(self, index: int) -> Any:
        from molplat.data.samples import Sample

        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"store index {index} out of range for {len(self)} samples")
        number = self.shard_of(index)
        index_fd, records_fd = self._files(number)
        row_bytes = 8 * self.width
        row = np.frombuffer(os.pread(index_fd, row_bytes, (index - int(self.bounds[number])) * row_bytes),
                            dtype=np.int64).tolist()
        start, column, pieces, total = row[0], 1, [], 0
        for name, ndim, dtype in self._fields:
            stored = STORED_TYPES[row[column]]
            shape = tuple(row[column + 1: column + 1 + ndim])
            count = math.prod(shape)
            pieces.append((name, stored, shape, count, dtype))
            total += count * stored.itemsize
            column += 1 + ndim
        blob = os.pread(records_fd, total, start)
        values, offset = {}, 0
        for name, stored, shape, count, dtype in pieces:
            values[name] = np.frombuffer(blob, stored, count, offset).astype(dtype).reshape(shape)
            offset += count * stored.itemsize
        sid = values.pop(ID_FIELD).tobytes().decode()
        y, atom_y, forces = values.pop("__y"), values.pop("__atom_y", None), values.pop("__forces", None)
        return Sample(sid, values, y, _present(forces), _present(atom_y))

    def shard(self, rank: int, world: int) -> SampleRange:
        """The contiguous block of samples rank ``rank`` of ``world`` reads (``shard_bounds``)."""
        return SampleRange(self, *shard_bounds(len(self), rank, world))

    def close(self) -> None:
        for handles in self._handles.values():
            for fd in handles:
                os.close(fd)
        self._handles = {}

    def __getstate__(self) -> dict[str, Any]:  # file descriptors are per process; workers reopen them
        state = dict(self.__dict__)
        state["_handles"], state["_pid"] = {}, -1
        return state


def _present(labels: np.ndarray | None) -> np.ndarray | None:
    """Per-atom labels, or None where they were stored as absent (an empty array)."""
    return labels if labels is not None and labels.size else None


def _labelled(sample: Any) -> bool:
    ok = bool(np.isfinite(sample.y).all())
    if sample.atom_y is not None:
        ok = ok and bool(np.isfinite(sample.atom_y).all())
    return ok


def _file_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _verify(folder: Path, info: dict[str, Any], digests: bool) -> str | None:
    """The first problem with a store's files, or None."""
    labelled = folder / LABELLED_FILE
    if not labelled.is_file() or (digests and _file_digest(labelled) != info["labelled_sha256"]):
        return f"{LABELLED_FILE} is missing or damaged"
    for number in range(len(info["bounds"]) - 1):
        shard = folder / f"shard-{number:05d}"
        try:
            meta = json.loads((shard / "meta.json").read_text())
        except (OSError, ValueError):
            return f"{shard.name} is unfinished"
        if meta["count"] != info["bounds"][number + 1] - info["bounds"][number]:
            return f"{shard.name} holds {meta['count']} samples, the store expects another number"
        for name, record in meta["files"].items():
            path = shard / name
            if not path.is_file() or path.stat().st_size != record["bytes"]:
                return f"{shard.name}/{name} is missing or truncated"
            if digests and _file_digest(path) != record["sha256"]:
                return f"{shard.name}/{name} does not match its checksum"
    return None
