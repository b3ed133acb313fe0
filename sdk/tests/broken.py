"""Components that each break one contract, to prove the suite catches it (sdk tests only)."""
from __future__ import annotations

import dataclasses
import socket
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from molplat.data import Dataset
from molplat.models import ModelOutput
from molplat.representations import Batch
from molplat.representations.adjacency_list import AdjacencyList, edge_vectors
from molplat.results import Explanation, SearchResult
from molplat.structure import Structure, Target
from molplat.training import AtomisticTask, FitResult
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


class NormalisesOverTheBatch(_Base):
    """BatchNorm1d over the atoms of the whole batch: in training mode a structure's energy and
    forces depend on the structures beside it (eval mode, with running statistics, hides it)."""

    def __init__(self, n_outputs: int = 1, cutoff: float = 4.0) -> None:
        super().__init__(n_outputs, cutoff)
        self.update = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8))


class CutoffBeyondTheRepresentation(_Base):
    """Declares a 4 Å cutoff but damps pairs with a 5 Å envelope, so a pair at the
    representation's 4 Å cutoff still counts when it drops out of the neighbour list."""

    def __init__(self, n_outputs: int = 1, cutoff: float = 4.0) -> None:
        super().__init__(n_outputs, cutoff)
        self.cutoff = cutoff + 1.0


class CountsNeighbours(_Base):
    """Adds a coordination number without an envelope: a step when a neighbour crosses the cutoff."""

    def forward(self, batch) -> ModelOutput:
        out = super().forward(batch)
        ones = torch.ones(batch.edge_index.shape[1], dtype=out["y"].dtype)
        count = torch.zeros_like(out["y"][:, 0]).index_add(0, batch.atom_graph_index()[batch.edge_index[0]], ones)
        return ModelOutput(y=out["y"] + 0.1 * count[:, None], atom_embedding=out["atom_embedding"],
                           graph_embedding=out["graph_embedding"])


class AtomYFromPlaceInStructure(ToyPairModel):
    """atom_y depends on where an atom sits in its structure's list: not permutation-equivariant
    (but independent of the batch)."""

    def forward(self, batch) -> ModelOutput:
        out = super().forward(batch)
        graph = batch.atom_graph_index()
        starts = torch.cumsum(batch.natoms, 0) - batch.natoms
        place = (torch.arange(len(graph)) - starts[graph]).to(out["atom_y"].dtype)
        out["atom_y"] = out["atom_y"] + 0.01 * place[:, None]
        return out


class AtomYFromAbsoluteZ(ToyPairModel):
    """atom_y reads the absolute z coordinate: not rotation invariant (y is)."""

    def forward(self, batch) -> ModelOutput:
        out = super().forward(batch)
        out["atom_y"] = out["atom_y"] + batch.positions[:, 2:3] ** 2
        return out


class AtomYPerStructure(ToyPairModel):
    """Returns one atom_y row per structure instead of one per atom."""

    def forward(self, batch) -> ModelOutput:
        out = super().forward(batch)
        out["atom_y"] = out["y"][:, :1]
        return out


class DeclaresNoEmbeddingLayer(_Base):
    embedding_layer = ""


class NamesAMissingEmbeddingLayer(_Base):
    embedding_layer = "atom_types"


class NamesAnEdgeLayer(_Base):
    """Names the distance filter: one row per edge, not per atom."""

    embedding_layer = "filter"


class NamesASideBranch(_Base):
    """Names a per-atom layer whose output only decorates atom_embedding: y never reads it."""

    embedding_layer = "side"

    def __init__(self, n_outputs: int = 1, cutoff: float = 4.0) -> None:
        super().__init__(n_outputs, cutoff)
        self.side = nn.Embedding(101, 8)

    def forward(self, batch) -> ModelOutput:
        out = super().forward(batch)
        return ModelOutput(y=out["y"], atom_embedding=out["atom_embedding"] + self.side(batch.numbers),
                           graph_embedding=out["graph_embedding"])


class GraphEmbeddingOfTheBatch(_Base):
    """graph_embedding adds the batch's mean: a structure's row depends on its neighbours in the batch."""

    def forward(self, batch) -> ModelOutput:
        out = super().forward(batch)
        g = out["graph_embedding"]
        return ModelOutput(y=out["y"], atom_embedding=out["atom_embedding"], graph_embedding=g + g.mean(0))


class GraphEmbeddingFromAbsoluteZ(_Base):
    def forward(self, batch) -> ModelOutput:
        out = super().forward(batch)
        z = torch.zeros_like(out["graph_embedding"][:, :1]).index_add(0, batch.atom_graph_index(),
                                                                        batch.positions[:, 2:3])
        return ModelOutput(y=out["y"], atom_embedding=out["atom_embedding"],
                           graph_embedding=torch.cat([out["graph_embedding"], z], dim=1))


class ConstantGraphEmbedding(_Base):
    def forward(self, batch) -> ModelOutput:
        out = super().forward(batch)
        return ModelOutput(y=out["y"], atom_embedding=out["atom_embedding"],
                           graph_embedding=torch.ones_like(out["graph_embedding"]))


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


class Unseeded(ToyEMTDataset):
    """Draws its structures from the global random state: a different dataset on every build."""

    def __init__(self, size: int = 8) -> None:
        super().__init__(size=size, seed=int(np.random.default_rng().integers(2**31)))


class DuplicateIds(ToyEMTDataset):
    def __init__(self, size: int = 8) -> None:
        super().__init__(size=size)

    def get(self, index: int) -> Structure:
        return dataclasses.replace(super().get(index), id=f"emt-{index // 2}")


class UnfilledPositions(ToyEMTDataset):
    """A reader that never filled the positions in: every atom at the origin."""

    def __init__(self, size: int = 8) -> None:
        super().__init__(size=size)

    def get(self, index: int) -> Structure:
        s = super().get(index)
        return dataclasses.replace(s, positions=np.zeros_like(s.positions))


class AtomOnAnotherImage(ToyEMTDataset):
    """In periodic structures, atom 1 sits on a periodic image of atom 0 (the same point of the crystal)."""

    def __init__(self, size: int = 8) -> None:
        super().__init__(size=size)

    def get(self, index: int) -> Structure:
        s = super().get(index)
        if not s.periodic:
            return s
        positions = s.positions.copy()
        positions[1] = positions[0] + s.cell[0]
        return dataclasses.replace(s, positions=positions)


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


class CollatesInFloat32(AdjacencyList):
    """Rounds every floating field (positions, edge shifts, cells) to float32 before the core casts."""

    def collate(self, items):
        batch = super().collate(items)
        return Batch({k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                      for k, v in batch.items()})


class SavesPlainTorchCheckpoints:
    """A hand-written backend: trains one epoch, then torch.save()s the task's state_dict
    without molplat's "molplat" section (heads, statistics, format)."""

    def __init__(self, **settings) -> None:
        self.settings = settings

    def fit(self, job) -> FitResult:
        task = AtomisticTask(job.build_model(), job.heads)
        optimizer = torch.optim.Adam(task.parameters(), lr=1e-3)
        loss = torch.zeros(())
        for batch in torch.utils.data.DataLoader(list(job.train), batch_size=8, collate_fn=job.collator):
            loss, _ = task.loss(batch, task(batch))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        folder = job.run_dir / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("best.ckpt", "last.ckpt"):
            torch.save({"state_dict": task.state_dict(), "epoch": 0}, folder / name)
        (job.run_dir / "metrics.csv").write_text(f"epoch,train_loss\n0,{float(loss.detach())}\n")
        return FitResult(folder / "best.ckpt", folder / "last.ckpt", epochs=1, best_val_loss=None)


class NeverReportsEpochs:
    """A backend without Lightning that writes real checkpoints and metrics.csv but never calls
    job.epoch_finished, so loggers would see no training curve."""

    def __init__(self, **settings) -> None:
        self.settings = settings

    def fit(self, job) -> FitResult:
        from molplat.rundir import write_checkpoint

        task = AtomisticTask(job.build_model(), job.heads)
        task.scaler.fit(job.statistics, job.heads)
        batch = job.collator(list(job.val))
        val_loss = float(task.loss(batch, task(batch))[0].detach())
        folder = job.run_dir / "checkpoints"
        for name in ("best.ckpt", "last.ckpt"):
            write_checkpoint(folder / name, task.state_dict(), job.heads, job.statistics, 0, val_loss)
        (job.run_dir / "metrics.csv").write_text(f"epoch,val_loss\n0,{val_loss}\n")
        return FitResult(folder / "best.ckpt", folder / "last.ckpt", epochs=1, best_val_loss=val_loss)


class ExplainerReturningADict:
    def run(self, context):
        return {"saliency": 1.0}


class SearcherWithAnUnknownBest:
    """Returns a best configuration the pipeline does not accept, so the run could not train it."""

    def run(self, context):
        return SearchResult(trials=[{"settings": {"model.width": 3}, "objective": 0.5}], best={"model.width": 3})


class SearcherTrainingOutsideItsTrialFolders:
    """Runs a real trial but records a folder that holds no trial."""

    def run(self, context):
        metrics = context.run_trial({"trainer.lr": 0.002}, "trials/000")
        return SearchResult(trials=[{"settings": {"trainer.lr": 0.002}, "objective": metrics["val_loss"],
                                     "directory": "trials/999"}], best={"trainer.lr": 0.002}, objective="val_loss")


class ExplainerListingAMissingFile:
    def run(self, context):
        return Explanation(metrics={"mean": 1.0}, files=["explain/nowhere.png"])



class DetachesTheShifts(_Base):
    """Periodic shifts cut off from autograd: forces are right, the stress (strain derivative) is not."""

    def forward(self, batch) -> ModelOutput:
        batch = Batch(batch)
        batch["edge_shift"] = batch["edge_shift"].detach()
        return super().forward(batch)
