"""The Lightning task every trainer backend fits: scaling, losses, forces, optimisers.

The model predicts in standardised units; this task turns its output into the
dataset's units (eV for energies) and, for energy+forces, differentiates the
energy with respect to the positions so forces are conservative by construction.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from molplat.representations.batch import Batch


class TargetScaler(nn.Module):
    """Affine map between standardised model outputs and target units.

    For energies the shift is per atom (energy ~ natoms * mean per-atom energy),
    so the model learns only what differs between structures.
    """

    def __init__(self, n_outputs: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_outputs))
        self.register_buffer("std", torch.ones(n_outputs))
        self.register_buffer("per_atom", torch.zeros((), dtype=torch.bool))

    def fit(self, y: np.ndarray, natoms: np.ndarray, per_atom: bool) -> None:
        y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if per_atom:
            mean = y.sum(axis=0) / natoms.sum()
            residual = y - natoms[:, None] * mean
        else:
            mean = y.mean(axis=0)
            residual = y - mean
        std = residual.std(axis=0)
        std[~np.isfinite(std) | (std < 1e-8)] = 1.0
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))
        self.per_atom.fill_(per_atom)

    def shift(self, natoms: torch.Tensor) -> torch.Tensor:
        if bool(self.per_atom):
            return natoms[:, None].to(self.mean.dtype) * self.mean
        return self.mean.expand(len(natoms), -1)

    def unscale(self, out: torch.Tensor, natoms: torch.Tensor) -> torch.Tensor:
        return out * self.std + self.shift(natoms)


class AtomisticTask(pl.LightningModule):
    def __init__(self, model: nn.Module, n_outputs: int, task: str = "property", loss: str = "mse",
                 forces_weight: float = 10.0, optimizer: str = "adamw", lr: float = 1e-3,
                 weight_decay: float = 0.0, lr_patience: int = 5, lr_factor: float = 0.5) -> None:
        super().__init__()
        self.model = model
        self.scaler = TargetScaler(n_outputs)
        self.task = task
        self.loss_name = loss
        self.forces_weight = forces_weight
        self.optimizer_name = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_patience = lr_patience
        self.lr_factor = lr_factor

    @property
    def with_forces(self) -> bool:
        return self.task == "energy_forces"

    def forward(self, batch: Batch, forces: bool | None = None) -> dict[str, torch.Tensor]:
        """Predictions in target units: ``y`` [G, T] and, for energy tasks (or ``forces=True``),
        ``forces`` [N, 3] as minus the gradient of the first output."""
        if not (self.with_forces if forces is None else forces):
            out = self.model(batch)
            return {"y": self.scaler.unscale(out["y"], batch["natoms"]), "y_scaled": out["y"]}
        with torch.enable_grad():
            positions = batch["positions"]
            if not positions.requires_grad:
                positions = positions.detach().requires_grad_(True)
                batch = Batch(batch)
                batch["positions"] = positions
            out = self.model(batch)
            energy = self.scaler.unscale(out["y"], batch["natoms"])
            grad = torch.autograd.grad(energy[:, 0].sum(), positions, create_graph=self.training)[0]
        return {"y": energy, "y_scaled": out["y"], "forces": batch.flat_atoms(-grad)}

    def _loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "l1":
            return torch.nn.functional.l1_loss(pred, target)
        return torch.nn.functional.mse_loss(pred, target)

    def _step(self, batch: Batch, stage: str) -> torch.Tensor:
        out = self(batch)
        target_scaled = (batch["y"] - self.scaler.shift(batch["natoms"])) / self.scaler.std
        loss = self._loss(out["y_scaled"].float(), target_scaled)
        n = batch["num_graphs"]
        mae = (out["y"].detach().float() - batch["y"]).abs().mean()
        self.log(f"{stage}_mae", mae, batch_size=n, on_epoch=True, on_step=False)
        if self.with_forces and "forces" in batch:
            forces_loss = self._loss(out["forces"].float() / self.scaler.std[0], batch["forces"] / self.scaler.std[0])
            loss = loss + self.forces_weight * forces_loss
            fmae = (out["forces"].detach().float() - batch["forces"]).abs().mean()
            self.log(f"{stage}_forces_mae", fmae, batch_size=n, on_epoch=True, on_step=False)
        self.log(f"{stage}_loss", loss.detach(), batch_size=n, on_epoch=True, on_step=False,
                 prog_bar=stage == "val")
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> dict[str, Any]:
        params = self.model.parameters()
        if self.optimizer_name == "sgd":
            opt = torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        elif self.optimizer_name == "adam":
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        elif self.optimizer_name == "adamw":
            opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        elif self.optimizer_name == "lamb":
            from molplat.training.lamb import Lamb

            opt = Lamb(params, lr=self.lr, weight_decay=self.weight_decay)
        else:  # validated earlier; kept for direct API use
            raise ValueError(f"unknown optimizer {self.optimizer_name!r}")
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=self.lr_factor, patience=self.lr_patience)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"}}
