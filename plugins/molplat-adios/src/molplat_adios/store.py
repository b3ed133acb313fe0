"""The preprocessed store as ADIOS2 BP5 files, in the layout of HydraGNN's ADIOS store.

Layout of a store folder (``[data] store``/<key>, one per dataset, representation and targets)::

    store.json          backend, format, key, number of graphs, fields (dtype, ndim), elements,
                        and per part its first graph, its count and every file's size and SHA-256
    part-00000.bp/      one BP5 file per block of ``part_size`` graphs, written by one process

Each part holds, per field F of a sample (``features/numbers``, ``features/positions``,
``features/edge_index``, ..., ``labels/y``, ``labels/atom_y``, ``labels/forces``, ``id``):

    F                   global array: the graphs' values back to back
    F/variable_count    int64 [graphs]: how many values graph g has
    F/variable_offset   int64 [graphs]: where graph g's values start in F
    F/variable_shape    int64 [graphs, ndim]: graph g's array shape (absent for scalars)

plus ``labelled`` (uint8 [graphs]: every target finite). This is HydraGNN's schema (a global
array per variable with per-graph counts and offsets, so a reader selects one graph's
slice, or one rank's block, without reading the rest), with one difference: a graph's
values are flattened, and its shape kept, so a field whose varying axis is not the first
(``edge_index`` [2, E]) or that varies in two axes needs no choice of axis. Integers are
stored in the smallest type that holds a part's values, booleans as uint8; reading gives
every field back in the type of the first sample.

Parallel, without MPI: HydraGNN's ranks each put their block of graphs into one global
array of one file. Here the graphs arrive featurised (the core featurises in
``[data] num_workers`` processes) and blocks of ``part_size`` graphs are handed to up to
``num_workers`` writer processes, each writing its own BP5 file; ``store.json``, written
last, is the small index that joins them. A store is written in a temporary folder
beside its own and renamed into place when complete, so a killed build leaves nothing
that is opened; a store whose files do not match their sizes and digests is rebuilt.
"""
from __future__ import annotations

import bisect
import functools
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from molplat.data.store import shard_bounds
from molplat.files import atomic_write_text

BACKEND = "adios"
FORMAT = 1
INDEX = "store.json"
ID = "id"
LABELLED = "labelled"
#: the labels of a sample, as fields (absent per-atom labels are stored as empty arrays)
LABELS = ("labels/y", "labels/atom_y", "labels/forces")
_INTEGERS = tuple(np.dtype(t) for t in ("i1", "i2", "i4", "i8"))


def _fields(sample: Any) -> dict[str, np.ndarray]:
    """A sample's arrays by field name, features first, then its labels and its id."""
    fields = {f"features/{k}": np.asarray(v) for k, v in sample.features.items()}
    fields["labels/y"] = np.asarray(sample.y, dtype=np.float64)
    fields["labels/atom_y"] = (np.zeros((0, 0)) if sample.atom_y is None
                               else np.asarray(sample.atom_y, dtype=np.float64))
    fields["labels/forces"] = (np.zeros((0, 3)) if sample.forces is None
                               else np.asarray(sample.forces, dtype=np.float64))
    fields[ID] = np.frombuffer(str(sample.id).encode(), dtype=np.uint8)
    return fields


def _stored(values: np.ndarray) -> np.ndarray:
    """The part's values in the type they are stored in: the smallest integer type, uint8 for booleans."""
    if values.dtype == np.bool_:
        return values.astype(np.uint8)
    if values.dtype.kind in "iu" and values.dtype != np.uint8:
        low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
        for dtype in _INTEGERS:
            if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
                return values.astype(dtype)
        raise ValueError(f"values from {low} to {high} do not fit int64")
    if values.dtype.kind not in "fiu":
        raise ValueError(f"the ADIOS store cannot hold arrays of type {values.dtype}; featurize must return numbers")
    return np.ascontiguousarray(values)


class _Block:
    """The graphs of one part, gathered field by field until the part is written."""

    def __init__(self, number: int, start: int) -> None:
        self.number, self.start = number, start
        self.values: dict[str, list[np.ndarray]] = {}
        self.shapes: dict[str, list[tuple[int, ...]]] = {}
        self.labelled: list[bool] = []

    def __len__(self) -> int:
        return len(self.labelled)

    def add(self, fields: dict[str, np.ndarray], labelled: bool) -> None:
        for name, array in fields.items():
            self.values.setdefault(name, []).append(array.reshape(-1))
            self.shapes.setdefault(name, []).append(array.shape)
        self.labelled.append(labelled)

    def arrays(self, layout: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """What a writer process needs: per field its values back to back and the graphs' shapes."""
        fields = {}
        for name, entry in layout.items():
            values = np.concatenate(self.values[name]).astype(entry["dtype"], copy=False)
            shapes = np.asarray(self.shapes[name], dtype=np.int64).reshape(len(self), entry["ndim"])
            fields[name] = (_stored(values), shapes)
        return {"number": self.number, "start": self.start, "fields": fields,
                "labelled": np.asarray(self.labelled, dtype=np.uint8)}


def part_name(number: int) -> str:
    return f"part-{number:05d}.bp"


def write_part(folder: str, block: dict[str, Any]) -> dict[str, Any]:
    """Write one block of graphs as one BP5 file in ``folder``; its entry of the index (files and digests).

    Runs in a writer process: everything it needs comes in ``block``.
    """
    from adios2 import Adios

    path = Path(folder) / part_name(block["number"])
    count = len(block["labelled"])
    adios = Adios()
    io = adios.declare_io(f"molplat-part-{block['number']}")
    io.set_engine("BP5")
    io.set_parameter("Profile", "Off")  # no profiling.json beside the data
    engine = io.open(str(path), _write_mode())
    engine.begin_step()
    keep = []  # puts are deferred: the arrays must live until end_step

    def put(name: str, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        shape = list(array.shape)
        variable = io.define_variable(name, array, shape, [0] * len(shape), shape, True)
        engine.put(variable, array)
        keep.append(array)

    for name, (values, shapes) in block["fields"].items():
        counts = np.prod(shapes, axis=1, dtype=np.int64) if shapes.shape[1] else np.ones(count, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        if values.size:  # an array of no values (no graph has per-atom labels) is left out
            put(name, values)
        put(f"{name}/variable_count", counts)
        put(f"{name}/variable_offset", offsets)
        if shapes.shape[1]:
            put(f"{name}/variable_shape", shapes)
    put(LABELLED, block["labelled"])
    io.define_attribute("graphs", np.array([count], dtype=np.int64))
    engine.end_step()
    engine.close()
    files = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        files[str(file.relative_to(path))] = {"bytes": file.stat().st_size, "sha256": _digest(file)}
    return {"name": path.name, "start": block["start"], "count": count, "files": files}


def _write_mode() -> Any:
    from adios2 import bindings

    return bindings.Mode.Write


def _digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class _Writers:
    """Up to ``workers`` writer processes writing parts as blocks come (none: written here, in order)."""

    def __init__(self, folder: Path, workers: int) -> None:
        self.folder, self.workers = folder, workers
        self.pool = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
                     if workers > 0 else None)
        self.pending: list[Future] = []
        self.done: list[dict[str, Any]] = []

    def submit(self, block: dict[str, Any]) -> None:
        if self.pool is None:
            self.done.append(write_part(str(self.folder), block))
            return
        while len(self.pending) >= self.workers:  # memory holds at most `workers` blocks in flight
            self.done.append(self.pending.pop(0).result())
        self.pending.append(self.pool.submit(write_part, str(self.folder), block))

    def finish(self) -> list[dict[str, Any]]:
        while self.pending:
            self.done.append(self.pending.pop(0).result())
        self.close()
        return self.done

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class AdiosBackend:
    """``[data] store_format = "adios"``: builds and opens ADIOS2 stores (the core's backend contract)."""

    name = BACKEND

    def __init__(self, part_size: int = 10_000, verify: bool = True, cache_mb: int = 1024) -> None:
        self.part_size, self.verify, self.cache_mb = int(part_size), bool(verify), int(cache_mb)

    def build(self, folder: str | os.PathLike, samples: Iterable[Any], key: str,
              progress: Callable[[int], None] | None = None, workers: int = 0) -> "AdiosStore":
        """Write ``samples`` in parts of ``part_size`` graphs, by ``workers`` writer processes (0: this one)."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        for stale in folder.parent.glob(f"{folder.name}.partial-*"):  # a killed build's leftovers
            shutil.rmtree(stale, ignore_errors=True)
        partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
        partial.mkdir()
        writers = _Writers(partial, int(workers))
        try:
            info = self._write(partial, samples, key, progress, writers)
            atomic_write_text(partial / INDEX, json.dumps(info, indent=1))
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(partial, folder)
        except BaseException:
            writers.close()
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return AdiosStore(folder, info, self.cache_mb)

    def _write(self, partial: Path, samples: Iterable[Any], key: str, progress: Callable[[int], None] | None,
               writers: _Writers) -> dict[str, Any]:
        layout: dict[str, dict[str, Any]] = {}
        elements: set[int] = set()
        without_forces: list[str] = []
        count = 0
        block = _Block(0, 0)
        for sample in samples:
            fields = _fields(sample)
            if not layout:
                layout = {name: {"dtype": array.dtype.str, "ndim": array.ndim} for name, array in fields.items()}
            _check_layout(fields, layout)
            block.add(fields, _labelled(sample))
            elements.update(np.unique(sample.features["numbers"]).tolist())
            if sample.forces is None:
                without_forces.append(str(sample.id))
            count += 1
            if progress is not None:
                progress(1)
            if len(block) >= self.part_size:
                writers.submit(block.arrays(layout))
                block = _Block(block.number + 1, count)
        if len(block):
            writers.submit(block.arrays(layout))
        parts = writers.finish()
        return {"backend": BACKEND, "format": FORMAT, "key": key, "count": count, "parts": parts, "fields": layout,
                "elements": sorted(int(z) for z in elements),
                "without_forces": {"count": len(without_forces), "first": without_forces[:1]}}

    def open(self, folder: str | os.PathLike, key: str) -> "AdiosStore | None":
        """The store in ``folder`` built for ``key``, or None (with a one-line notice when something was there)."""
        folder = Path(folder)
        if not folder.exists():
            return None
        try:
            info = json.loads((folder / INDEX).read_text())
            if info.get("backend") != BACKEND or info.get("format") != FORMAT or info.get("key") != key:
                problem = "it was built by another molplat-adios version, another backend or for other data"
            else:
                problem = _verify(folder, info, self.verify)
        except FileNotFoundError:
            problem = f"it has no {INDEX}: its build did not finish"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problem = f"{INDEX} is unreadable ({type(exc).__name__})"
        if problem:
            print(f"notice: ADIOS store {folder} cannot be used ({problem}); rebuilding it", file=sys.stderr,
                  flush=True)
            return None
        return AdiosStore(folder, info, self.cache_mb)


def _check_layout(fields: dict[str, np.ndarray], layout: dict[str, dict[str, Any]]) -> None:
    if list(fields) != list(layout):
        raise ValueError(f"a sample has fields {list(fields)}, the first had {list(layout)}; featurize must return "
                         f"the same fields for every structure")
    for name, array in fields.items():
        if array.ndim != layout[name]["ndim"]:
            raise ValueError(f"field {name!r} has {array.ndim} dimensions here and {layout[name]['ndim']} in the "
                             f"first sample")


def _labelled(sample: Any) -> bool:
    ok = bool(np.isfinite(sample.y).all())
    if sample.atom_y is not None:
        ok = ok and bool(np.isfinite(sample.atom_y).all())
    return ok


def _verify(folder: Path, info: dict[str, Any], digests: bool) -> str | None:
    """The first problem with a store's parts, or None."""
    start = 0
    for part in info["parts"]:
        if part["start"] != start:
            return f"{part['name']} starts at graph {part['start']}, the parts before it end at {start}"
        start += part["count"]
        for name, record in part["files"].items():
            path = folder / part["name"] / name
            if not path.is_file() or path.stat().st_size != record["bytes"]:
                return f"{part['name']}/{name} is missing or truncated"
            if digests and _digest(path) != record["sha256"]:
                return f"{part['name']}/{name} does not match its checksum"
    if start != info["count"]:
        return f"its parts hold {start} graphs, the index says {info['count']}"
    return None


class _Part:
    """One part opened in this process: its reader and the graphs' counts, offsets and shapes per field.

    ``whole``: every field's global array is read at once (one selection per field) and the
    graphs are sliced from memory; otherwise each graph is one selection per field.
    """

    def __init__(self, path: Path, layout: dict[str, dict[str, Any]], count: int, whole: bool = False) -> None:
        from adios2 import FileReader

        self.reader = FileReader(str(path))
        self.count = count
        self.present = set(self.reader.available_variables())
        self.index: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for name, entry in layout.items():
            counts = self.reader.read(f"{name}/variable_count")
            offsets = self.reader.read(f"{name}/variable_offset")
            shapes = (self.reader.read(f"{name}/variable_shape").reshape(count, entry["ndim"]) if entry["ndim"]
                      else np.zeros((count, 0), dtype=np.int64))
            self.index[name] = (counts, offsets, shapes)
        self.whole: dict[str, np.ndarray] | None = None
        if whole:  # a field without values (no graph has per-atom labels) is not in the file
            self.whole = {name: self.reader.read(name) if name in self.present else np.zeros(0, dtype=np.uint8)
                          for name in layout}

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in (self.whole or {}).values())

    def values(self, name: str, start: int, count: int) -> np.ndarray:
        """``count`` values of field ``name`` from ``start``: a slice of memory, or one selection of the file."""
        if count == 0:
            return np.zeros(0, dtype=np.uint8)
        if self.whole is not None:
            return self.whole[name][int(start): int(start) + int(count)]
        return self.reader.read(name, [int(start)], [int(count)])

    def close(self) -> None:
        self.reader.close()


class AdiosStore:
    """An ADIOS store opened for reading; ``store[i]`` is a ``molplat.data.Sample``.

    Safe in DataLoader worker processes: each process opens the parts itself on first use.
    A part first touched while this process holds less than ``cache_mb`` of parts is read
    whole, one selection per field (HydraGNN's preload of a rank's block), and its graphs
    are sliced from memory; beyond that budget a part's graphs are read one selection per
    field each, so a set larger than memory is still read, only slower. 0: never whole.
    """

    def __init__(self, folder: Path, info: dict[str, Any], cache_mb: int = 1024) -> None:
        self.folder = Path(folder)
        self.info = info
        self.cache_bytes = int(cache_mb) * 2**20
        self.layout: dict[str, dict[str, Any]] = info["fields"]
        self.starts = np.asarray([p["start"] for p in info["parts"]] + [info["count"]], dtype=np.int64)
        self._first = [int(p["start"]) for p in info["parts"]]  # for bisect: faster than numpy on one index
        self._parts: dict[int, _Part] = {}
        self._pid = -1

    def __len__(self) -> int:
        return int(self.info["count"])

    @property
    def elements(self) -> list[int]:
        return list(self.info["elements"])

    @property
    def without_forces(self) -> tuple[int, str | None]:
        entry = self.info["without_forces"]
        return int(entry["count"]), (entry["first"] or [None])[0]

    @property
    def labelled(self) -> np.ndarray:
        if not len(self):
            return np.zeros(0, dtype=bool)
        from adios2 import FileReader

        flags = []
        for entry in self.info["parts"]:  # read apart from the parts' readers: no part is read whole for this
            with FileReader(str(self.folder / entry["name"])) as reader:
                flags.append(reader.read(LABELLED))
        return np.concatenate(flags).astype(bool)

    def _part(self, number: int, whole: bool = True) -> _Part:
        """Part ``number`` opened in this process; read whole when ``whole`` and it fits the budget."""
        if self._pid != os.getpid():  # a fresh process (a DataLoader worker): open the files anew
            self._parts, self._pid = {}, os.getpid()
        if number not in self._parts:
            entry = self.info["parts"][number]
            whole = whole and self.held_bytes + _part_bytes(entry) <= self.cache_bytes
            self._parts[number] = _Part(self.folder / entry["name"], self.layout, entry["count"], whole)
        return self._parts[number]

    @property
    def held_bytes(self) -> int:
        """Bytes of parts this process holds in memory."""
        return sum(part.nbytes for part in self._parts.values()) if self._pid == os.getpid() else 0

    def _locate(self, index: int) -> tuple[int, int]:
        number = bisect.bisect_right(self._first, index) - 1
        return number, index - self._first[number]

    def __getitem__(self, index: int) -> Any:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"store index {index} out of range for {len(self)} samples")
        number, local = self._locate(index)
        part = self._part(number)
        copy = part.whole is not None  # a slice of the held part is copied: a sample never aliases the cache
        values = {}
        for name, entry in self.layout.items():
            counts, offsets, shapes = part.index[name]
            flat = part.values(name, offsets[local], counts[local])
            values[name] = flat.astype(entry["dtype"], copy=copy).reshape(tuple(shapes[local]))
        return _sample(values)

    def shard(self, rank: int, world: int) -> "AdiosShard":
        """Rank ``rank`` of ``world``'s contiguous block of graphs, read with one selection per field and part."""
        return AdiosShard(self, *shard_bounds(len(self), rank, world))

    def close(self) -> None:
        for part in self._parts.values():
            part.close()
        self._parts = {}

    def __getstate__(self) -> dict[str, Any]:  # readers are per process; workers reopen them
        state = dict(self.__dict__)
        state["_parts"], state["_pid"] = {}, -1
        return state


class AdiosShard:
    """Graphs ``start..stop-1`` of a store, read into memory at once (a rank's block: HydraGNN's preload).

    For each part the block touches, each field is one selection of the global array, from
    the first graph's offset to the last graph's end; nothing outside the block is read.
    """

    def __init__(self, store: AdiosStore, start: int, stop: int) -> None:
        self.start, self.stop = start, stop
        self.layout = store.layout
        self.pieces: list[tuple[int, int, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]]] = []
        if stop <= start:
            return
        first, last = store._locate(start)[0], store._locate(stop - 1)[0]
        for number in range(first, last + 1):
            part = store._part(number, whole=False)  # the block alone is read, below
            low = max(start, int(store.starts[number])) - int(store.starts[number])
            high = min(stop, int(store.starts[number + 1])) - int(store.starts[number])
            fields = {}
            for name in self.layout:
                counts, offsets, shapes = part.index[name]
                begin = int(offsets[low])
                total = int(offsets[high - 1] + counts[high - 1]) - begin
                fields[name] = (part.values(name, begin, total), offsets[low:high] - begin, counts[low:high],
                                shapes[low:high])
            self.pieces.append((int(store.starts[number]) + low, high - low, fields))

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: int) -> Any:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"shard index {index} out of range for {len(self)} samples")
        position = self.start + index
        for first, count, fields in self.pieces:
            if first <= position < first + count:
                local = position - first
                values = {}
                for name, (flat, offsets, counts, shapes) in fields.items():
                    piece = flat[int(offsets[local]): int(offsets[local] + counts[local])]
                    values[name] = piece.astype(self.layout[name]["dtype"]).reshape(tuple(shapes[local]))
                return _sample(values)
        raise IndexError(position)  # unreachable: the pieces cover the block


def _part_bytes(entry: dict[str, Any]) -> int:
    """The size of a part's files: about what reading it whole holds in memory (BP5 stores arrays raw)."""
    return sum(int(record["bytes"]) for record in entry["files"].values())


@functools.cache
def _sample_class() -> type:
    from molplat.data import Sample  # imported once: molplat.data resolves it lazily, per call otherwise

    return Sample


def _sample(values: dict[str, np.ndarray]) -> Any:
    Sample = _sample_class()
    sid = values.pop(ID).tobytes().decode()
    y, atom_y, forces = (values.pop(name) for name in LABELS)
    features = {name.removeprefix("features/"): array for name, array in values.items()}
    return Sample(sid, features, y, forces if forces.size else None, atom_y if atom_y.size else None)
