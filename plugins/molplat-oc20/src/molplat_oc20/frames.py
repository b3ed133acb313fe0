"""Frames packed into flat arrays: what both datasets hold, and what the caches store.

Every frame's atoms sit in one block of the per-atom arrays (``offsets`` says where);
per-frame labels are named columns in ``values``. Packing keeps memory at about the
size of the numbers themselves and lets ``get(i)`` slice instead of parse. Caches are
written with ``molplat.files.atomic_save_npz`` (atomic, checksummed, no pickles).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from molplat.files import atomic_save_npz, load_npz

#: OC20 per-atom tags
TAG_SUBSURFACE, TAG_SURFACE, TAG_ADSORBATE = 0, 1, 2

_ARRAYS = ("ids", "systems", "numbers", "positions", "offsets", "cells", "pbc", "tags", "fixed", "forces")
_VALUE_PREFIX = "value_"


@dataclass
class Frames:
    """Structures of one source, packed. ``forces`` is NaN where a frame has none."""

    ids: np.ndarray  # [F] str: unique structure ids
    systems: np.ndarray  # [F] str: the adsorbate+slab system of each frame (the unit of a split)
    numbers: np.ndarray  # [A] int16
    positions: np.ndarray  # [A, 3] float64, Å
    offsets: np.ndarray  # [F + 1] int64
    cells: np.ndarray  # [F, 3, 3] float64, Å
    pbc: np.ndarray  # [F, 3] bool
    tags: np.ndarray  # [A] int8: 0 subsurface (fixed), 1 surface, 2 adsorbate
    fixed: np.ndarray  # [A] bool: held in place during the relaxation
    forces: np.ndarray  # [A, 3] float64, eV/Å (NaN: none)
    values: dict[str, np.ndarray] = field(default_factory=dict)  # per-frame labels, [F] float64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def atoms_of(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def take(self, index: np.ndarray) -> "Frames":
        """The frames at ``index``, in that order."""
        index = np.asarray(index, dtype=np.int64)
        blocks = [np.arange(self.offsets[i], self.offsets[i + 1]) for i in index]
        atoms = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)
        counts = np.diff(self.offsets)[index]
        return Frames(self.ids[index], self.systems[index], self.numbers[atoms], self.positions[atoms],
                      np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), self.cells[index], self.pbc[index],
                      self.tags[atoms], self.fixed[atoms], self.forces[atoms],
                      {k: v[index] for k, v in self.values.items()})


class FrameBuilder:
    """Collects frames one at a time, then packs them."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.systems: list[str] = []
        self.numbers: list[np.ndarray] = []
        self.positions: list[np.ndarray] = []
        self.cells: list[np.ndarray] = []
        self.pbc: list[np.ndarray] = []
        self.tags: list[np.ndarray] = []
        self.fixed: list[np.ndarray] = []
        self.forces: list[np.ndarray] = []
        self.values: dict[str, list[float]] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, id: str, system: str, numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray,
            pbc: np.ndarray, tags: np.ndarray, fixed: np.ndarray, forces: np.ndarray | None,
            **values: float) -> None:
        n = len(numbers)
        self.ids.append(id)
        self.systems.append(system)
        self.numbers.append(np.asarray(numbers, dtype=np.int16))
        self.positions.append(np.asarray(positions, dtype=np.float64).reshape(n, 3))
        self.cells.append(np.asarray(cell, dtype=np.float64).reshape(3, 3))
        self.pbc.append(np.asarray(pbc, dtype=bool).reshape(3))
        self.tags.append(np.asarray(tags, dtype=np.int8).reshape(n))
        self.fixed.append(np.asarray(fixed, dtype=bool).reshape(n))
        self.forces.append(np.full((n, 3), np.nan) if forces is None else np.asarray(forces, dtype=np.float64))
        if self.values and set(values) != set(self.values):
            raise ValueError(f"frame {id!r} has labels {sorted(values)}, earlier frames {sorted(self.values)}")
        for name, value in values.items():
            self.values.setdefault(name, []).append(float(value))

    def pack(self) -> Frames:
        counts = np.array([len(z) for z in self.numbers], dtype=np.int64)
        ids = _unique(self.ids)
        return Frames(
            ids=np.array(ids, dtype=str), systems=np.array(self.systems, dtype=str),
            numbers=np.concatenate(self.numbers), positions=np.concatenate(self.positions),
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            cells=np.stack(self.cells), pbc=np.stack(self.pbc), tags=np.concatenate(self.tags),
            fixed=np.concatenate(self.fixed), forces=np.concatenate(self.forces),
            values={k: np.asarray(v, dtype=np.float64) for k, v in self.values.items()},
        )


def _unique(ids: list[str]) -> list[str]:
    """Ids made unique: a repeated one (the same system and frame in two files) gets ``#2``, ``#3``, ..."""
    seen: dict[str, int] = {}
    out = []
    for sid in ids:
        seen[sid] = seen.get(sid, 0) + 1
        out.append(sid if seen[sid] == 1 else f"{sid}#{seen[sid]}")
    return out


def save(path: Path, frames: Frames) -> None:
    arrays = {name: getattr(frames, name) for name in _ARRAYS}
    arrays.update({_VALUE_PREFIX + k: v for k, v in frames.values.items()})
    atomic_save_npz(path, **arrays)


def load(path: Path, what: str) -> Frames | None:
    """The frames cached at ``path``, or None when missing or damaged (then deleted, with a one-line notice)."""
    data = load_npz(path, what)
    if data is None or any(name not in data for name in _ARRAYS):
        return None
    values = {k[len(_VALUE_PREFIX):]: v for k, v in data.items() if k.startswith(_VALUE_PREFIX)}
    return Frames(**{name: data[name] for name in _ARRAYS}, values=values)
