"""A PCQM4Mv2-sized data set made from QM9: every molecule repeated with seeded jitter.

Structure ``i`` is QM9 molecule ``i % 130831`` with its positions moved by a Gaussian of
``sigma`` Å drawn from a generator seeded with ``(seed, i)``, so the same index always
gives the same geometry and the set holds nothing beyond QM9 itself (about 30 MB).
Used by ``data_loading.py`` to measure loading 3.9 million graphs.
"""
from __future__ import annotations

import numpy as np

from molplat.data import Dataset
from molplat.structure import Structure
from molplat_qm9.dataset import QM9


class RepeatedQM9(Dataset):
    """QM9 (all 130,831 molecules) repeated ``copies`` times, every copy jittered."""

    targets = QM9.targets
    default_target = QM9.default_target
    citation = QM9.citation

    def __init__(self, copies: int = 30, sigma: float = 0.01, seed: int = 0) -> None:
        self.base = QM9(subset="full")
        self.copies, self.sigma, self.seed = copies, sigma, seed

    def __len__(self) -> int:
        return self.copies * len(self.base)

    def get(self, i: int) -> Structure:
        copy, k = divmod(i, len(self.base))
        molecule = self.base.get(k)
        jitter = np.random.default_rng((self.seed, i)).normal(0.0, self.sigma, molecule.positions.shape)
        return Structure(numbers=molecule.numbers, positions=molecule.positions + jitter,
                         targets=molecule.targets, id=f"{molecule.id}#{copy}")
