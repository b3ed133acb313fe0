"""Store backend checks: what a backend writes, it reads back identically, whole and in rank shards.

A store backend (``[data] store_format``) is trusted with every training sample; a value
changed on the way (an int64 index cut to int8 and not widened back, a float64 label
stored as float32, an id mangled) trains silently on other data. So the samples read back
must equal those written exactly: same ids, same fields, same dtypes, same values.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from molplat.data import Sample
from molplat.representations.adjacency_list import AdjacencyList
from molplat.specs import ComponentSpec
from molplat.structure import Structure

from molplat_sdk.checks.common import label
from molplat_sdk.errors import ConformanceError

#: the world sizes whose rank shards are checked to partition the store
WORLDS = (1, 2, 3, 7)
KEY = "0123456789abcdef"


def store_samples(structures: Sequence[Structure], seed: int = 0) -> list[Sample]:
    """Samples as the core writes them: adjacency-list features, two graph targets, per-atom labels and forces."""
    rng = np.random.default_rng(seed)
    representation = AdjacencyList(cutoff=3.0)
    samples = []
    for k, structure in enumerate(structures):
        n = len(structure)
        samples.append(Sample(f"{structure.id or 'structure'}-{k}-é", representation.featurize(structure),
                              rng.normal(size=2), rng.normal(size=(n, 3)), rng.normal(size=(n, 1))))
    return samples


def sample_difference(expected: Sample, got: Any) -> str | None:
    """The first way ``got`` differs from ``expected`` (id, fields, dtypes, values, labels), or None."""
    if not isinstance(got, Sample):
        return f"it returned a {type(got).__name__}, not a molplat.data.Sample"
    if got.id != expected.id:
        return f"id {got.id!r} instead of {expected.id!r}"
    if set(got.features) != set(expected.features):
        return f"features {sorted(got.features)} instead of {sorted(expected.features)}"
    pairs = [(f"feature {k!r}", expected.features[k], got.features[k]) for k in expected.features]
    pairs += [("y", expected.y, got.y), ("forces", expected.forces, got.forces), ("atom_y", expected.atom_y, got.atom_y)]
    for name, want, have in pairs:
        if want is None or have is None:
            if (want is None) != (have is None):
                return f"{name} is {'absent' if have is None else 'present'}, it was {'absent' if want is None else 'given'}"
            continue
        want, have = np.asarray(want), np.asarray(have)
        if have.dtype != want.dtype or have.shape != want.shape:
            return f"{name} has dtype {have.dtype} and shape {have.shape}, it was written as {want.dtype} {want.shape}"
        if not np.array_equal(have, want, equal_nan=want.dtype.kind == "f"):
            return f"{name} has other values than were written"
    return None


def check_round_trip(spec: ComponentSpec, backend: Any, samples: Sequence[Sample], folder: Path,
                     workers: int = 0) -> Any:
    """Build a store of ``samples`` in ``folder``, open it again, and compare every sample, whole and in shards."""
    where = label(spec)
    for method in ("build", "open"):
        if not callable(getattr(backend, method, None)):
            raise ConformanceError(where, f"the backend has no {method}() method",
                                   "return an object with build(folder, samples, key, progress, workers) and "
                                   "open(folder, key) from the spec's factory (docs/contracts.md, Store backends)")
    if backend.open(folder, KEY) is not None:
        raise ConformanceError(where, "open() of a folder without a store returned a store",
                               "return None when the folder holds no finished store, so the core builds it")
    seen: list[int] = []
    built = backend.build(folder, iter(samples), KEY, progress=seen.append, workers=workers)
    if sum(seen) != len(samples):
        raise ConformanceError(where, f"progress was told of {sum(seen)} samples, {len(samples)} were written",
                               "call progress(n) as samples are written, n at a time")
    store = backend.open(folder, KEY)
    if store is None:
        raise ConformanceError(where, "open() of the store just built returned None",
                               "finish every file (and the index, last) before build() returns")
    for name, reader in (("built", built), ("opened", store)):
        _compare(where, name, reader, samples)
    labelled = np.asarray(store.labelled)
    if labelled.dtype != bool or labelled.shape != (len(samples),):
        raise ConformanceError(where, f"labelled is {labelled.dtype} {labelled.shape}",
                               f"give a bool array with one flag per sample ({len(samples)})")
    elements = sorted({int(z) for s in samples for z in np.unique(s.features["numbers"])})
    if list(store.elements) != elements:
        raise ConformanceError(where, f"elements {list(store.elements)} instead of {elements}",
                               "record the sorted atomic numbers of every sample")
    for world in WORLDS:
        covered: list[str] = []
        for rank in range(world):
            shard = store.shard(rank, world)
            covered += [shard[i].id for i in range(len(shard))]
            if len(shard) and sample_difference(samples[len(covered) - 1], shard[len(shard) - 1]):
                raise ConformanceError(where, f"the last sample of rank {rank} of {world} is not the one written there",
                                       "give rank r the contiguous block molplat.data.store.shard_bounds names")
        if covered != [s.id for s in samples]:
            raise ConformanceError(where, f"the shards of {world} ranks are not the samples in order, each once",
                                   "give rank r the contiguous block molplat.data.store.shard_bounds names")
    return store


def _compare(where: str, name: str, store: Any, samples: Sequence[Sample]) -> None:
    if len(store) != len(samples):
        raise ConformanceError(where, f"the {name} store holds {len(store)} samples, {len(samples)} were written",
                               "write every sample the iterator gives")
    for i in [*range(len(samples)), *reversed(range(len(samples)))]:  # in order and backwards: random access
        problem = sample_difference(samples[i], store[i])
        if problem:
            raise ConformanceError(where, f"sample {i} of the {name} store: {problem}",
                                   "read back exactly what was written: same ids, fields, dtypes and values")
    try:
        store[len(samples)]
    except IndexError:
        pass
    else:
        raise ConformanceError(where, f"store[{len(samples)}] of {len(samples)} samples returned something",
                               "raise IndexError past the end")


def check_damage_is_noticed(spec: ComponentSpec, backend: Any, folder: Path) -> None:
    """Truncating the largest file of a built store makes ``open`` return None (rebuild) or raise one clear error."""
    from molplat.errors import MolplatError

    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    if not files:
        raise ConformanceError(label(spec), f"the store in {folder} has no files", "write the store inside folder")
    largest = files[-1]
    largest.write_bytes(largest.read_bytes()[: largest.stat().st_size // 2])
    try:
        store = backend.open(folder, KEY)
    except MolplatError:
        return
    if store is not None:
        raise ConformanceError(label(spec), f"open() accepted the store with {largest.relative_to(folder)} cut in half",
                               "record every file's size and digest at build time and check them in open(); return "
                               "None so the core rebuilds")
