"""The representation contract, written down so plugin authors and the SDK can check it."""
from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch

from molplat.representations.batch import Batch
from molplat.structure import Structure


class NeighborPairs(NamedTuple):
    """Directed pairs of a batch: ``center``/``neighbor`` index the valid atoms (flat order, [P]),
    ``vectors`` [P, 3] point from the centre to the neighbour's (periodic image) position."""

    center: torch.Tensor
    neighbor: torch.Tensor
    vectors: torch.Tensor


@runtime_checkable
class Representation(Protocol):
    """Turns one structure into arrays and a list of those into a Batch.

    ``featurize`` runs once per structure, before training, so it may be slow;
    ``collate`` runs every step and should be vectorised. Every Batch carries
    ``numbers``, ``positions``, ``natoms`` and ``num_graphs`` (dense layouts add
    ``atom_mask``). Floating tensors are float64: the core casts them to the training
    dtype once, so checks in float64 see the exact geometry. ``featurize`` returns numpy
    arrays (and plain numbers) only, so featurised structures can be stored on disk
    and read back memory-mapped. Representations that build neighbours also define
    ``cutoff`` and ``neighbor_pairs(batch)``, which the SDK compares with a brute-force
    search.
    """

    name: str

    def featurize(self, structure: Structure) -> dict[str, Any]: ...

    def collate(self, items: list[dict[str, Any]]) -> Batch: ...
