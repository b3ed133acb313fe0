"""Where training samples come from: memory, featurisation on the fly, or the store.

Every source is a ``torch.utils.data.Dataset`` of ``molplat.data.Sample`` over index
arrays of a dataset, so splits never copy structures and DataLoader workers can
featurise or read in parallel.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from molplat.data.samples import Sample, make_sample
from molplat.models.heads import Heads
from molplat.structure import Structure


class StructureView(Sequence[Structure]):
    """The structures of a dataset at ``indices``, read on access (a split without copies)."""

    def __init__(self, dataset: Any, indices: np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return StructureView(self.dataset, self.indices[index])
        return self.dataset[int(self.indices[index])]

    def __iter__(self) -> Iterator[Structure]:
        for i in self.indices:
            yield self.dataset[int(i)]


class FeaturizingSamples(torch.utils.data.Dataset):
    """Featurises ``dataset[indices[i]]`` when asked: nothing is held, workers share the work."""

    def __init__(self, dataset: Any, indices: np.ndarray, representation: Any, heads: Heads) -> None:
        self.dataset, self.representation, self.heads = dataset, representation, heads
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Sample:
        return make_sample(self.dataset[int(self.indices[index])], self.representation, self.heads)


class StoreSamples(torch.utils.data.Dataset):
    """Samples of a ``molplat.data.store.SampleStore`` at ``indices``, read memory-mapped."""

    def __init__(self, store: Any, indices: np.ndarray) -> None:
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Sample:
        return self.store[int(self.indices[index])]


def _as_list(items: list[Any]) -> list[Any]:
    return items


def iterate(source: torch.utils.data.Dataset, num_workers: int = 0, desc: str = "", show_progress: bool = False,
            chunk: int = 256) -> Iterator[Any]:
    """Every item of ``source`` in order, produced by ``num_workers`` processes, with a progress bar."""
    from tqdm.auto import tqdm

    loader = torch.utils.data.DataLoader(source, batch_size=chunk, shuffle=False, num_workers=num_workers,
                                         collate_fn=_as_list)
    with tqdm(total=len(source), desc=desc, disable=not show_progress or len(source) < 2000, leave=False,
              unit="structure") as bar:
        for items in loader:
            bar.update(len(items))
            yield from items
