"""Base class of every molplat model.

A model maps a Batch to per-structure predictions in standardised units; the
trainer owns target scaling and computes forces as minus the gradient of the
energy with respect to ``batch.positions``, so a model only has to be a smooth
function of the positions it is given.
"""
from __future__ import annotations

from typing import ClassVar, TypedDict

import torch
from torch import nn


class ModelOutput(TypedDict):
    y: torch.Tensor  # [G, n_outputs], per structure
    atom_embedding: torch.Tensor  # [N, F], valid atoms in batch order
    graph_embedding: torch.Tensor  # [G, F]


class AtomisticModel(nn.Module):
    """Subclasses set ``accepts`` (representation names) and implement ``forward``.

    The factory is called with the model's validated settings plus
    ``n_outputs`` (the number of targets), and must build all parameters in
    ``__init__`` so that a state_dict saved after training loads into a fresh
    instance built from the same settings.
    """

    accepts: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_outputs: int = 1) -> None:
        super().__init__()
        self.n_outputs = n_outputs

    def forward(self, batch) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError
