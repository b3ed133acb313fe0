"""Base class for datasets: a sequence of Structures with documented targets."""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from molplat.errors import ValidationError
from molplat.structure import Structure, Target


def seeded_split(n: int, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split ``range(n)`` into disjoint index arrays of the given fractions.

    The same ``n``, fractions and seed always give the same split, on any machine.
    The last split takes the remainder so that every index is used once.
    """
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValidationError(f"split fractions {list(fractions)} must be non-negative and sum to 1")
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.floor(np.cumsum(fractions)[:-1] * n).astype(int)
    return [np.sort(part) for part in np.split(order, bounds)]


class Dataset(Sequence[Structure]):
    """A finite, indexable collection of structures.

    Subclasses set ``targets`` (every property they can label, with units),
    ``default_target`` and ``citation``, and implement ``__len__`` and ``get``.
    Indexing (negative indices, range and type checks) and ``splits`` are shared
    so every dataset behaves and splits the same reproducible way.
    """

    targets: ClassVar[dict[str, Target]] = {}
    citation: ClassVar[str] = ""
    default_target: ClassVar[str] = ""

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def get(self, index: int) -> Structure:  # pragma: no cover - abstract
        """The structure at ``index``, already checked to lie in ``range(len(self))``."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> Structure:  # type: ignore[override]
        n = len(self)
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"{type(self).__name__} indices are integers, got {type(index).__name__}")
        i = int(index) + n if index < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError(f"index {index} is out of range for {type(self).__name__} of {n} structures")
        return self.get(i)

    def fingerprint(self) -> str:
        """A string that changes when the data behind the dataset changes (file sizes, modification
        times, a version); part of the key of a preprocessed store, so a stale store is rebuilt.
        Datasets that read files the user may edit override it; the default is the settings alone."""
        return ""

    def structures(self) -> list[Structure]:
        return [self[i] for i in range(len(self))]

    def splits(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, np.ndarray]:
        names = ("train", "val", "test")
        if len(fractions) != 3:
            raise ValidationError(f"split needs three fractions (train, val, test), got {list(fractions)}")
        return dict(zip(names, seeded_split(len(self), fractions, seed)))
