"""The ``hydronet`` dataset: water clusters (H2O)n with total energies, from the published files or a
GFN2-xTB dev set.

Both sources are packed into flat arrays (atoms of cluster i at ``offsets[i]:offsets[i+1]``) and
cached in a checksummed .npz, written atomically: the dev set is generated once per set of
settings, a download is parsed once per file set (its sizes and times are part of the key).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from molplat.data import Dataset
from molplat.errors import ValidationError
from molplat.files import atomic_save_npz, load_npz
from molplat.files import cache_dir as molplat_cache_dir
from molplat.structure import Structure, Target
from molplat_hydronet.plugin import HYDRONET_CITATION, LARGEST, SMALLEST
from molplat_hydronet.published import KCAL_PER_MOL_IN_EV

log = logging.getLogger(__name__)

CACHE_VERSION = "1"
DEV_LARGEST = 12
#: the dev set with the default settings, made by scripts/make_devset.py and shipped in the package
SHIPPED = Path(__file__).parent / "data" / "devset.npz"

TARGETS = {
    "energy": Target("energy", "eV", "total potential energy of the cluster: TTM2.1-F (relative to isolated "
                     "relaxed waters) in the published files, GFN2-xTB total energy in the dev set; forces "
                     "are its negative gradient (dev set only)", extensive=True),
    "binding_energy_per_water": Target("binding_energy_per_water", "eV", "(energy - n x energy of one isolated "
                                       "relaxed water) / n: how strongly the network binds each water"),
}

_FIELDS = ("ids", "numbers", "positions", "offsets", "energies", "waters", "groups", "forces")


@dataclass
class Packed:
    """Clusters in flat arrays; ``groups`` numbers the cluster a frame was sampled from (dev set)."""

    ids: np.ndarray  # (k,) str
    numbers: np.ndarray  # (atoms,) int16
    positions: np.ndarray  # (atoms, 3) Å
    offsets: np.ndarray  # (k + 1,) int64
    energies: np.ndarray  # (k,) eV
    waters: np.ndarray  # (k,) int64
    groups: np.ndarray  # (k,) int64
    forces: np.ndarray  # (atoms, 3) eV/Å, or (0, 3) when the source has none

    def __len__(self) -> int:
        return len(self.ids)

    def save(self, path: Path, monomer: float) -> None:
        atomic_save_npz(path, **{f: getattr(self, f) for f in _FIELDS}, monomer=np.float64(monomer))

    @classmethod
    def load(cls, path: Path) -> tuple["Packed", float] | None:
        data = load_npz(path, "HydroNet cache")
        if data is None or any(f not in data for f in (*_FIELDS, "monomer")):
            return None
        return cls(**{f: data[f] for f in _FIELDS}), float(data["monomer"])


def _pack(ids: list[str], numbers: list[np.ndarray], positions: list[np.ndarray], energies: list[float],
          groups: list[int], forces: list[np.ndarray] | None) -> Packed:
    counts = [len(z) for z in numbers]
    return Packed(
        ids=np.array(ids, dtype=str),
        numbers=np.concatenate(numbers).astype(np.int16),
        positions=np.concatenate(positions).reshape(-1, 3).astype(np.float64),
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        energies=np.array(energies, dtype=np.float64),
        waters=np.array(counts, dtype=np.int64) // 3,
        groups=np.array(groups, dtype=np.int64),
        forces=np.concatenate(forces).reshape(-1, 3) if forces else np.zeros((0, 3)),
    )


def _cache_file(cache_dir: str | os.PathLike | None, kind: str, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps({"version": CACHE_VERSION, **key}, sort_keys=True).encode()).hexdigest()[:16]
    return molplat_cache_dir(cache_dir, "hydronet") / f"{kind}-{digest}.npz"


def dev_key(sizes: range, clusters: int, frames: int, temperature: float, seed: int) -> dict:
    """What a dev set depends on (the tblite version aside: a cache's key adds it)."""
    from molplat_hydronet import devset

    return {"sizes": [sizes.start, sizes.stop], "clusters": clusters, "frames": frames,
            "temperature": float(temperature), "seed": seed, "method": devset.METHOD,
            "md": [devset.TIMESTEP_FS, devset.STEPS_PER_FRAME, devset.FRICTION_PER_FS, devset.FMAX]}


def generate_dev(sizes: range, clusters: int, frames: int, temperature: float, seed: int,
                 progress: bool = True) -> tuple[Packed, float]:
    """Generate a dev set with GFN2-xTB (tblite): its clusters packed, and the monomer energy (eV)."""
    from molplat_hydronet import devset

    generated, monomer = devset.generate(sizes, clusters, frames, temperature, seed, progress)
    ids, numbers, positions, energies, groups, forces = [], [], [], [], [], []
    for g, cluster in enumerate(generated):
        for f in range(len(cluster.energies)):
            ids.append(f"dev-W{cluster.waters}-{g}-{f}")
            numbers.append(cluster.numbers)
            positions.append(cluster.positions[f])
            energies.append(float(cluster.energies[f]))
            groups.append(g)
            forces.append(cluster.forces[f])
    return _pack(ids, numbers, positions, energies, groups, forces), monomer


def load_shipped(path: Path = SHIPPED) -> tuple[Packed, float, dict] | None:
    """The shipped dev set, its monomer energy and its key; None when it is absent or damaged."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:  # read only: a file of the package is never deleted
        data = {name: npz[name] for name in npz.files}
    if any(f not in data for f in (*_FIELDS, "monomer", "key")):
        return None
    return Packed(**{f: data[f] for f in _FIELDS}), float(data["monomer"]), json.loads(str(data["key"]))


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValidationError(f"[dataset] {name}: {value!r} must be an integer {bound}")


class HydroNet(Dataset):
    """Water clusters (Choudhury et al. 2020; Rakshit et al. 2019), in Å and eV."""

    targets = TARGETS
    default_target = "energy"
    citation = HYDRONET_CITATION

    def __init__(self, path: str | None = None, min_waters: int = 3, max_waters: int | None = None,
                 max_per_size: int | None = None, monomer_energy: float = 0.0, clusters_per_size: int = 3,
                 frames_per_cluster: int = 8, temperature: float = 300.0, seed: int = 0,
                 cache_dir: str | None = None, progress: bool = True) -> None:
        _check_int("min_waters", min_waters, SMALLEST, LARGEST)
        if max_waters is not None:
            _check_int("max_waters", max_waters, SMALLEST, LARGEST)
        if max_waters is not None and max_waters < min_waters:
            raise ValidationError(f"[dataset] max_waters: {max_waters} is below min_waters = {min_waters}; "
                                  "raise max_waters or lower min_waters")
        if max_per_size is not None:
            _check_int("max_per_size", max_per_size, 1)
        for name, value in (("clusters_per_size", clusters_per_size), ("frames_per_cluster", frames_per_cluster)):
            _check_int(name, value, 1)
        _check_int("seed", seed, 0)
        for name, value in (("temperature", temperature), ("monomer_energy", monomer_energy)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise ValidationError(f"[dataset] {name}: {value!r} must be a finite number")
        if temperature <= 0:
            raise ValidationError(f"[dataset] temperature: {temperature!r} K must be positive")
        self.path = None if path is None else Path(path).expanduser()
        self.min_waters, self.max_waters = min_waters, max_waters
        self._files: list = []
        if self.path is None:
            self.source = "GFN2-xTB dev set"
            self._packed, self.monomer = self._dev(range(min_waters, (max_waters or DEV_LARGEST) + 1),
                                                   clusters_per_size, frames_per_cluster, float(temperature),
                                                   seed, cache_dir, progress)
        else:
            self.source = str(self.path)
            self._packed, self.monomer = self._published(max_per_size, cache_dir, progress)
            self.monomer = float(monomer_energy) * KCAL_PER_MOL_IN_EV

    # -- sources -----------------------------------------------------------------------------------
    @staticmethod
    def _dev(sizes: range, clusters: int, frames: int, temperature: float, seed: int,
             cache_dir: str | None, progress: bool) -> tuple[Packed, float]:
        try:
            from importlib.metadata import version

            tblite = version("tblite")
        except Exception:  # noqa: BLE001 - not installed: said below, when generating
            tblite = "missing"
        key = dev_key(sizes, clusters, frames, temperature, seed)
        shipped = load_shipped()
        if shipped is not None and shipped[2] == key:  # the default settings: no tblite run needed
            return shipped[0], shipped[1]
        path = _cache_file(cache_dir, "dev", {**key, "tblite": tblite})
        cached = Packed.load(path)
        if cached is not None:
            return cached
        if tblite == "missing":
            raise ValidationError("[dataset] the hydronet dev set is computed with GFN2-xTB, and tblite is not "
                                  "installed; pip install tblite (or give path = the HydroNet download)")
        start = time.perf_counter()
        packed, monomer = generate_dev(sizes, clusters, frames, temperature, seed, progress)
        packed.save(path, monomer)
        log.info("hydronet: generated %d clusters (%d structures) with GFN2-xTB in %.1f s; cached in %s",
                 len(set(packed.groups.tolist())), len(packed), time.perf_counter() - start, path)
        return packed, monomer

    def _selected_files(self) -> list:
        from molplat_hydronet import published

        if not self._files:
            found = published.find_files(self.path)  # type: ignore[arg-type]
            top = self.max_waters or LARGEST
            self._files = [f for f in found if f.waters == 0 or self.min_waters <= f.waters <= top]
            if not self._files:
                sizes = ", ".join(f"W{f.waters}" for f in found)
                raise ValidationError(f"[dataset] min_waters/max_waters: {self.path} holds {sizes}, none of them "
                                      f"within {self.min_waters}..{top} waters; widen the range")
        return self._files

    def _published(self, max_per_size: int | None, cache_dir: str | None, progress: bool) -> tuple[Packed, float]:
        from tqdm.auto import tqdm

        from molplat_hydronet import published

        files = self._selected_files()
        key = {"files": self.fingerprint(), "max_per_size": max_per_size,
               "range": [self.min_waters, self.max_waters]}
        path = _cache_file(cache_dir, "published", key)
        cached = Packed.load(path)
        if cached is not None:
            return cached
        ids, numbers, positions, energies, groups = [], [], [], [], []
        for entry in tqdm(files, desc="read HydroNet xyz files (once, then cached)", unit="file",
                          disable=not progress or len(files) < 2):
            frames = published.read_frames(entry, max_per_size)
            waters = len(frames.numbers) // 3
            if not self.min_waters <= waters <= (self.max_waters or LARGEST):
                continue  # a single file of another name and size
            name = Path(entry.where.split("!")[-1]).stem
            for k in range(len(frames.energies)):
                ids.append(f"{name}:{k}")
                numbers.append(frames.numbers)
                positions.append(frames.positions[k])
                energies.append(float(frames.energies[k]) * KCAL_PER_MOL_IN_EV)
                groups.append(len(groups))
        if not ids:
            raise ValidationError(f"[dataset] min_waters/max_waters: no cluster of {self.path} has "
                                  f"{self.min_waters}..{self.max_waters or LARGEST} waters; widen the range")
        packed = _pack(ids, numbers, positions, energies, groups, None)
        packed.save(path, 0.0)
        return packed, 0.0

    # -- the Dataset interface ---------------------------------------------------------------------
    def fingerprint(self) -> str:
        if self.path is None:
            return ""
        parts = []
        for entry in self._selected_files():
            stat = entry.path.stat()
            parts.append(f"{entry.where}|{stat.st_size}|{stat.st_mtime_ns}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def __len__(self) -> int:
        return len(self._packed)

    def get(self, i: int) -> Structure:
        p = self._packed
        start, stop = p.offsets[i], p.offsets[i + 1]
        energy = float(p.energies[i])
        waters = int(p.waters[i])
        return Structure(
            numbers=p.numbers[start:stop],
            positions=p.positions[start:stop],
            forces=p.forces[start:stop] if len(p.forces) else None,
            targets={"energy": energy, "binding_energy_per_water": (energy - waters * self.monomer) / waters},
            id=str(p.ids[i]),
        )

    @property
    def ids(self) -> list[str]:
        return self._packed.ids.tolist()

    def values(self, target: str) -> np.ndarray:
        """Every value of one target, in dataset order."""
        if target not in TARGETS:
            raise ValidationError(f"{target!r} is not a hydronet target; targets: {', '.join(TARGETS)}")
        p = self._packed
        if target == "energy":
            return p.energies.copy()
        return (p.energies - p.waters * self.monomer) / p.waters

    def splits(self, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> dict[str, np.ndarray]:
        """Whole clusters go to one split: the MD frames of a dev-set cluster are near copies of its
        minimum, and a test frame whose neighbours were trained on would flatter the model.

        The clusters are shuffled with ``seed``; validation and test get their fraction of them
        (rounded, at least one when their fraction is not zero), training the rest. Published
        clusters are each their own group: the core's seeded split of structures.
        """
        groups = self._packed.groups
        unique = np.unique(groups)
        if len(unique) == len(groups) or len(unique) < 3:
            return super().splits(fractions, seed)
        if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
            raise ValidationError(f"split fractions {list(fractions)} must be three non-negative numbers summing to 1")
        counts = [max(1, round(f * len(unique))) if f > 0 else 0 for f in fractions[1:]]
        if sum(counts) >= len(unique):
            return super().splits(fractions, seed)
        order = unique[np.random.default_rng(seed).permutation(len(unique))]
        bounds = [len(unique) - sum(counts), len(unique) - counts[1]]
        parts = np.split(order, bounds)
        return {name: np.flatnonzero(np.isin(groups, part)) for name, part in zip(("train", "val", "test"), parts)}
