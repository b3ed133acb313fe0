"""The ``md17`` dataset: frames of one molecule with their energy (eV) and forces (eV/Å).

With ``path`` it reads a downloaded MD17 or rMD17 file (``layout.read_npz``). Without, it
generates a GFN2-xTB trajectory (``generate.run_md``) once and caches it in ``cache_dir``,
through ``molplat.files.atomic_save_npz``: written under a temporary name and moved into
place, with a SHA-256 of the contents inside, so a crash never leaves half a cache and a
damaged one is noticed, deleted with a one-line notice and generated again.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

from molplat.data import Dataset
from molplat.errors import ValidationError
from molplat.files import atomic_save_npz, cache_dir as molplat_cache_dir, load_npz
from molplat.structure import Structure, Target
from molplat_md17 import generate
from molplat_md17.layout import Trajectory, read_npz
from molplat_md17.plugin import CITATION

log = logging.getLogger(__name__)

TARGETS: dict[str, Target] = {
    "energy": Target("energy", "eV", "total energy of the frame (MD17/rMD17: DFT, converted from kcal/mol; "
                     "generated sets: GFN2-xTB); forces (eV/Å) are minus its gradient", extensive=True),
}
_CACHED = ("numbers", "positions", "energies", "forces", "name", "theory")


def _echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def generated(label: str, smiles: str, settings: generate.MDSettings, cache_dir: str | None = None,
              progress: bool = True) -> tuple[Trajectory, Path]:
    """The generated trajectory of these settings, from the cache when it is there and sound."""
    key = generate.cache_key(label, smiles, settings)
    path = molplat_cache_dir(cache_dir, "md17") / f"{label}-{key[:16]}.npz"
    data = load_npz(path, "MD17 generated-set cache")
    if data is not None and all(k in data for k in _CACHED):
        return Trajectory(data["numbers"], data["positions"], data["energies"], data["forces"], str(data["name"]),
                          str(data["theory"]), "generated"), path
    trajectory = generate.run_md(label, smiles, settings, progress=progress, echo=_echo if progress else None)
    atomic_save_npz(path, numbers=trajectory.numbers, positions=trajectory.positions, energies=trajectory.energies,
                    forces=trajectory.forces, name=np.array(trajectory.name), theory=np.array(trajectory.theory))
    return trajectory, path


class MD17(Dataset):
    """MD17 (Chmiela et al. 2017) and rMD17 (Christensen and von Lilienfeld 2020) frames, or a generated set.

    Every structure is one frame: the molecule's atoms, its energy as target ``energy`` (eV,
    extensive) and its forces (eV/Å) in ``Structure.forces``, so ``[trainer] task =
    "energy_forces"`` trains on both. Ids are ``NAME:FRAME`` (the frame's index in the file or
    trajectory).
    """

    targets: dict[str, Target] = TARGETS
    default_target = "energy"
    citation = CITATION

    def __init__(self, path: str | None = None, molecule: str = "ethanol", smiles: str | None = None,
                 temperature: float = 500.0, frames: int = 300, interval: int = 10, timestep: float = 0.5,
                 friction: float = 0.01, equilibration: int = 200, seed: int = 0, size: int | None = None,
                 progress: bool = True, cache_dir: str | None = None) -> None:
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValidationError(f"[dataset] size: {size!r} must be a positive integer, or left out")
        self.source: Path | None = None
        if path:
            self.source = Path(path).expanduser().resolve()
            trajectory = read_npz(self.source)
        else:
            label, chosen = generate.smiles_of(molecule, smiles)
            settings = generate.MDSettings(temperature=float(temperature), frames=int(frames), interval=int(interval),
                                           timestep=float(timestep), friction=float(friction),
                                           equilibration=int(equilibration), seed=int(seed))
            trajectory, self.cache_file = generated(label, chosen, settings, cache_dir, progress)
        self.frame_index = np.arange(len(trajectory))
        if size is not None and size < len(trajectory):
            self.frame_index = np.sort(np.random.default_rng(seed).choice(len(trajectory), size, replace=False))
            trajectory = trajectory.take(self.frame_index)
        self.trajectory = trajectory
        self.name, self.theory, self.layout = trajectory.name, trajectory.theory, trajectory.layout
        log.info("md17: %d frames of %s (%s, %s)", len(trajectory), self.name, self.layout, self.theory)

    def fingerprint(self) -> str:
        """Changes when the file read changes (size, modification time), so a stale store is rebuilt."""
        if self.source is None:
            return f"generated:{self.cache_file.name}"
        stat = self.source.stat()
        return f"{self.source.name}:{stat.st_size}:{stat.st_mtime_ns}"

    def __len__(self) -> int:
        return len(self.trajectory)

    def get(self, i: int) -> Structure:
        t = self.trajectory
        return Structure(numbers=t.numbers, positions=t.positions[i].copy(), forces=t.forces[i].copy(),
                         targets={"energy": float(t.energies[i])}, id=self.id_of(i))

    def id_of(self, i: int) -> str:
        return f"{self.name}:{int(self.frame_index[i])}"

    @property
    def ids(self) -> list[str]:
        return [self.id_of(i) for i in range(len(self))]
