"""The preprocessed store: featurised samples written once in shards, read memory-mapped.

Layout of a store folder (one per dataset, representation and targets; see ``store_key``)::

    store.json                 format, key, number of samples, shard bounds, elements, fields
    shard-00000/meta.json      per field: dtype, ndim, file sizes and SHA-256 digests
    shard-00000/F.data         every sample's array of field F, flattened and concatenated
    shard-00000/F.offsets      int64 [n + 1]: where sample i's values start and end
    shard-00000/F.shapes       int64 [n, ndim]: the shape of sample i's array
    shard-00000/ids.json       the structure ids

Any representation whose ``featurize`` returns numpy arrays can be stored, without the
representation knowing: fields are flattened generically. Integer fields are kept in
the smallest integer type holding their values (edge indices fit int16) and given back
in their original type. A shard is finished (its ``meta.json`` written last,
atomically) before the next begins, ``store.json`` is written after the last, and a
store whose files do not match their recorded sizes and digests is rebuilt. Reading
maps the files (no copy into memory) and drops the pages it has read from this
process's resident set every few thousand samples, so a pass over a store larger than
memory keeps a small footprint. It needs nothing beyond numpy.
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from molplat.files import atomic_write_text

STORE_FORMAT = 1
STORE_FILE = "store.json"
LABEL_FIELDS = ("__y", "__atom_y", "__forces")
DEFAULT_SHARD_SIZE = 100_000
#: reads between two releases of mapped pages from the resident set
RELEASE_EVERY = 4096


def store_key(dataset: dict[str, Any], representation: dict[str, Any], heads: dict[str, Any]) -> str:
    """A digest of what the store holds: the dataset and representation with their settings, and the labels."""
    text = json.dumps({"format": STORE_FORMAT, "dataset": dataset, "representation": representation, "heads": heads},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _smallest_int(values: np.ndarray) -> np.dtype:
    if values.size == 0:
        return np.dtype(np.int8)
    low, high = int(values.min()), int(values.max())
    for dtype in (np.int8, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _file_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _write_bytes(path: Path, array: np.ndarray) -> tuple[int, str]:
    data = np.ascontiguousarray(array).tobytes()
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return len(data), hashlib.sha256(data).hexdigest()


def _record(sample: Any) -> dict[str, np.ndarray]:
    fields = {k: np.asarray(v) for k, v in sample.features.items()}
    fields["__y"] = np.asarray(sample.y, dtype=np.float64)
    if sample.atom_y is not None:
        fields["__atom_y"] = np.asarray(sample.atom_y, dtype=np.float64)
    if sample.forces is not None:
        fields["__forces"] = np.asarray(sample.forces, dtype=np.float64)
    return fields


def write_shard(folder: Path, samples: list[Any]) -> dict[str, Any]:
    """Write one shard of samples; its meta.json goes last, so a shard without it is unfinished."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [_record(s) for s in samples]
    names = list(records[0])
    meta: dict[str, Any] = {"count": len(samples), "fields": {}}
    for name in names:
        if any(name not in r for r in records):
            raise ValueError(f"field {name!r} is missing from some samples; featurize must return the same fields")
        arrays = [r[name] for r in records]
        ndim = arrays[0].ndim
        if any(a.ndim != ndim for a in arrays):
            raise ValueError(f"field {name!r} has arrays of different dimensions across samples")
        original = np.result_type(*{a.dtype for a in arrays})
        flat = np.concatenate([a.reshape(-1) for a in arrays]) if arrays else np.zeros(0, dtype=original)
        stored = _smallest_int(flat) if original.kind in "iu" and original.itemsize > 1 else flat.dtype
        if original.kind == "b":
            stored = np.dtype(np.bool_)
        counts = np.array([a.size for a in arrays], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        shapes = np.array([a.shape for a in arrays], dtype=np.int64).reshape(len(arrays), ndim)
        entry: dict[str, Any] = {"dtype": original.str, "stored": np.dtype(stored).str, "ndim": ndim, "files": {}}
        for suffix, array in (("data", flat.astype(stored, copy=False)), ("offsets", offsets), ("shapes", shapes)):
            size, digest = _write_bytes(folder / f"{name}.{suffix}", array)
            entry["files"][suffix] = {"bytes": size, "sha256": digest}
        meta["fields"][name] = entry
    atomic_write_text(folder / "ids.json", json.dumps([s.id for s in samples]))
    atomic_write_text(folder / "meta.json", json.dumps(meta))
    return meta


class SampleStore:
    """A store folder opened for reading; ``store[i]`` is a ``molplat.data.Sample``.

    Safe to use from DataLoader worker processes: each process maps the files itself
    on first use.
    """

    def __init__(self, folder: Path, info: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.info = info
        self.bounds = np.asarray(info["bounds"], dtype=np.int64)  # [n_shards + 1]
        self._shards: dict[int, dict[str, Any]] = {}
        self._pid = -1
        self._reads = 0
        self._ids: list[str] | None = None

    # -- building and opening ----------------------------------------------------------------
    @classmethod
    def build(cls, folder: str | os.PathLike, samples: Iterable[Any], key: str, total: int | None = None,
              shard_size: int = DEFAULT_SHARD_SIZE, progress: Callable[[int], None] | None = None) -> "SampleStore":
        """Write ``samples`` (any iterable of Sample, streamed: one shard in memory at a time)."""
        folder = Path(folder)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        bounds, elements, labelled, buffer, shard = [0], set(), [], [], 0
        fields: dict[str, Any] = {}

        def flush() -> None:
            nonlocal shard, buffer
            if buffer:
                meta = write_shard(folder / f"shard-{shard:05d}", buffer)
                fields.update({k: {"dtype": v["dtype"], "ndim": v["ndim"]} for k, v in meta["fields"].items()})
                bounds.append(bounds[-1] + len(buffer))
                shard, buffer = shard + 1, []

        for sample in samples:
            buffer.append(sample)
            elements.update(np.unique(sample.features["numbers"]).tolist())
            labelled.append(_labelled(sample))
            if progress is not None:
                progress(1)
            if len(buffer) >= shard_size:
                flush()
        flush()
        np.save(folder / "labelled.npy", np.array(labelled, dtype=bool))
        info = {"format": STORE_FORMAT, "key": key, "count": bounds[-1], "bounds": bounds,
                "elements": sorted(int(z) for z in elements), "fields": fields,
                "labelled_sha256": _file_digest(folder / "labelled.npy")}
        atomic_write_text(folder / STORE_FILE, json.dumps(info, indent=1))
        return cls(folder, info)

    @classmethod
    def open(cls, folder: str | os.PathLike, key: str, verify: bool = True) -> "SampleStore | None":
        """The store in ``folder`` built for ``key``, or None when it is missing, unfinished, or damaged.

        ``verify`` checks every file's size and SHA-256 digest (a bit flip is found
        here); a damaged store gets a one-line notice and is rebuilt by the caller.
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
    def labelled(self) -> np.ndarray:
        return np.load(self.folder / "labelled.npy")

    @property
    def ids(self) -> list[str]:
        if self._ids is None:
            self._ids = [i for s in range(len(self.bounds) - 1)
                         for i in json.loads((self.folder / f"shard-{s:05d}" / "ids.json").read_text())]
        return self._ids

    def shard_of(self, index: int) -> int:
        return int(np.searchsorted(self.bounds, index, side="right") - 1)

    def _shard(self, number: int) -> dict[str, Any]:
        if self._pid != os.getpid():  # a fresh process (a DataLoader worker): map the files anew
            self._shards, self._pid = {}, os.getpid()
        if number not in self._shards:
            folder = self.folder / f"shard-{number:05d}"
            meta = json.loads((folder / "meta.json").read_text())
            maps: dict[str, Any] = {"ids": json.loads((folder / "ids.json").read_text()), "fields": {}, "mmaps": []}
            for name, entry in meta["fields"].items():
                views = {}
                for suffix, dtype in (("data", entry["stored"]), ("offsets", "<i8"), ("shapes", "<i8")):
                    views[suffix] = self._map(folder / f"{name}.{suffix}", np.dtype(dtype), maps["mmaps"])
                views["shapes"] = views["shapes"].reshape(-1, entry["ndim"]) if entry["ndim"] else \
                    np.zeros((meta["count"], 0), dtype=np.int64)
                maps["fields"][name] = (views, np.dtype(entry["dtype"]))
            self._shards[number] = maps
        return self._shards[number]

    @staticmethod
    def _map(path: Path, dtype: np.dtype, keep: list[mmap.mmap]) -> np.ndarray:
        if path.stat().st_size == 0:
            return np.zeros(0, dtype=dtype)
        with open(path, "rb") as handle:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        keep.append(mapped)
        return np.frombuffer(mapped, dtype=dtype)

    def __getitem__(self, index: int) -> Any:
        from molplat.data.samples import Sample

        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"store index {index} out of range for {len(self)} samples")
        number = self.shard_of(index)
        shard = self._shard(number)
        local = index - int(self.bounds[number])
        values: dict[str, np.ndarray] = {}
        for name, (views, dtype) in shard["fields"].items():
            start, stop = views["offsets"][local], views["offsets"][local + 1]
            values[name] = np.array(views["data"][start:stop], dtype=dtype).reshape(tuple(views["shapes"][local]))
        self._count_reads(1)
        y = values.pop("__y")
        atom_y, forces = values.pop("__atom_y", None), values.pop("__forces", None)
        return Sample(shard["ids"][local], values, y, forces, atom_y)

    def get_many(self, indices: Any) -> list[Any]:
        """The samples at ``indices``, in that order, equal to ``[store[i] for i in indices]``.

        A DataLoader asks for a whole batch at once (``StoreSamples.__getitems__``): each
        field of each shard is gathered with one copy for the batch instead of one per
        sample, which removes most of the per-sample numpy calls. A sample's arrays are
        views of that batch copy.
        """
        from molplat.data.samples import Sample

        positions = np.asarray(indices, dtype=np.int64).reshape(-1)
        outside = (positions < 0) | (positions >= len(self))
        if outside.any():
            raise IndexError(f"store index {int(positions[outside][0])} out of range for {len(self)} samples")
        numbers = np.searchsorted(self.bounds, positions, side="right") - 1
        samples: list[Any] = [None] * len(positions)
        for number in np.unique(numbers).tolist():
            where = np.flatnonzero(numbers == number)
            local = positions[where] - self.bounds[number]
            shard = self._shard(number)
            columns = {name: _gather(views, dtype, local) for name, (views, dtype) in shard["fields"].items()}
            for k, (position, row) in enumerate(zip(where.tolist(), local.tolist())):
                values = {name: column[k] for name, column in columns.items()}
                y = values.pop("__y")
                atom_y, forces = values.pop("__atom_y", None), values.pop("__forces", None)
                samples[position] = Sample(shard["ids"][row], values, y, forces, atom_y)
        self._count_reads(len(positions))
        return samples

    def _count_reads(self, count: int) -> None:
        before, self._reads = self._reads, self._reads + count
        if before // RELEASE_EVERY != self._reads // RELEASE_EVERY:
            self.release()

    def release(self) -> None:
        """Drop the pages read so far from this process's resident set (they stay in the page cache)."""
        for shard in self._shards.values():
            for mapped in shard["mmaps"]:
                mapped.madvise(mmap.MADV_DONTNEED)

    def __getstate__(self) -> dict[str, Any]:  # maps are per process; workers reopen them
        state = dict(self.__dict__)
        state["_shards"], state["_pid"] = {}, -1
        return state


def _gather(views: dict[str, np.ndarray], dtype: np.dtype, local: np.ndarray) -> list[np.ndarray]:
    """One field of the samples at shard rows ``local``: one copy, then a view per sample."""
    starts = views["offsets"][local]
    lengths = views["offsets"][local + 1] - starts
    ends = np.cumsum(lengths)
    flat = views["data"][np.arange(int(ends[-1])) + np.repeat(starts - ends + lengths, lengths)]
    flat = flat.astype(dtype, copy=False)
    bounds = [0, *ends.tolist()]
    return [flat[a:b].reshape(shape) for a, b, shape in zip(bounds, bounds[1:], views["shapes"][local].tolist())]


def _labelled(sample: Any) -> bool:
    ok = bool(np.isfinite(sample.y).all())
    if sample.atom_y is not None:
        ok = ok and bool(np.isfinite(sample.atom_y).all())
    return ok


def _verify(folder: Path, info: dict[str, Any], digests: bool) -> str | None:
    """The first problem with a store's files, or None."""
    if not (folder / "labelled.npy").is_file() or (
            digests and _file_digest(folder / "labelled.npy") != info["labelled_sha256"]):
        return "labelled.npy is missing or damaged"
    for number in range(len(info["bounds"]) - 1):
        shard = folder / f"shard-{number:05d}"
        try:
            meta = json.loads((shard / "meta.json").read_text())
        except (OSError, ValueError):
            return f"{shard.name} is unfinished"
        if meta["count"] != info["bounds"][number + 1] - info["bounds"][number]:
            return f"{shard.name} holds {meta['count']} samples, the store expects another number"
        for name, entry in meta["fields"].items():
            for suffix, record in entry["files"].items():
                path = shard / f"{name}.{suffix}"
                if not path.is_file() or path.stat().st_size != record["bytes"]:
                    return f"{shard.name}/{path.name} is missing or truncated"
                if digests and _file_digest(path) != record["sha256"]:
                    return f"{shard.name}/{path.name} does not match its checksum"
    return None
