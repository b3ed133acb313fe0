"""The ``qm9`` dataset: QM9 molecules as molplat Structures, from a local cache.

The first use parses qm9pack's CSV files once (a few seconds) and caches the
packed arrays; later uses read only the cached .npz of the requested selection.
"""
from __future__ import annotations

import logging
import os
import time

import numpy as np

from molplat.data import Dataset
from molplat.errors import ValidationError
from molplat.structure import Structure, Target
from molplat_qm9 import cache, selection, source
from molplat_qm9.plugin import CITATION
from molplat_qm9.targets import ATOM_COLUMNS, COLUMNS, TARGETS

log = logging.getLogger(__name__)

DEV_SIZE = 1000


def load_arrays(subset: str = "dev", size: int | None = None,
                cache_dir: str | os.PathLike | None = None) -> source.QM9Arrays:
    """The packed molecules of a selection, from the cache when possible."""
    folder = source.data_dir()
    fingerprint = source.fingerprint(folder)
    root = cache.cache_root(cache_dir)
    names = [c.name for c in COLUMNS]
    atom_names = [c.name for c in ATOM_COLUMNS]
    if size is not None:
        name, count = f"size{size}", size
    elif subset == "dev":
        name, count = "dev", DEV_SIZE
    else:
        name, count = "full", None

    wanted = cache.cache_path(root, name, fingerprint)
    arrays = cache.load(wanted, names, atom_names)
    if arrays is not None:
        return arrays
    full_path = cache.cache_path(root, "full", fingerprint)
    full = cache.load(full_path, names, atom_names)
    if full is None:
        start = time.perf_counter()
        full = source.parse(folder)
        log.info("parsed %d QM9 molecules from %s in %.1f s", len(full), folder, time.perf_counter() - start)
        cache.save(full_path, full)
    if count is None:
        return full
    arrays = full.take(selection.draw(full.ids, count))
    cache.save(wanted, arrays)
    return arrays


class QM9(Dataset):
    """QM9 (Ramakrishnan et al. 2014): 130,831 molecules with up to 9 heavy atoms (C, N, O, F).

    Every structure carries all 21 molecular targets (``Structure.targets``) and the
    per-atom Mulliken charges (``Structure.atom_targets``); energies are in eV,
    geometries in Å. The total energies and the ZPVE are extensive; the polarizability
    tensor components are listed but not usable as targets (see ``targets.py``).
    """

    targets: dict[str, Target] = TARGETS
    default_target = "gap"
    citation = CITATION

    def __init__(self, subset: str = "dev", size: int | None = None, cache_dir: str | None = None) -> None:
        if subset not in ("dev", "full"):
            raise ValidationError(f"[dataset] subset: {subset!r} is not allowed; use 'dev' or 'full'")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValidationError(f"[dataset] size: {size!r} must be a positive integer, or left out")
        self.subset = subset
        self.size = size
        self._arrays = load_arrays(subset, size, cache_dir)
        self._names = self._arrays.target_names.tolist()
        self._atom_names = self._arrays.atom_target_names.tolist()

    def __len__(self) -> int:
        return len(self._arrays)

    def get(self, i: int) -> Structure:
        a = self._arrays
        start, stop = a.offsets[i], a.offsets[i + 1]
        return Structure(
            numbers=a.numbers[start:stop],
            positions=a.positions[start:stop],
            targets=dict(zip(self._names, a.targets[i].tolist())),
            id=str(a.ids[i]),
            atom_targets={name: a.atom_targets[start:stop, k] for k, name in enumerate(self._atom_names)},
        )

    @property
    def ids(self) -> list[str]:
        return self._arrays.ids.tolist()

    def values(self, target: str) -> np.ndarray:
        """All values of one target, in dataset order (for statistics without building Structures): one per
        molecule, or for a per-atom target one per atom, molecule after molecule."""
        if target in self._atom_names:
            return self._arrays.atom_targets[:, self._atom_names.index(target)].copy()
        if target not in self._names:
            known = ", ".join(self._names + self._atom_names)
            raise ValidationError(f"{target!r} is not a QM9 target; targets: {known}")
        return self._arrays.targets[:, self._names.index(target)].copy()
