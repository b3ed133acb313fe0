"""Dense adjacency: padded per-structure pair tensors with atom and pair masks.

Periodic crystals can see the same neighbour j through several images, so the
pair axis carries an image dimension: ``pair_mask[g, i, j, s]`` is true when atom
j translated by ``image_offsets[s]`` lies within the cutoff of atom i. The
neighbours are those of the adjacency list with the same settings.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.base import NeighborPairs
from molplat.representations.batch import Batch


class AdjacencyMatrix:
    name = "adjacency_matrix"

    def __init__(self, cutoff: float = 5.0, max_neighbors: int | None = None) -> None:
        self._list = AdjacencyList(cutoff=cutoff, max_neighbors=max_neighbors)
        self.cutoff = cutoff
        self.max_neighbors = max_neighbors

    def featurize(self, structure) -> dict[str, Any]:
        return self._list.featurize(structure)

    def collate(self, items: list[dict[str, Any]]) -> Batch:
        n_graphs = len(items)
        natoms = np.array([len(it["numbers"]) for it in items], dtype=np.int64)
        n_max = int(natoms.max())
        offsets_all = np.concatenate([it["cell_offsets"] for it in items]).reshape(-1, 3)
        images, image_of_edge = np.unique(
            np.concatenate([np.zeros((1, 3), dtype=np.int64), offsets_all]), axis=0, return_inverse=True
        )
        image_of_edge = image_of_edge.reshape(-1)[1:]
        numbers = np.zeros((n_graphs, n_max), dtype=np.int64)
        positions = np.zeros((n_graphs, n_max, 3), dtype=np.float64)
        atom_mask = np.zeros((n_graphs, n_max), dtype=bool)
        pair_mask = np.zeros((n_graphs, n_max, n_max, len(images)), dtype=bool)
        nedges = np.array([it["edge_index"].shape[1] for it in items])
        edge_graph = np.repeat(np.arange(n_graphs), nedges)
        edge_index = np.concatenate([it["edge_index"] for it in items], axis=1).reshape(2, -1)
        for g, it in enumerate(items):
            numbers[g, : natoms[g]] = it["numbers"]
            positions[g, : natoms[g]] = it["positions"]
            atom_mask[g, : natoms[g]] = True
        pair_mask[edge_graph, edge_index[0], edge_index[1], image_of_edge] = True
        cells = np.stack([it["cell"] for it in items]).astype(np.float64)
        image_shifts = np.einsum("sk,gkl->gsl", images.astype(np.float64), cells)
        return Batch(
            numbers=torch.from_numpy(numbers),
            positions=torch.from_numpy(positions),
            atom_mask=torch.from_numpy(atom_mask),
            pair_mask=torch.from_numpy(pair_mask),
            image_offsets=torch.from_numpy(images),
            image_shifts=torch.from_numpy(image_shifts),
            natoms=torch.from_numpy(natoms),
            num_graphs=n_graphs,
            cell=torch.from_numpy(cells),
            pbc=torch.from_numpy(np.stack([it["pbc"] for it in items])),
        )

    def neighbor_pairs(self, batch: Batch) -> NeighborPairs:
        g, i, j, s = torch.nonzero(batch["pair_mask"], as_tuple=True)
        flat = torch.cumsum(batch["atom_mask"].reshape(-1).long(), 0).reshape(batch["atom_mask"].shape) - 1
        return NeighborPairs(flat[g, i], flat[g, j], pair_vectors(batch)[g, i, j, s])


def pair_vectors(batch: Batch) -> torch.Tensor:
    """Differentiable vectors from i to image s of j, [G, N, N, S, 3]."""
    pos = batch["positions"]
    return (pos[:, None, :, None, :] - pos[:, :, None, None, :]) + batch["image_shifts"][:, None, None, :, :]
