"""Components that each break one contract, to prove the suite catches it (sdk tests only)."""
from __future__ import annotations

import socket
from typing import ClassVar

import torch
from torch import nn

from molplat.data.dataset import Dataset
from molplat.models.base import ModelOutput
from molplat.representations.adjacency_list import AdjacencyList, edge_vectors
from molplat.results import Explanation
from molplat.structure import Structure, Target
from molplat_sdk.toy_components import ToyEMTDataset, ToyPairModel


class _Base(ToyPairModel):
    def __init__(self, n_outputs: int = 1, cutoff: float = 4.0) -> None:
        super().__init__(n_outputs=n_outputs, hidden_channels=8, num_rbf=8, cutoff=cutoff)


class UsesAbsoluteZ(_Base):
    def forward(self, batch) -> ModelOutput:
        out = super().forward(batch)
        z = torch.zeros_like(out["y"]).index_add(0, batch.atom_graph_index(), (batch.positions[:, 2:3] ** 2).expand(-1, out["y"].shape[1]))
        return ModelOutput(y=out["y"] + z, atom_embedding=out["atom_embedding"], graph_embedding=out["graph_embedding"])


class UsesAtomOrder(_Base):
    def forward(self, batch) -> ModelOutput:
        out = super().forward(batch)
        order = torch.arange(len(batch.numbers), dtype=out["y"].dtype)[:, None] * batch.numbers[:, None]
        extra = torch.zeros_like(out["y"]).index_add(0, batch.atom_graph_index(),
                                                     1e-2 * order.expand(-1, out["y"].shape[1]))
        return ModelOutput(y=out["y"] + extra, atom_embedding=out["atom_embedding"],
                           graph_embedding=out["graph_embedding"])


class IgnoresPeriodicShift(_Base):
    def forward(self, batch) -> ModelOutput:
        batch = type(batch)(batch)
        batch["edge_shift"] = torch.zeros_like(batch["edge_shift"])
        return super().forward(batch)


class HasUnusedParameter(_Base):
    def __init__(self, n_outputs: int = 1, cutoff: float = 4.0) -> None:
        super().__init__(n_outputs, cutoff)
        self.forgotten = nn.Linear(3, 3)


class DetachesPartOfTheEnergy(_Base):
    def forward(self, batch) -> ModelOutput:
        out = super().forward(batch)
        d = edge_vectors(batch).norm(dim=-1).detach()
        extra = torch.zeros_like(out["y"][:, 0]).index_add(0, batch.atom_graph_index()[batch.edge_index[0]], d)
        return ModelOutput(y=out["y"] + extra[:, None], atom_embedding=out["atom_embedding"],
                           graph_embedding=out["graph_embedding"])


class KeepsStateOutsideTheStateDict(_Base):
    def __init__(self, n_outputs: int = 1, cutoff: float = 4.0) -> None:
        super().__init__(n_outputs, cutoff)
        self.scale = torch.rand(1).item() + 1.0  # a plain attribute: lost by state_dict

    def forward(self, batch) -> ModelOutput:
        out = super().forward(batch)
        return ModelOutput(y=out["y"] * self.scale, atom_embedding=out["atom_embedding"],
                           graph_embedding=out["graph_embedding"])


class WrongShape(_Base):
    def forward(self, batch) -> ModelOutput:
        out = super().forward(batch)
        return ModelOutput(y=out["y"][:, :1], atom_embedding=out["atom_embedding"], graph_embedding=out["graph_embedding"])


class NaNTargets(ToyEMTDataset):
    def get(self, index: int) -> Structure:
        s = super().get(index)
        return Structure(s.numbers, s.positions, s.cell, s.pbc, s.forces, {"energy": float("nan")}, s.id)


class NoUnits(ToyEMTDataset):
    targets: ClassVar[dict[str, Target]] = {"energy": Target("energy", "")}


class ChargesAsNumbers(ToyEMTDataset):
    def get(self, index: int) -> Structure:
        s = super().get(index)
        return Structure(s.numbers * 0, s.positions, s.cell, s.pbc, s.forces, dict(s.targets), s.id)


class Downloads(Dataset):
    targets: ClassVar[dict[str, Target]] = {"energy": Target("energy", "eV")}

    def __init__(self) -> None:
        socket.create_connection(("example.org", 443), timeout=1)

    def __len__(self) -> int:
        return 0


class ForgetsEdgeOffsets(AdjacencyList):
    """Concatenates edge indices without shifting them by the atoms of earlier structures."""

    def collate(self, items):
        batch = super().collate(items)
        natoms = batch["natoms"]
        starts = torch.repeat_interleave(torch.cumsum(natoms, 0) - natoms,
                                         torch.tensor([it["edge_index"].shape[1] for it in items]))
        batch["edge_index"] = batch["edge_index"] - starts
        return batch


class DropsPeriodicImages(AdjacencyList):
    def featurize(self, structure):
        item = super().featurize(structure)
        keep = ~item["cell_offsets"].any(axis=1)
        item["edge_index"], item["cell_offsets"] = item["edge_index"][:, keep], item["cell_offsets"][keep]
        return item


class ExplainerReturningADict:
    def run(self, context):
        return {"saliency": 1.0}


class ExplainerListingAMissingFile:
    def run(self, context):
        return Explanation(metrics={"mean": 1.0}, files=["explain/nowhere.png"])
