"""Padded coordinates with one-hot species and no edges, for set and attention models."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from molplat.representations.batch import Batch
from molplat.structure import Structure


class PointCloud:
    name = "point_cloud"

    def __init__(self, max_atomic_number: int = 100) -> None:
        self.max_atomic_number = max_atomic_number

    def featurize(self, structure: Structure) -> dict[str, Any]:
        if structure.numbers.max(initial=0) > self.max_atomic_number:
            raise ValueError(
                f"structure {structure.id!r} has atomic number {structure.numbers.max()} above "
                f"max_atomic_number={self.max_atomic_number}; raise it in [representation]"
            )
        return {
            "numbers": structure.numbers,
            "positions": structure.positions,
            "cell": structure.cell if structure.cell is not None else np.zeros((3, 3)),
            "pbc": structure.pbc,
        }

    def collate(self, items: list[dict[str, Any]]) -> Batch:
        n_graphs = len(items)
        natoms = np.array([len(it["numbers"]) for it in items], dtype=np.int64)
        n_max = int(natoms.max())
        numbers = np.zeros((n_graphs, n_max), dtype=np.int64)
        positions = np.zeros((n_graphs, n_max, 3), dtype=np.float64)
        mask = np.arange(n_max)[None, :] < natoms[:, None]
        numbers[mask] = np.concatenate([it["numbers"] for it in items])
        positions[mask] = np.concatenate([it["positions"] for it in items])
        species = np.zeros((n_graphs, n_max, self.max_atomic_number), dtype=np.float64)
        g, a = np.nonzero(mask)
        species[g, a, numbers[mask] - 1] = 1.0
        return Batch(
            numbers=torch.from_numpy(numbers),
            positions=torch.from_numpy(positions),
            species=torch.from_numpy(species),
            atom_mask=torch.from_numpy(mask),
            natoms=torch.from_numpy(natoms),
            num_graphs=n_graphs,
            cell=torch.from_numpy(np.stack([it["cell"] for it in items]).astype(np.float64)),
            pbc=torch.from_numpy(np.stack([it["pbc"] for it in items])),
        )
