"""Sparse radius graph: the input of message-passing models such as SchNet."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from molplat.representations.base import NeighborPairs
from molplat.representations.batch import Batch
from molplat.representations.neighbors import radius_neighbors
from molplat.structure import Structure


def _cell(structure: Structure) -> np.ndarray:
    return structure.cell if structure.cell is not None else np.zeros((3, 3))


class AdjacencyList:
    """Edge index ``[2, E]`` (row 0 centre i, row 1 neighbour j) with periodic shifts.

    Edge vectors are not stored: models compute ``pos[j] - pos[i] + edge_shift``
    from the positions, so forces by autograd and symmetry tests see the geometry.
    Collation concatenates numpy arrays once per field, no Python loop over edges, and
    keeps float64 (the collator casts to the training dtype once).
    """

    name = "adjacency_list"

    def __init__(self, cutoff: float = 5.0, max_neighbors: int | None = None) -> None:
        self.cutoff = cutoff
        self.max_neighbors = max_neighbors

    def featurize(self, structure: Structure) -> dict[str, Any]:
        nl = radius_neighbors(structure, self.cutoff, self.max_neighbors)
        return {
            "numbers": structure.numbers,
            "positions": structure.positions,
            "cell": _cell(structure),
            "pbc": structure.pbc,
            "edge_index": np.stack([nl.centers, nl.neighbors]),
            "cell_offsets": nl.cell_offsets,
        }

    def collate(self, items: list[dict[str, Any]]) -> Batch:
        natoms = np.array([len(it["numbers"]) for it in items], dtype=np.int64)
        nedges = np.array([it["edge_index"].shape[1] for it in items], dtype=np.int64)
        atom_offset = np.repeat(np.cumsum(natoms) - natoms, nedges)
        edge_graph = np.repeat(np.arange(len(items)), nedges)
        cells = np.stack([it["cell"] for it in items])
        offsets = np.concatenate([it["cell_offsets"] for it in items]).reshape(-1, 3)
        shifts = np.einsum("ek,ekl->el", offsets.astype(np.float64), cells[edge_graph])
        edge_index = np.concatenate([it["edge_index"] for it in items], axis=1).reshape(2, -1) + atom_offset
        return Batch(
            numbers=torch.from_numpy(np.concatenate([it["numbers"] for it in items])),
            positions=torch.from_numpy(np.concatenate([it["positions"] for it in items]).astype(np.float64)),
            batch=torch.from_numpy(np.repeat(np.arange(len(items)), natoms)),
            natoms=torch.from_numpy(natoms),
            num_graphs=len(items),
            edge_index=torch.from_numpy(edge_index),
            edge_shift=torch.from_numpy(shifts),
            cell_offsets=torch.from_numpy(offsets),
            cell=torch.from_numpy(cells.astype(np.float64)),
            pbc=torch.from_numpy(np.stack([it["pbc"] for it in items])),
        )

    def neighbor_pairs(self, batch: Batch) -> NeighborPairs:
        return NeighborPairs(batch["edge_index"][0], batch["edge_index"][1], edge_vectors(batch))


def edge_vectors(batch: Batch) -> torch.Tensor:
    """Differentiable edge vectors ``pos[j] - pos[i] + shift``, [E, 3]."""
    i, j = batch["edge_index"]
    return batch["positions"][j] - batch["positions"][i] + batch["edge_shift"]
