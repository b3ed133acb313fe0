"""Radius neighbour lists with periodic images, built by vesin.

One function so that the list and matrix representations cannot disagree about
which pairs are neighbours.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import vesin

from molplat.structure import Structure

# Non-periodic systems get a dummy box; vesin ignores it when periodic is False.
_NO_BOX = np.zeros((3, 3))


@dataclass
class NeighborList:
    """Directed pairs (i -> j) within the cutoff; vector = pos[j] - pos[i] + offset @ cell."""

    centers: np.ndarray  # [E] int64, i
    neighbors: np.ndarray  # [E] int64, j
    cell_offsets: np.ndarray  # [E, 3] int64
    distances: np.ndarray  # [E] float64


def radius_neighbors(structure: Structure, cutoff: float, max_neighbors: int | None = None) -> NeighborList:
    """All pairs closer than ``cutoff`` Å, optionally the ``max_neighbors`` nearest per atom.

    Ties at the neighbour limit are broken by neighbour index then image so the
    result is deterministic.
    """
    periodic = structure.pbc if structure.periodic else False
    box = structure.cell if structure.periodic else _NO_BOX
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, shifts, d = calculator.compute(structure.positions, box, periodic, "ijSd")
    i, j, shifts, d = i.astype(np.int64), j.astype(np.int64), shifts.astype(np.int64), d.astype(np.float64)
    order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], j, d, i))
    i, j, shifts, d = i[order], j[order], shifts[order], d[order]
    if max_neighbors is not None and len(i):
        starts = np.searchsorted(i, i, side="left")
        rank = np.arange(len(i)) - starts
        keep = rank < max_neighbors
        i, j, shifts, d = i[keep], j[keep], shifts[keep], d[keep]
    return NeighborList(i, j, shifts, d)
