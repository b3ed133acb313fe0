"""Dataset checks: an offline dev set of valid structures with documented, finite targets."""
from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import numpy as np

from molplat.representations.neighbors import radius_neighbors
from molplat.specs import ComponentSpec
from molplat.structure import Structure, Target

from molplat_sdk.checks.common import label
from molplat_sdk.errors import ConformanceError

MAX_CHECKED = 300
#: structures compared between two builds of a dataset
REPRODUCED = 5
#: atoms closer than this (Å) are one atom twice, or positions in the wrong units
MIN_DISTANCE = 0.1


@contextlib.contextmanager
def no_network(where: str) -> Iterator[None]:
    """Any connection attempt raises, naming the dataset, so a dev set that downloads fails here."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConformanceError(where, f"it tried to reach the network ({args[1] if len(args) > 1 else args})",
                               "ship the dev set inside the package, or read files a PyPI package installs")

    saved = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo, socket.create_connection
    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.getaddrinfo = lambda *a, **k: refuse(None, a[0] if a else a)  # type: ignore[assignment]
    socket.create_connection = lambda *a, **k: refuse(None, a[0] if a else a)  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo, socket.create_connection = saved


def build_offline(spec: ComponentSpec, settings: dict[str, Any]) -> Any:
    where = label(spec)
    with no_network(where):
        try:
            dataset = spec.build(**settings)
        except ConformanceError:
            raise
        except Exception as exc:
            raise ConformanceError(where, f"building it with {settings} fails: {type(exc).__name__}: {exc}",
                                   "make the default settings give a dev set that loads without a download") from None
        if len(dataset) == 0:
            raise ConformanceError(where, "the dev set is empty", "ship at least a few structures in the dev set")
    return dataset


def sample_indices(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, MAX_CHECKED)).astype(int))


def read(spec: ComponentSpec, dataset: Any, index: int) -> Structure:
    """``dataset[index]``, or a ConformanceError naming the structure when reading it raises
    (molplat.structure.Structure refuses bad shapes, NaN positions and unknown elements)."""
    try:
        return dataset[int(index)]
    except ConformanceError:
        raise
    except Exception as exc:
        raise ConformanceError(label(spec), f"reading structure {index} fails: {type(exc).__name__}: {exc}",
                               "repair the structure where the dataset reads it (atomic numbers, not species "
                               "indices; positions [n, 3] in Å) or leave it out of the dataset") from None


def check_structures(spec: ComponentSpec, dataset: Any) -> None:
    """Every checked structure reads, is a valid Structure, and has no two atoms at one point."""
    where = label(spec)
    for index in sample_indices(len(dataset)):
        s = read(spec, dataset, index)
        at = f"structure {index} ({getattr(s, 'id', '?')!r})"
        if not isinstance(s, Structure):
            raise ConformanceError(where, f"{at} is a {type(s).__name__}", "return molplat.structure.Structure")
        if len(s) == 0:
            raise ConformanceError(where, f"{at} has no atoms", "leave empty structures out of the dataset")
        if not np.isfinite(s.positions).all():
            raise ConformanceError(where, f"{at} has non-finite positions", "drop or repair such structures")
        if s.numbers.min() < 1 or s.numbers.max() > 118:
            raise ConformanceError(where, f"{at} has atomic numbers outside 1..118: {sorted(set(s.numbers.tolist()))}",
                                   "store atomic numbers (H = 1), not species indices or charges")
        if s.periodic and (s.cell is None or abs(np.linalg.det(s.cell)) < 1e-6):
            raise ConformanceError(where, f"{at} is periodic along {s.pbc.tolist()} without a valid cell",
                                   "set the cell (Å, rows are lattice vectors) of periodic structures")
        if s.forces is not None and (s.forces.shape != s.positions.shape or not np.isfinite(s.forces).all()):
            raise ConformanceError(where, f"{at} has forces of shape {s.forces.shape} or non-finite forces",
                                   "give forces as [atoms, 3] in eV/Å, or None")
        close = radius_neighbors(s, MIN_DISTANCE) if len(s) > 1 or s.periodic else None
        if close is not None and len(close.centers):
            k = int(np.argmin(close.distances))
            i, j, d = int(close.centers[k]), int(close.neighbors[k]), float(close.distances[k])
            image = "" if not close.cell_offsets[k].any() else f" (periodic image {close.cell_offsets[k].tolist()})"
            raise ConformanceError(where, f"{at}: atoms {i} and {j}{image} are {d:.3g} Å apart, closer than "
                                   f"{MIN_DISTANCE} Å ({len(close.centers) // 2 or 1} such pairs)",
                                   "give positions in Å (not nm or fractional coordinates) and drop duplicated atoms")


def check_unique_ids(spec: ComponentSpec, dataset: Any) -> None:
    """Structure ids are unique: predictions.csv, explanations and the store key on them."""
    seen: dict[str, int] = {}
    for index in sample_indices(len(dataset)):
        sid = read(spec, dataset, index).id
        if sid in seen:
            raise ConformanceError(label(spec), f"structures {seen[sid]} and {index} share the id {sid!r}",
                                   "give every structure its own id (its name in the source, or source and index)")
        seen[sid] = int(index)


def _same(a: Structure, b: Structure) -> str | None:
    """What differs between two readings of a structure, or None."""
    if a.id != b.id:
        return f"ids {a.id!r} and {b.id!r}"
    if not np.array_equal(a.numbers, b.numbers):
        return "atomic numbers"
    if a.positions.shape != b.positions.shape or not np.array_equal(a.positions, b.positions):
        return "positions"
    if set(a.targets) != set(b.targets) or any(
            not np.array_equal(np.float64(a.targets[k]), np.float64(b.targets[k]), equal_nan=True) for k in a.targets):
        return "targets"
    return None


def check_reproducible(spec: ComponentSpec, dataset: Any, settings: dict[str, Any]) -> None:
    """Built twice with the same settings, the dataset gives the same first structures: a split,
    a store and a resumed run all assume that index i is always the same structure."""
    again = build_offline(spec, settings)
    if len(again) != len(dataset):
        raise ConformanceError(label(spec), f"built twice with {settings}, it holds {len(dataset)} and then "
                               f"{len(again)} structures", "derive the dev set only from the settings")
    for index in range(min(REPRODUCED, len(dataset))):
        difference = _same(read(spec, dataset, index), read(spec, again, index))
        if difference:
            raise ConformanceError(label(spec), f"built twice with {settings}, structure {index} differs in its "
                                   f"{difference}", "seed every random choice (a subset, a shuffle, noise) from a "
                                   "setting, e.g. numpy.random.default_rng(seed), never from the global state")


def check_targets(spec: ComponentSpec, dataset: Any) -> None:
    where = label(spec)
    targets = getattr(dataset, "targets", None)
    if not targets:
        raise ConformanceError(where, "declares no targets", "set targets = {'name': Target('name', 'eV', '...')}")
    for name, target in targets.items():
        if not isinstance(target, Target) or not target.units.strip():
            raise ConformanceError(where, f"target {name!r} has no units",
                                   "declare Target(name, units, description); use units='1' if dimensionless")
    default = getattr(dataset, "default_target", "")
    if default not in targets:
        raise ConformanceError(where, f"default_target {default!r} is not one of its targets {sorted(targets)}",
                               "set default_target to a declared target")
    graph = {n for n, t in targets.items() if t.level == "graph"}
    atom = {n for n, t in targets.items() if t.level == "atom"}
    for index in sample_indices(len(dataset)):
        s = read(spec, dataset, index)
        at = f"structure {index} ({s.id!r})"
        for values, declared, field in ((s.targets, graph, "targets"), (s.atom_targets, atom, "atom_targets")):
            unknown = set(values) - declared
            if unknown:
                raise ConformanceError(where, f"{at} carries {field} {sorted(unknown)} that are not declared with "
                                       f"that level", "declare every target in `targets`, with its units and level "
                                       "(graph targets in Structure.targets, atom targets in Structure.atom_targets)")
            missing = declared - set(values)
            if missing:
                raise ConformanceError(where, f"{at} lacks {field} {sorted(missing)}",
                                       "give every structure a value for every declared target")
        bad = {k: v for k, v in s.targets.items() if not np.isfinite(v)}
        bad.update({k: "non-finite per-atom values" for k, v in s.atom_targets.items() if not np.isfinite(v).all()})
        if bad:
            raise ConformanceError(where, f"{at} has non-finite target values {bad}",
                                   "leave unlabelled structures out of the dev set, or fill the value")


def check_splits(spec: ComponentSpec, dataset: Any) -> None:
    where = label(spec)
    n = len(dataset)
    first = dataset.splits((0.8, 0.1, 0.1), seed=7)
    again = dataset.splits((0.8, 0.1, 0.1), seed=7)
    if set(first) != {"train", "val", "test"}:
        raise ConformanceError(where, f"splits() returns {sorted(first)}", "return train, val and test index arrays")
    for name in first:
        if not np.array_equal(first[name], again[name]):
            raise ConformanceError(where, f"the {name} split differs between two calls with the same seed",
                                   "derive splits only from the seed (inherit molplat.data.Dataset.splits)")
    joined = np.concatenate([np.asarray(v) for v in first.values()])
    if len(joined) != len(set(joined.tolist())):
        raise ConformanceError(where, "the splits share structures", "make train, val and test disjoint")
    if set(joined.tolist()) != set(range(n)):
        raise ConformanceError(where, "the splits do not cover every structure exactly once",
                               "split range(len(dataset)); inherit molplat.data.Dataset.splits")
    if n >= 10:
        other = dataset.splits((0.8, 0.1, 0.1), seed=8)
        if all(np.array_equal(first[k], other[k]) for k in first):
            raise ConformanceError(where, "seeds 7 and 8 give the same split", "use the seed to shuffle")
