"""The modules PopTorch compiles: the core's task on one fixed-size batch, tensors in, tensors out.

PopTorch executors take tensors only and split the first axis of every input among
device iterations, replicas and accumulated micro-batches. So each fixed-size batch is
given a leading axis of length 1 (``stack_batches`` joins several along it), the step
removes it, rebuilds the ``Batch`` with the fixed graph count as a constant, runs
``molplat.training.AtomisticTask`` and returns per-batch outputs with that axis again.
The training step hands its loss to PopTorch through ``poptorch.identity_loss``.
"""
from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import torch
from torch import nn

from molplat.representations.batch import Batch

#: what the step returns, in order (the loss last)
OUTPUTS = ("y", "forces", "atom_y", "real_graphs", "loss")


class FixedSizeStep(nn.Module):
    """One fixed-size batch through the task: predictions, number of real graphs, loss."""

    def __init__(self, task: nn.Module, keys: Sequence[str], num_graphs: int, poptorch: ModuleType | None = None) -> None:
        super().__init__()
        self.task = task
        self.keys = tuple(keys)
        self.num_graphs = int(num_graphs)
        self.poptorch = poptorch  # set for the training step: the loss goes through identity_loss

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        batch = Batch({key: t.squeeze(0) for key, t in zip(self.keys, tensors)})
        batch["num_graphs"] = self.num_graphs
        out = self.task(batch)
        loss, _ = self.task.loss(batch, out)
        empty = out["y"].new_zeros((1, 0))
        results = [out["y"].unsqueeze(0), out.get("forces", empty).unsqueeze(0), out.get("atom_y", empty).unsqueeze(0),
                   batch["graphs_mask"].sum().reshape(1)]
        if self.poptorch is not None:
            loss = self.poptorch.identity_loss(loss, reduction="mean")
        return (*results, loss)


def batch_keys(batch: Batch) -> list[str]:
    """The tensor fields of a padded batch, in a fixed order (the step's positional inputs)."""
    return sorted(k for k, v in batch.items() if isinstance(v, torch.Tensor))


def stack_batches(batches: Sequence[Batch], keys: Sequence[str]) -> list[torch.Tensor]:
    """Fixed-size batches joined along a new first axis, one tensor per key, for one executor call."""
    return [torch.stack([b[key] for b in batches]) for key in keys]


def split_outputs(outputs: Sequence[torch.Tensor]) -> dict[str, Any]:
    """The executor's outputs by name; every entry has one row per fixed-size batch."""
    return dict(zip(OUTPUTS, outputs))
