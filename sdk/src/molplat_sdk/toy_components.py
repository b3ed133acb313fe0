"""A toy dataset and a toy model that searchers, explainers, simulators and trainer backends
are exercised with: small enough to train in seconds, real enough to learn.

The dataset is computed, not downloaded: ASE's EMT potential gives energies and forces
of rattled copper-nickel clusters and crystals.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from molplat.data import Dataset
from molplat.models import AtomisticModel, ModelOutput
from molplat.representations.adjacency_list import edge_vectors
from molplat.structure import Structure, Target


def _emt_structures(size: int, seed: int) -> list[Structure]:
    from ase.build import bulk
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    structures = []
    fcc = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    for k in range(size):
        if k % 6 == 5:  # every sixth structure is a periodic crystal
            atoms = bulk("Cu", "fcc", a=3.61 + rng.normal(scale=0.03), cubic=True)
        else:
            n = int(rng.integers(3, 9))
            centre = fcc.positions[int(rng.integers(len(fcc)))]
            nearest = np.argsort(np.linalg.norm(fcc.positions - centre, axis=1))[:n]
            atoms = fcc[nearest]
            atoms.pbc = False
            atoms.cell = None
        atoms.numbers = rng.choice([28, 29], size=len(atoms))
        atoms.positions += rng.normal(scale=0.12, size=atoms.positions.shape)
        atoms.calc = EMT()
        energy = float(atoms.get_potential_energy())
        forces = atoms.get_forces()
        atoms.calc = None
        structures.append(Structure.from_atoms(atoms, targets={"energy": energy}, id=f"emt-{k:03d}"))
        structures[-1].forces = forces
    return structures


class ToyEMTDataset(Dataset):
    """Rattled Cu/Ni clusters and fcc cells with EMT energies (eV) and forces (eV/Å)."""

    targets: ClassVar[dict[str, Target]] = {"energy": Target("energy", "eV", "EMT potential energy")}
    default_target: ClassVar[str] = "energy"
    citation: ClassVar[str] = "K. W. Jacobsen, P. Stoltze, J. K. Nørskov, Surf. Sci. 366, 394 (1996) (EMT)"

    def __init__(self, size: int = 48, seed: int = 0) -> None:
        self._structures = _emt_structures(size, seed)

    def __len__(self) -> int:
        return len(self._structures)

    def get(self, index: int) -> Structure:
        return self._structures[index]


class ToyPairModel(AtomisticModel):
    """One round of distance-filtered messages, then a per-atom MLP summed per structure
    (and, with ``n_atom_outputs``, a second per-atom MLP for per-atom targets)."""

    accepts = ("adjacency_list",)
    embedding_layer = "embedding"

    def __init__(self, n_outputs: int = 1, hidden_channels: int = 16, num_rbf: int = 16, cutoff: float = 4.0,
                 max_atomic_number: int = 100, n_atom_outputs: int = 0) -> None:
        super().__init__(n_outputs)
        self.cutoff = cutoff
        self.n_atom_outputs = n_atom_outputs
        self.embedding = nn.Embedding(max_atomic_number + 1, hidden_channels)
        self.register_buffer("centers", torch.linspace(0.0, cutoff, num_rbf))
        self.gamma = float((num_rbf / cutoff) ** 2)
        self.filter = nn.Sequential(nn.Linear(num_rbf, hidden_channels), nn.SiLU(),
                                    nn.Linear(hidden_channels, hidden_channels))
        self.update = nn.Linear(hidden_channels, hidden_channels)
        self.readout = nn.Sequential(nn.Linear(hidden_channels, hidden_channels), nn.SiLU(),
                                     nn.Linear(hidden_channels, n_outputs))
        self.atom_readout = nn.Linear(hidden_channels, n_atom_outputs) if n_atom_outputs else None

    def forward(self, batch) -> ModelOutput:
        i, j = batch.edge_index
        distance = edge_vectors(batch).norm(dim=-1)
        envelope = 0.5 * (torch.cos(torch.pi * distance / self.cutoff) + 1.0) * (distance < self.cutoff)
        rbf = torch.exp(-self.gamma * (distance[:, None] - self.centers) ** 2)
        h = self.embedding(batch.numbers)
        # the envelope multiplies the filter's output, not its input: filter(0) is not 0
        messages = self.filter(rbf) * envelope[:, None] * h[j]
        h = h + self.update(torch.zeros_like(h).index_add(0, i, messages))
        per_atom = self.readout(h)
        graph = batch.atom_graph_index()
        y = torch.zeros(batch.num_graphs, self.n_outputs, dtype=h.dtype, device=h.device).index_add(0, graph, per_atom)
        pooled = torch.zeros(batch.num_graphs, h.shape[1], dtype=h.dtype, device=h.device).index_add(0, graph, h)
        out = ModelOutput(y=y, atom_embedding=h, graph_embedding=pooled)
        if self.atom_readout is not None:
            out["atom_y"] = self.atom_readout(h)
        return out
