"""The task every trainer backend fits, in plain torch: scaling, heads, losses and forces.

The model predicts in standardised units; this task turns its outputs into the
dataset's units and, for energy+forces, differentiates the energy with respect to the
positions, so forces are conservative by construction. It imports no Lightning:
``molplat.load_model`` and ``molplat predict`` rebuild it from a checkpoint alone, and
every backend (Lightning's CPU and DDP, PopTorch, a third party's) trains the same
function.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from molplat.data.statistics import TrainingStatistics
from molplat.models.heads import Head, Heads
from molplat.representations.batch import Batch
from molplat.structure import MAX_ATOMIC_NUMBER

_Z = MAX_ATOMIC_NUMBER + 1


class TargetScaler(nn.Module):
    """Affine maps between standardised model outputs and target units, one per head.

    Graph heads: ``value = out * scale + shift`` where the shift is the training mean,
    or, for extensive heads, the sum of per-element reference values over the atoms
    (so the model learns only what the composition does not explain, and two distant
    molecules add up). Atom heads: the shift is the element's training mean.
    Classification heads are left as logits (shift 0, scale 1). Everything here is float64:
    a total energy of -11,000 eV has a resolution of 1e-3 eV in float32.
    """

    def __init__(self, heads: Heads) -> None:
        super().__init__()
        ng, na = heads.n_graph, heads.n_atom
        double = torch.float64
        self.register_buffer("graph_reference", torch.zeros(_Z, ng, dtype=double))
        self.register_buffer("graph_shift", torch.zeros(ng, dtype=double))
        self.register_buffer("graph_scale", torch.ones(ng, dtype=double))
        self.register_buffer("atom_reference", torch.zeros(_Z, na, dtype=double))
        self.register_buffer("atom_scale", torch.ones(na, dtype=double))

    def fit(self, statistics: TrainingStatistics, heads: Heads) -> None:
        for k, head in enumerate(heads.graph):
            stats = statistics.targets[head.name]
            if head.classification:
                continue
            if head.extensive:
                for z, value in stats.references.items():
                    self.graph_reference[int(z), k] = value
            else:
                self.graph_shift[k] = stats.mean
            self.graph_scale[k] = stats.residual_std
        for k, head in enumerate(heads.atom):
            stats = statistics.targets[head.name]
            if head.classification:
                continue
            for z, value in stats.references.items():
                self.atom_reference[int(z), k] = value
            self.atom_scale[k] = stats.residual_std

    def graph_offset(self, batch: Batch) -> torch.Tensor:
        """The shift of every graph head for every structure, [G, T]."""
        numbers = batch.flat_atoms(batch["numbers"])
        per_atom = self.graph_reference.index_select(0, numbers)
        summed = per_atom.new_zeros(int(batch["num_graphs"]), per_atom.shape[1])
        summed.index_add_(0, batch.atom_graph_index(), per_atom)
        return summed + self.graph_shift

    def atom_offset(self, batch: Batch) -> torch.Tensor:
        return self.atom_reference.index_select(0, batch.flat_atoms(batch["numbers"]))


def _regression_loss(name: str, pred: torch.Tensor, target: torch.Tensor,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    if name == "l1":
        values = F.l1_loss(pred, target, reduction="none")
    elif name == "huber":
        values = F.huber_loss(pred, target, delta=1.0, reduction="none")
    else:
        values = F.mse_loss(pred, target, reduction="none")
    return masked_mean(values, mask)


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The mean over the real rows of ``values`` (``mask`` [rows], True = real; None: every row).

    Multiplies by the mask instead of indexing with it, so the shapes never depend on the
    data: a fixed-size padded batch (PopTorch, ``torch.compile``) keeps one shape, and the
    mean equals that of the unpadded batch.
    """
    if mask is None:
        return values.mean()
    real = mask.bool().reshape(mask.shape + (1,) * (values.dim() - mask.dim()))
    per_row = math.prod(values.shape[mask.dim():])
    kept = torch.where(real, values, torch.zeros((), dtype=values.dtype, device=values.device))  # NaN-safe
    return kept.sum() / (mask.to(values.dtype).sum() * per_row).clamp_min(1.0)


def padding_masks(batch: Batch) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The masks of a fixed-size padded batch (``graphs_mask`` [G], ``nodes_mask`` [N]), or None, None."""
    return batch.get("graphs_mask"), batch.get("nodes_mask")


class AtomisticTask(nn.Module):
    """A model with its heads and scaler: predictions in units, and the training loss.

    ``forces_loss`` is the loss of the force term (mse, l1 or huber, on forces divided
    by the energy scale) and ``forces_weight`` its weight against the target losses,
    whose weights are normalised to sum to one (HydraGNN's multi-head loss).
    """

    def __init__(self, model: nn.Module, heads: Heads, forces_weight: float = 10.0, forces_loss: str = "mse") -> None:
        super().__init__()
        self.model = model
        self.heads = heads
        self.scaler = TargetScaler(heads)
        self.forces_weight = forces_weight
        self.forces_loss = forces_loss
        weights = torch.tensor([h.weight for h in heads.graph + heads.atom], dtype=torch.float64)
        self._weights = (weights / weights.sum()).tolist() if len(weights) and float(weights.sum()) > 0 else []

    @property
    def with_forces(self) -> bool:
        return self.heads.forces

    def forward(self, batch: Batch, forces: bool | None = None) -> dict[str, torch.Tensor]:
        """Predictions in target units.

        ``y`` [G, T] (probabilities for classification heads), ``atom_y`` [N, A] when
        the run has per-atom heads, and, when the run trains forces (or ``forces=True``),
        ``forces`` [N, 3] as minus the gradient of the first graph head. ``y_raw`` and
        ``atom_y_raw`` are the model's standardised outputs (logits for classification).
        """
        if not (self.with_forces if forces is None else forces):
            return self._predict(batch, self.model(batch))
        with torch.enable_grad():
            positions = batch["positions"]
            if not positions.requires_grad:
                batch = Batch(batch)
                batch["positions"] = positions = positions.detach().requires_grad_(True)
            out = self._predict(batch, self.model(batch))
            grad = torch.autograd.grad(out["y"][:, 0].sum(), positions, create_graph=self.training)[0]
        out["forces"] = batch.flat_atoms(-grad)
        return out

    def _predict(self, batch: Batch, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {"y_raw": raw["y"]}
        out["y"] = self._to_units(raw["y"], self.scaler.graph_scale, self.scaler.graph_offset(batch), self.heads.graph)
        if self.heads.n_atom:
            if "atom_y" not in raw:
                raise RuntimeError("the run has per-atom targets but the model returned no 'atom_y'")
            out["atom_y_raw"] = raw["atom_y"]
            out["atom_y"] = self._to_units(raw["atom_y"], self.scaler.atom_scale, self.scaler.atom_offset(batch),
                                           self.heads.atom)
        return out

    @staticmethod
    def _to_units(raw: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor, heads: tuple[Head, ...]) -> torch.Tensor:
        """Values in units, in float64 (the labels' precision) whatever the model's dtype."""
        raw = raw.to(torch.float64)
        value = raw * scale + offset
        classes = [k for k, h in enumerate(heads) if h.classification]
        if classes:
            probabilities = torch.sigmoid(raw)
            mask = torch.zeros(len(heads), dtype=torch.bool, device=raw.device)
            mask[classes] = True
            value = torch.where(mask, probabilities, value)
        return value

    def loss(self, batch: Batch, out: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted training loss and its parts (per head, and ``forces``).

        A fixed-size padded batch carries ``graphs_mask`` [G] and ``nodes_mask`` [N] (True =
        real): every mean then runs over the real graphs and atoms only, so the loss and its
        gradients equal those of the same structures unpadded.
        """
        parts: dict[str, torch.Tensor] = {}
        total = out["y_raw"].new_zeros(())
        columns = [("graph", k, h) for k, h in enumerate(self.heads.graph)] + \
                  [("atom", k, h) for k, h in enumerate(self.heads.atom)]
        graph_offset = self.scaler.graph_offset(batch) if self.heads.graph else None
        atom_offset = self.scaler.atom_offset(batch) if self.heads.atom else None
        graphs_mask, nodes_mask = padding_masks(batch)
        for weight, (level, k, head) in zip(self._weights, columns):
            if level == "graph":
                raw, target = out["y_raw"][:, k], batch["y"][:, k]
                offset, scale, mask = graph_offset[:, k], self.scaler.graph_scale[k], graphs_mask
            else:
                raw, target = out["atom_y_raw"][:, k], batch["atom_y"][:, k]
                offset, scale, mask = atom_offset[:, k], self.scaler.atom_scale[k], nodes_mask
            raw = raw.float()
            if head.classification:
                part = masked_mean(F.binary_cross_entropy_with_logits(raw, target.float(), reduction="none"), mask)
            else:  # standardised in float64, then compared in the model's precision
                part = _regression_loss(head.loss, raw, ((target.double() - offset) / scale).float(), mask)
            parts[head.name] = part
            total = total + weight * part
        if self.with_forces and "forces" in batch and "forces" in out:
            scale = self.scaler.graph_scale[0]  # a tensor, not float(): no host sync inside a compiled step
            part = _regression_loss(self.forces_loss, (out["forces"] / scale).float(),
                                    (batch["forces"] / scale).float(), nodes_mask)
            parts["forces"] = part
            total = total + self.forces_weight * part
        return total, parts

    def errors(self, batch: Batch, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Mean absolute errors in units, per regression head and for the forces (for logging)."""
        result: dict[str, torch.Tensor] = {}
        graphs_mask, nodes_mask = padding_masks(batch)
        for k, head in enumerate(self.heads.graph):
            if not head.classification:
                result[head.name] = masked_mean((out["y"][:, k].detach() - batch["y"][:, k]).abs(), graphs_mask).float()
        for k, head in enumerate(self.heads.atom):
            if not head.classification:
                result[head.name] = masked_mean((out["atom_y"][:, k].detach() - batch["atom_y"][:, k]).abs(),
                                                nodes_mask).float()
        if "forces" in out and "forces" in batch:
            result["forces"] = masked_mean((out["forces"].detach() - batch["forces"]).abs(), nodes_mask)
        return result


def build_task(model: nn.Module, heads: Heads, statistics: TrainingStatistics | None, settings: dict[str, Any],
               standardize: bool | None = None) -> AtomisticTask:
    """The task for ``model`` with the trainer settings, its scaler fitted on ``statistics``."""
    task = AtomisticTask(model, heads, forces_weight=float(settings.get("forces_weight", 10.0)),
                         forces_loss=forces_loss_of(settings))
    if statistics is not None and (settings.get("standardize", True) if standardize is None else standardize):
        task.scaler.fit(statistics, heads)
    return task


def forces_loss_of(settings: dict[str, Any]) -> str:
    """The force term uses the trainer's regression loss (mse when the targets are classified)."""
    loss = settings.get("loss", "mse")
    return loss if loss in ("mse", "l1", "huber") else "mse"
