"""Structures packed into flat arrays, and their checked .npz cache files.

Files are written through ``molplat.files.atomic_save_npz`` (a temporary name moved into
place, with a SHA-256 of the contents inside), so readers never see half a cache, and a
truncated, bit-flipped or edited file is noticed on load, deleted with a one-line notice
and rebuilt.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from molplat.files import atomic_save_npz, load_npz
from molplat.structure import Structure

_FIELDS = ("ids", "numbers", "positions", "cells", "offsets", "targets", "target_names")


@dataclass
class Packed:
    """Periodic structures: atoms of structure i are ``offsets[i]:offsets[i+1]``."""

    ids: np.ndarray  # (n,) str
    numbers: np.ndarray  # (n_atoms,) int16
    positions: np.ndarray  # (n_atoms, 3) float64, Å
    cells: np.ndarray  # (n, 3, 3) float64, Å, rows are lattice vectors
    offsets: np.ndarray  # (n + 1,) int64
    targets: np.ndarray  # (n, n_targets) float64
    target_names: np.ndarray  # (n_targets,) str

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_structures(cls, structures: Sequence[Structure], target_names: Sequence[str]) -> "Packed":
        counts = [len(s) for s in structures]
        return cls(
            ids=np.array([s.id for s in structures], dtype=str),
            numbers=np.concatenate([s.numbers for s in structures] or [np.zeros(0)]).astype(np.int16),
            positions=np.concatenate([s.positions for s in structures] or [np.zeros((0, 3))]).reshape(-1, 3),
            cells=np.array([s.cell for s in structures], dtype=np.float64).reshape(-1, 3, 3),
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            targets=np.array([[s.targets[t] for t in target_names] for s in structures],
                             dtype=np.float64).reshape(len(structures), len(target_names)),
            target_names=np.array(list(target_names), dtype=str),
        )

    def structure(self, i: int) -> Structure:
        start, stop = self.offsets[i], self.offsets[i + 1]
        return Structure(
            numbers=self.numbers[start:stop],
            positions=self.positions[start:stop],
            cell=self.cells[i],
            pbc=np.ones(3, dtype=bool),
            targets=dict(zip(self.target_names.tolist(), self.targets[i].tolist())),
            id=str(self.ids[i]),
        )

    def save(self, path: Path, **extra: np.ndarray) -> None:
        """Write to ``path`` with a digest of the contents, through a temporary file."""
        atomic_save_npz(path, **{f: getattr(self, f) for f in _FIELDS}, **extra)

    @classmethod
    def load(cls, path: Path, *extra: str) -> tuple["Packed", dict[str, np.ndarray]] | None:
        """The cached structures and extra arrays, or None when the file is missing, damaged (then
        deleted, after a one-line notice) or lacks an array."""
        data = load_npz(path, "CoRE MOF cache")
        if data is None or any(name not in data for name in (*_FIELDS, *extra)):
            return None
        return cls(**{f: data[f] for f in _FIELDS}), {k: data[k] for k in extra}
