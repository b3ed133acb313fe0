"""Featurised samples, the labels they carry, and their collation into batches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from molplat.models.heads import Heads
from molplat.representations.batch import Batch
from molplat.structure import Structure


@dataclass
class Sample:
    """One structure turned into model input, with its labels in the dataset's units.

    ``y`` [T] holds the graph-level targets, ``atom_y`` [n, A] the per-atom ones and
    ``forces`` [n, 3] the forces in eV/Å, each in the order of the run's heads.
    """

    id: str
    features: dict[str, Any]
    y: np.ndarray
    forces: np.ndarray | None = None
    atom_y: np.ndarray | None = None

    @property
    def natoms(self) -> int:
        return len(self.features["numbers"])


def labels_of(structure: Structure, heads: Heads) -> tuple[np.ndarray, np.ndarray | None]:
    """The graph targets [T] and per-atom targets [n, A] of a structure, in head order (NaN when absent)."""
    y = np.array([structure.targets.get(h.name, np.nan) for h in heads.graph], dtype=np.float64)
    atom_y = None
    if heads.atom:
        n = len(structure)
        atom_y = np.stack([structure.atom_targets.get(h.name, np.full(n, np.nan)) for h in heads.atom], axis=1)
    return y, atom_y


def is_labelled(structure: Structure, heads: Heads) -> bool:
    """Whether every target of the run (and the forces, when trained) has finite values."""
    y, atom_y = labels_of(structure, heads)
    if not np.isfinite(y).all() or (atom_y is not None and not np.isfinite(atom_y).all()):
        return False
    if heads.forces:
        return structure.forces is not None and bool(np.isfinite(structure.forces).all())
    return True


def make_sample(structure: Structure, representation: Any, heads: Heads) -> Sample:
    """Featurise one structure and attach its labels."""
    y, atom_y = labels_of(structure, heads)
    forces = structure.forces if heads.forces else None
    return Sample(structure.id, representation.featurize(structure), y, forces, atom_y)


def unlabelled_sample(structure: Structure, representation: Any, heads: Heads) -> Sample:
    """A sample to predict on: features only, labels NaN."""
    y = np.full(heads.n_graph, np.nan)
    atom_y = np.full((len(structure), heads.n_atom), np.nan) if heads.n_atom else None
    return Sample(structure.id, representation.featurize(structure), y, None, atom_y)


class SampleCollator:
    """Collates samples with a representation, adding ``y`` [G, T], ``atom_y`` [N, A] and ``forces`` [N, 3].

    Representations build batches in float64 (full precision); the collator casts every
    floating tensor to ``dtype`` once, so float64 checks see exact geometry and training
    runs in float32. Target labels stay float64: a total energy of -11,000 eV keeps its
    digits, and the task standardises it in float64 before comparing.
    """

    def __init__(self, representation: Any, dtype: torch.dtype = torch.float32) -> None:
        self.representation = representation
        self.dtype = dtype

    def __call__(self, samples: list[Sample]) -> Batch:
        batch = Batch({k: _cast(v, self.dtype) for k, v in
                       self.representation.collate([s.features for s in samples]).items()})
        batch["y"] = torch.from_numpy(np.stack([np.asarray(s.y, dtype=np.float64) for s in samples]))
        if all(s.atom_y is not None for s in samples):
            batch["atom_y"] = torch.from_numpy(np.concatenate([s.atom_y for s in samples]).astype(np.float64))
        if all(s.forces is not None for s in samples):
            batch["forces"] = torch.from_numpy(np.concatenate([s.forces for s in samples])).to(self.dtype)
        return batch


def _cast(value: Any, dtype: torch.dtype) -> Any:
    """A floating tensor in ``dtype``; cast by numpy, which on a busy machine beats torch's threaded copy."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.dtype == dtype:
        return value
    if value.device.type == "cpu" and not value.requires_grad:
        return torch.from_numpy(value.numpy().astype(torch.empty((), dtype=dtype).numpy().dtype))
    return value.to(dtype)


class SampleList(torch.utils.data.Dataset):
    """Featurised samples held in memory."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]
