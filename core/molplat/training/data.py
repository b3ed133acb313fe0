"""Featurised samples and their collation into labelled batches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from molplat.representations.batch import Batch


@dataclass
class Sample:
    """One structure turned into model input, with its labels."""

    id: str
    features: dict[str, Any]
    y: np.ndarray  # [T] target values in the dataset's units
    forces: np.ndarray | None = None  # [n, 3] eV/Å


class SampleCollator:
    """Collates samples with a representation, adding ``y`` [G, T] and flat ``forces`` [N, 3]."""

    def __init__(self, representation: Any) -> None:
        self.representation = representation

    def __call__(self, samples: list[Sample]) -> Batch:
        batch = self.representation.collate([s.features for s in samples])
        batch["y"] = torch.from_numpy(np.stack([s.y for s in samples]).astype(np.float32))
        if all(s.forces is not None for s in samples):
            batch["forces"] = torch.from_numpy(np.concatenate([s.forces for s in samples]).astype(np.float32))
        return batch


class SampleList(torch.utils.data.Dataset):
    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]
