"""The ``molecular_graph`` representation: chemical bonds, not a radius graph.

``edge_index`` [2, E] follows molplat's convention (row 0 the receiving atom i, row 1 the
sender j) and holds every bond in both directions; ``bond_features`` [E, 3] repeats a
bond's categories for both. ``atom_features`` [N, 7] are RDKit's atom categories (see
``molplat_smiles.features``).

Molecules of the ``smiles_csv`` dataset carry their bonds from the SMILES. Any other
structure (another dataset's, a user's) gets bonds perceived from its geometry: atoms
closer than ``bond_tolerance`` x the sum of their covalent radii, periodic images
included, with element and degree features only (bond type "unknown"). Either way the
batch carries numbers, positions, natoms and num_graphs like every molplat batch.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from molplat.representations.base import NeighborPairs
from molplat.representations.batch import Batch
from molplat.representations.neighbors import radius_neighbors
from molplat.structure import Structure
from molplat_smiles.features import ATOM_VOCAB, BOND_VOCAB, perceive

#: the largest covalent radius sum (Å) a perceived bond may span, times the tolerance: Cs-Cs is 2 x 2.44
_MAX_RADIUS_SUM = 5.0


def _cell(structure: Structure) -> np.ndarray:
    return structure.cell if structure.cell is not None else np.zeros((3, 3))


class MolecularGraph:
    """Bond graph with RDKit atom and bond features; see the module docstring."""

    name = "molecular_graph"

    def __init__(self, bond_tolerance: float = 1.2) -> None:
        self.bond_tolerance = bond_tolerance

    def featurize(self, structure: Structure) -> dict[str, Any]:
        graph = getattr(structure, "graph", None)
        n = len(structure)
        if graph is not None:
            bonds = np.asarray(graph["bonds"], dtype=np.int64).reshape(-1, 2)
            i = np.concatenate([bonds[:, 0], bonds[:, 1]])
            j = np.concatenate([bonds[:, 1], bonds[:, 0]])
            features = np.asarray(graph["bond_features"], dtype=np.int64).reshape(-1, len(BOND_VOCAB))
            bond_features = np.concatenate([features, features])
            offsets = np.zeros((len(i), 3), dtype=np.int64)
            atom_features = np.asarray(graph["atom_features"], dtype=np.int64).reshape(n, len(ATOM_VOCAB))
        else:
            i, j, offsets, atom_features, bond_features = self._perceived(structure)
        return {
            "numbers": structure.numbers,
            "positions": structure.positions,
            "cell": _cell(structure),
            "pbc": structure.pbc,
            "atom_features": atom_features,
            "edge_index": np.stack([i, j]).astype(np.int64).reshape(2, -1),
            "cell_offsets": offsets.reshape(-1, 3),
            "bond_features": bond_features.reshape(-1, len(BOND_VOCAB)),
        }

    def _perceived(self, structure: Structure) -> tuple[np.ndarray, ...]:
        nl = radius_neighbors(structure, self.bond_tolerance * _MAX_RADIUS_SUM)
        keep = perceive(structure.numbers, (nl.centers, nl.neighbors), nl.distances, self.bond_tolerance)
        i, j, offsets = nl.centers[keep], nl.neighbors[keep], nl.cell_offsets[keep]
        n = len(structure)
        degree = np.bincount(i, minlength=n)
        hydrogens = np.bincount(i, weights=(structure.numbers[j] == 1).astype(np.float64), minlength=n)
        atom_features = np.zeros((n, len(ATOM_VOCAB)), dtype=np.int64)
        atom_features[:, 0] = np.clip(structure.numbers, 0, ATOM_VOCAB[0] - 1)
        atom_features[:, 1] = np.clip(degree, 0, ATOM_VOCAB[1] - 1)
        atom_features[:, 2] = 3  # formal charge 0
        atom_features[:, 5] = np.clip(hydrogens.astype(np.int64), 0, ATOM_VOCAB[5] - 1)
        bond_features = np.zeros((len(i), len(BOND_VOCAB)), dtype=np.int64)  # type unknown, not conjugated
        return i, j, offsets, atom_features, bond_features

    def collate(self, items: list[dict[str, Any]]) -> Batch:
        natoms = np.array([len(it["numbers"]) for it in items], dtype=np.int64)
        nedges = np.array([it["edge_index"].shape[1] for it in items], dtype=np.int64)
        atom_offset = np.repeat(np.cumsum(natoms) - natoms, nedges)
        edge_graph = np.repeat(np.arange(len(items)), nedges)
        cells = np.stack([np.asarray(it["cell"], dtype=np.float64) for it in items])
        offsets = np.concatenate([it["cell_offsets"] for it in items]).reshape(-1, 3).astype(np.int64)
        shifts = np.einsum("ek,ekl->el", offsets.astype(np.float64), cells[edge_graph])
        edge_index = np.concatenate([it["edge_index"] for it in items], axis=1).reshape(2, -1) + atom_offset
        return Batch(
            numbers=torch.from_numpy(np.concatenate([it["numbers"] for it in items]).astype(np.int64)),
            positions=torch.from_numpy(np.concatenate([it["positions"] for it in items]).astype(np.float64)),
            batch=torch.from_numpy(np.repeat(np.arange(len(items)), natoms)),
            natoms=torch.from_numpy(natoms),
            num_graphs=len(items),
            atom_features=torch.from_numpy(np.concatenate([it["atom_features"] for it in items]).astype(np.int64)),
            edge_index=torch.from_numpy(edge_index.astype(np.int64)),
            bond_features=torch.from_numpy(
                np.concatenate([it["bond_features"] for it in items]).reshape(-1, len(BOND_VOCAB)).astype(np.int64)),
            edge_shift=torch.from_numpy(shifts),
            cell_offsets=torch.from_numpy(offsets),
            cell=torch.from_numpy(cells),
            pbc=torch.from_numpy(np.stack([np.asarray(it["pbc"], dtype=bool) for it in items])),
        )

    def neighbor_pairs(self, batch: Batch) -> NeighborPairs:
        """The bonds, both directions, with vectors from atom i to atom j (its periodic image)."""
        i, j = batch["edge_index"]
        vectors = batch["positions"][j] - batch["positions"][i] + batch["edge_shift"]
        return NeighborPairs(i, j, vectors)
