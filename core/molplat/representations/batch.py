"""A batch of model inputs: a dict of tensors with attribute access."""
from __future__ import annotations

from typing import Any

import torch


class Batch(dict):
    """Tensors of a collated batch, keyed by name (``batch.positions`` == ``batch["positions"]``).

    Every representation provides ``numbers``, ``positions``, ``natoms`` (atoms per
    structure) and ``num_graphs``. Dense representations add ``atom_mask`` so that
    per-atom tensors can be flattened to the order of the valid atoms.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(f"batch has no field {name!r}; fields: {sorted(self)}") from exc

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def to(self, device: torch.device | str) -> "Batch":
        return Batch({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.items()})

    @property
    def dense(self) -> bool:
        return "atom_mask" in self

    def flat_atoms(self, per_atom: torch.Tensor) -> torch.Tensor:
        """Per-atom values in the order of valid atoms ([N, ...]), whatever the layout."""
        return per_atom[self["atom_mask"]] if self.dense else per_atom

    def atom_graph_index(self) -> torch.Tensor:
        """Index of the structure each valid atom belongs to, [N]."""
        if "batch" in self:
            return self["batch"]
        return torch.repeat_interleave(torch.arange(self["num_graphs"], device=self["natoms"].device), self["natoms"])
