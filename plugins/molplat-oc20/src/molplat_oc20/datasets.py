"""The ``oc20_s2ef`` and ``oc20_is2re`` datasets.

With ``path`` they read a user's OC20 files (published.py); without it they hold the EMT dev
set (devset.py), generated once and cached. Either way the frames are packed (frames.py)
and cached as a checksummed .npz, keyed by the settings and, for user files, by every
file's name, size and modification time, so a second run reads no extxyz at all.

Per-atom OC20 labels travel with each structure: ``tags`` (0 subsurface, 1 surface, 2
adsorbate) and ``fixed`` (1 where the relaxation held the atom in place) are per-atom
entries of ``Structure.atom_targets`` (molplat's Structure has no other per-atom field),
declared ``usable=False`` so that no run learns them; ``Structure.to_atoms()`` writes them
into ``arrays`` and ``dataset.tags(i)`` / ``dataset.fixed(i)`` return them as integers.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from molplat.data import Dataset, seeded_split
from molplat.errors import ValidationError
from molplat.files import cache_dir as molplat_cache_dir
from molplat.structure import Structure, Target
from molplat_oc20 import devset, frames as packed, published
from molplat_oc20.plugin import CITATION, MAX_STEPS, MAX_SYSTEMS

log = logging.getLogger(__name__)

#: bump when the packed layout changes (part of every cache key)
CACHE_VERSION = "1"
ENERGY_UNITS = "eV"

ATOM_LABELS = {
    "tags": Target("tags", "1", "OC20 tag of each atom (0 fixed subsurface slab, 1 surface, 2 adsorbate); a label "
                   "for analysis and export, not a learning target", level="atom", usable=False),
    "fixed": Target("fixed", "1", "1 where the relaxation held the atom fixed (ASE FixAtoms / extxyz move_mask F), "
                    "else 0; a label for analysis and export, not a learning target", level="atom", usable=False),
}


def _cache_file(cache_dir: str | os.PathLike | None, kind: str, key: str) -> Path:
    digest = hashlib.sha256(f"{CACHE_VERSION}|{key}".encode()).hexdigest()[:16]
    return molplat_cache_dir(cache_dir, "oc20") / f"{kind}-{digest}.npz"


def _files_key(root: Path, pattern: str, extra: str) -> str:
    """Names, sizes and modification times of the files under ``root`` (and the S2EF .txt beside each)."""
    files = published.find_files(root, pattern, "OC20 files")
    parts = [extra, str(root.resolve()), pattern]
    for path in files:
        for f in (path, path.with_suffix(".txt")):
            if f.is_file():
                stat = f.stat()
                parts.append(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def dev_frames(systems: int, seed: int, max_steps: int, cache_dir: str | os.PathLike | None) -> packed.Frames:
    """Every frame of the EMT dev set's relaxations, from the cache when possible."""
    import ase

    key = f"dev|{devset.VERSION}|{systems}|{seed}|{max_steps}|ase {ase.__version__}"
    path = _cache_file(cache_dir, "dev", key)
    cached = packed.load(path, "OC20 dev-set cache")
    if cached is not None:
        return cached
    started = time.perf_counter()
    frames = devset.generate(systems, seed, max_steps)
    packed.save(path, frames)
    log.info("oc20: relaxed %d EMT systems (%d frames) in %.1f s; cached in %s", systems, len(frames),
             time.perf_counter() - started, path)
    return frames


def _check_dev(systems: int, seed: int, max_steps: int) -> None:
    for name, value, low, high in (("systems", systems, 1, min(MAX_SYSTEMS, len(devset.all_systems()))),
                                   ("seed", seed, 0, 2**31 - 1), ("max_steps", max_steps, 1, MAX_STEPS)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationError(f"[dataset] {name}: {value!r} must be an integer from {low} to {high}")


class _OC20(Dataset):
    """What both datasets share: packed frames, per-atom labels, splits by system."""

    citation = CITATION
    _frames: packed.Frames
    split_by = "system"
    _files_fingerprint = ""

    def __len__(self) -> int:
        return len(self._frames)

    def get(self, i: int) -> Structure:
        f = self._frames
        atoms = f.atoms_of(i)
        pbc = f.pbc[i]
        forces = f.forces[atoms]
        return Structure(
            numbers=f.numbers[atoms], positions=f.positions[atoms].copy(),
            cell=f.cells[i].copy() if pbc.any() else None, pbc=pbc,
            forces=None if np.isnan(forces).any() else forces.copy(),
            targets={name: float(f.values[name][i]) for name in self._graph_names},
            id=str(f.ids[i]),
            atom_targets={"tags": f.tags[atoms].astype(np.float64), "fixed": f.fixed[atoms].astype(np.float64)},
        )

    def tags(self, i: int) -> np.ndarray:
        """OC20 tags of structure ``i``: 0 subsurface, 1 surface, 2 adsorbate."""
        return self._frames.tags[self._frames.atoms_of(int(i))].astype(np.int64)

    def fixed(self, i: int) -> np.ndarray:
        """Whether each atom of structure ``i`` was held fixed."""
        return self._frames.fixed[self._frames.atoms_of(int(i))].copy()

    def system(self, i: int) -> str:
        """The adsorbate+slab system structure ``i`` belongs to (OC20's ``random<N>`` id for user files)."""
        return str(self._frames.systems[int(i)])

    @property
    def ids(self) -> list[str]:
        return self._frames.ids.tolist()

    def fingerprint(self) -> str:
        return self._files_fingerprint

    def splits(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, np.ndarray]:
        """Seeded splits of whole systems (every frame of a relaxation in one split), or of frames."""
        if self.split_by == "frame":
            return super().splits(fractions, seed)
        if len(fractions) != 3:
            raise ValidationError(f"split needs three fractions (train, val, test), got {list(fractions)}")
        names, group = np.unique(self._frames.systems, return_inverse=True)
        parts = seeded_split(len(names), fractions, seed)
        return {name: np.flatnonzero(np.isin(group, part)) for name, part in zip(("train", "val", "test"), parts)}


class OC20S2EF(_OC20):
    """OC20 S2EF (Chanussot et al. 2021): frames of adsorbate+slab relaxations with energies and forces.

    ``adsorption_energy`` (the default) is the frame's total energy minus its reference energy
    (clean slab + gas-phase references of the adsorbate's atoms): what OC20's S2EF models
    learn and are scored on. ``total_energy`` is the raw energy (DFT for user files, EMT for
    the dev set). Forces are eV/Å on every atom, fixed ones included.
    """

    targets: ClassVar[dict[str, Target]] = {
        "adsorption_energy": Target("adsorption_energy", ENERGY_UNITS, "total energy minus the frame's reference "
                                    "energy (relaxed clean slab + gas-phase references of the adsorbate atoms), as "
                                    "OC20's S2EF models learn it"),
        "total_energy": Target("total_energy", ENERGY_UNITS, "the frame's total energy as computed (DFT in OC20 "
                               "files, EMT in the dev set)", extensive=True),
        **ATOM_LABELS,
    }
    default_target = "adsorption_energy"
    _graph_names = ("adsorption_energy", "total_energy")

    def __init__(self, path: str | None = None, pattern: str = "*.extxyz", split_by: str = "system",
                 systems: int = 40, seed: int = 0, max_steps: int = 40, cache_dir: str | None = None) -> None:
        if split_by not in ("system", "frame"):
            raise ValidationError(f"[dataset] split_by: {split_by!r} is not allowed; use 'system' or 'frame'")
        self.split_by = split_by
        if path:
            root = Path(path).expanduser()
            key = _files_key(root, pattern, "s2ef")
            self._files_fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]
            cache = _cache_file(cache_dir, "s2ef", key)
            frames = packed.load(cache, "OC20 S2EF cache")
            if frames is None:
                started = time.perf_counter()
                frames = published.read_s2ef(root, pattern)
                packed.save(cache, frames)
                log.info("oc20_s2ef: read %d frames under %s in %.1f s", len(frames), root,
                         time.perf_counter() - started)
            self._frames = frames
        else:
            _check_dev(systems, seed, max_steps)
            self._frames = dev_frames(systems, seed, max_steps, cache_dir)


class OC20IS2RE(_OC20):
    """OC20 IS2RE: initial adsorbate+slab structures labelled with the relaxed adsorption energy.

    ``relaxed_energy`` is the adsorption energy of the relaxed structure (OC20's ``y_relaxed``):
    an invariant model sees only the initial geometry, as in the IS2RE task.
    """

    targets: ClassVar[dict[str, Target]] = {
        "relaxed_energy": Target("relaxed_energy", ENERGY_UNITS, "adsorption energy of the relaxed structure "
                                 "(OC20 y_relaxed): relaxed energy minus the clean slab and gas-phase references"),
        **ATOM_LABELS,
    }
    default_target = "relaxed_energy"
    _graph_names = ("relaxed_energy",)

    def __init__(self, path: str | None = None, pattern: str = "*.extxyz", energy_key: str = "auto",
                 systems: int = 40, seed: int = 0, max_steps: int = 40, cache_dir: str | None = None) -> None:
        if not energy_key:
            raise ValidationError("[dataset] energy_key: empty; use 'auto' or the info key of the relaxed energy")
        self.split_by = "system"
        if path:
            root = Path(path).expanduser()
            if root.suffix != ".lmdb" and not (root.is_dir() and any(root.glob("*.lmdb"))):
                key = _files_key(root, pattern, f"is2re|{energy_key}")
                self._files_fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]
                cache = _cache_file(cache_dir, "is2re", key)
                frames = packed.load(cache, "OC20 IS2RE cache")
            else:
                cache, frames = None, None
            if frames is None:
                frames = published.read_is2re(root, pattern, energy_key)
                if cache is not None:
                    packed.save(cache, frames)
            self._frames = frames
        else:
            _check_dev(systems, seed, max_steps)
            self._frames = devset.is2re_from(dev_frames(systems, seed, max_steps, cache_dir))
