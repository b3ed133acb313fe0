"""Dataset checks: an offline dev set of valid structures with documented, finite targets."""
from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import numpy as np

from molplat.specs import ComponentSpec
from molplat.structure import Structure, Target

from molplat_sdk.checks.common import label
from molplat_sdk.errors import ConformanceError

MAX_CHECKED = 300


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


def check_structures(spec: ComponentSpec, dataset: Any) -> None:
    where = label(spec)
    for index in sample_indices(len(dataset)):
        s = dataset[int(index)]
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
    for index in sample_indices(len(dataset)):
        s = dataset[int(index)]
        unknown = set(s.targets) - set(targets)
        if unknown:
            raise ConformanceError(where, f"structure {index} carries undeclared targets {sorted(unknown)}",
                                   "declare every target in `targets`, with its units")
        missing = set(targets) - set(s.targets)
        if missing:
            raise ConformanceError(where, f"structure {index} lacks targets {sorted(missing)}",
                                   "give every structure a value for every declared target")
        bad = {k: v for k, v in s.targets.items() if not np.isfinite(v)}
        if bad:
            raise ConformanceError(where, f"structure {index} ({s.id!r}) has non-finite target values {bad}",
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
