"""GINE: the graph isomorphism network with bond features, on the ``molecular_graph`` bonds.

Layer l updates every atom as h_i <- MLP((1 + eps) h_i + sum_j ReLU(h_j + e_ij)), j over
the bonded atoms, e_ij the sum of learnt embeddings of the bond's categories (Hu et al.
2020's GINE). Atom states start as the sum of embeddings of the atom's categories
(element, degree, charge, hybridisation, aromaticity, hydrogens, ring). The model never
reads positions: its predictions are unchanged by any motion of the atoms, and it
predicts properties only, never energies or forces (its spec's outputs say so).
"""
from __future__ import annotations

import torch
from torch import nn

from molplat.models import AtomisticModel, ModelOutput
from molplat_smiles.features import ATOM_VOCAB, BOND_VOCAB


class CategoryEmbedding(nn.Module):
    """Sum of one learnt embedding per categorical column."""

    def __init__(self, sizes: tuple[int, ...], width: int) -> None:
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(size, width) for size in sizes)

    def forward(self, categories: torch.Tensor) -> torch.Tensor:
        out = self.tables[0](categories[:, 0])
        for k, table in enumerate(self.tables[1:], start=1):
            out = out + table(categories[:, k])
        return out


class GINELayer(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.bonds = CategoryEmbedding(BOND_VOCAB, width)
        self.eps = nn.Parameter(torch.zeros(1))
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.norm = nn.LayerNorm(width)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, bond_features: torch.Tensor) -> torch.Tensor:
        receiver, sender = edge_index  # molplat: row 0 receives
        messages = torch.relu(h[sender] + self.bonds(bond_features))
        summed = torch.zeros_like(h).index_add_(0, receiver, messages)
        return h + self.norm(self.mlp((1 + self.eps) * h + summed))


class GINE(AtomisticModel):
    """GINE on bonds; graph-level properties from a mean (or sum) of the atom states."""

    accepts = ("molecular_graph",)
    embedding_layer = "atoms"
    max_atomic_number = ATOM_VOCAB[0] - 1

    def __init__(self, hidden_channels: int = 64, num_layers: int = 3, readout: str = "mean",
                 dropout: float = 0.0, n_outputs: int = 1) -> None:
        super().__init__(n_outputs)
        self.readout = readout
        self.atoms = CategoryEmbedding(ATOM_VOCAB, hidden_channels)
        self.layers = nn.ModuleList(GINELayer(hidden_channels) for _ in range(num_layers))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_channels, hidden_channels), nn.SiLU(),
                                  nn.Linear(hidden_channels, n_outputs))

    def forward(self, batch) -> ModelOutput:
        h = self.atoms(batch["atom_features"])
        edge_index, bond_features = batch["edge_index"], batch["bond_features"]
        for layer in self.layers:
            h = layer(h, edge_index, bond_features)
        graph = batch["batch"]
        pooled = torch.zeros(batch["num_graphs"], h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, graph, h)
        if self.readout == "mean":
            pooled = pooled / batch["natoms"].clamp(min=1).to(h.dtype).unsqueeze(1)
        return ModelOutput(y=self.head(pooled), atom_embedding=h, graph_embedding=pooled)
