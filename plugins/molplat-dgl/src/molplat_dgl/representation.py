"""Representation ``dgl_graph``: molplat's radius graph as one batched ``dgl.DGLGraph``.

Featurisation is the core ``adjacency_list``'s own (``molplat.representations.radius_neighbors``
through ``AdjacencyList.featurize``), so both representations hold exactly the same directed
pairs (i, j, lattice shift), periodic images included, and stores, statistics (degree
histograms) and neighbour checks see the same arrays. Only collation differs: the edges go
into a DGLGraph in DGL's direction, messages flowing from the neighbour j (source) to the
centre i (destination), one graph per structure batched together.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.base import NeighborPairs
from molplat.representations.batch import Batch
from molplat.structure import Structure
from molplat_dgl._dgl import import_dgl

dgl = import_dgl()


class DGLGraphRepresentation:
    """A Batch with the usual ``numbers``, ``positions`` [N, 3] Å, ``batch``, ``natoms``,
    ``num_graphs``, ``cell`` and ``pbc``, plus ``graph``: a batched DGLGraph with

    - edges src = j (neighbour) -> dst = i (centre), per structure in the order of the
      adjacency list, with ``graph.batch_num_nodes()``/``batch_num_edges()`` set, so
      ``dgl.unbatch`` and ``dgl.readout_nodes`` work;
    - ``ndata["numbers"]``, ``ndata["positions"]`` (float64 copies, for DGL code that wants
      them; models differentiate ``batch.positions`` instead, see ``edge_vectors``);
    - ``edata["cell_offsets"]`` [E, 3] (int64, in units of the cell vectors) and
      ``edata["shift"]`` [E, 3] Å (= cell_offsets @ cell), so that
      ``pos[src] - pos[dst] + shift`` is the vector from i to j's periodic image.

    Floating tensors are float64 (the core casts the top-level ones to the training dtype;
    the graph's own float64 edge shifts are cast by ``edge_vectors``).
    """

    name = "dgl_graph"

    def __init__(self, cutoff: float = 5.0, max_neighbors: int | None = None) -> None:
        self.cutoff = cutoff
        self.max_neighbors = max_neighbors
        self._pairs = AdjacencyList(cutoff=cutoff, max_neighbors=max_neighbors)

    def featurize(self, structure: Structure) -> dict[str, Any]:
        """numbers, positions, cell, pbc, edge_index [2, E] (row 0 centre i, row 1 neighbour j)
        and cell_offsets [E, 3]: numpy arrays, the same as ``adjacency_list``'s."""
        return self._pairs.featurize(structure)

    def collate(self, items: list[dict[str, Any]]) -> Batch:
        flat = self._pairs.collate(items)  # vectorised atom offsets and shifts, float64
        centers, neighbors = flat["edge_index"]
        graph = dgl.graph((neighbors, centers), num_nodes=int(flat["numbers"].shape[0]), idtype=torch.int64)
        graph.set_batch_num_nodes(flat["natoms"])
        graph.set_batch_num_edges(torch.tensor([it["edge_index"].shape[1] for it in items], dtype=torch.int64))
        graph.ndata["numbers"] = flat["numbers"]
        graph.ndata["positions"] = flat["positions"]
        graph.edata["cell_offsets"] = flat["cell_offsets"]
        graph.edata["shift"] = flat["edge_shift"]
        return Batch(numbers=flat["numbers"], positions=flat["positions"], batch=flat["batch"], natoms=flat["natoms"],
                     num_graphs=flat["num_graphs"], cell=flat["cell"], pbc=flat["pbc"], graph=graph)

    def neighbor_pairs(self, batch: Batch) -> NeighborPairs:
        neighbors, centers = batch["graph"].edges()
        return NeighborPairs(centers, neighbors, edge_vectors(batch))


def edge_vectors(batch: Batch) -> torch.Tensor:
    """``pos[j] - pos[i] + shift`` per edge of ``batch.graph`` [E, 3], differentiable in
    ``batch.positions`` (so forces by autograd work), in the positions' dtype."""
    graph = batch["graph"]
    positions = batch["positions"]
    neighbors, centers = graph.edges()
    shift = graph.edata["shift"].to(device=positions.device, dtype=positions.dtype)
    return positions.index_select(0, neighbors) - positions.index_select(0, centers) + shift

