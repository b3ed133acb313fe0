"""The one shape of an atomic structure that flows between components.

Units: positions and cell in Å, energies in eV, forces in eV/Å. Datasets convert
on the way in, so nothing downstream has to know a file's units.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ase import Atoms


#: target levels: one value per structure, or one value per atom
LEVELS = ("graph", "atom")
#: the largest atomic number (oganesson)
MAX_ATOMIC_NUMBER = 118


@dataclass(frozen=True)
class Target:
    """A property a dataset can predict, and the units its values are in.

    ``level`` is ``"graph"`` (one value per structure, in ``Structure.targets``) or
    ``"atom"`` (one value per atom, in ``Structure.atom_targets``). ``extensive`` marks
    a structure's total that grows with its size, such as a total energy: training
    then fits one reference value per element on the training split (least squares on
    the composition) and learns only what the composition does not explain.
    ``usable`` is False for values an invariant model cannot learn (tensor components
    in the frame of the stored geometry); they are listed but refused as targets.
    """

    name: str
    units: str
    description: str = ""
    level: str = "graph"
    extensive: bool = False
    usable: bool = True

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"target {self.name!r}: level {self.level!r} is not one of {LEVELS}")
        if self.extensive and self.level != "graph":
            raise ValueError(f"target {self.name!r}: only graph-level targets can be extensive")


@dataclass
class Structure:
    """A molecule or crystal with optional labels."""

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray | None = None
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    forces: np.ndarray | None = None
    targets: dict[str, float] = field(default_factory=dict)
    id: str = ""
    atom_targets: dict[str, np.ndarray] = field(default_factory=dict)
    stress: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        n = len(self.numbers)
        # Shapes are checked, never reshaped: reshaping forces given as [3, n] to [n, 3]
        # silently scrambles them.
        self.positions = _array(self.positions, (n, 3), "positions", self.id)
        if not np.isfinite(self.positions).all():
            raise ValueError(f"structure {self.id!r}: positions are not all finite (NaN or infinity)")
        if n and (self.numbers.min() < 1 or self.numbers.max() > MAX_ATOMIC_NUMBER):
            bad = sorted({int(z) for z in self.numbers if not 1 <= z <= MAX_ATOMIC_NUMBER})
            raise ValueError(f"structure {self.id!r}: atomic numbers {bad} are outside 1..{MAX_ATOMIC_NUMBER}")
        self.pbc = np.broadcast_to(np.asarray(self.pbc, dtype=bool), (3,)).copy()
        if self.cell is not None:
            self.cell = _array(self.cell, (3, 3), "cell", self.id)
        if self.forces is not None:
            self.forces = _array(self.forces, (n, 3), "forces", self.id)
        if self.stress is not None:
            self.stress = _stress(self.stress, self.id)
        self.atom_targets = {k: _array(v, (n,), f"atom target {k!r}", self.id) for k, v in self.atom_targets.items()}
        if self.pbc.any() and (self.cell is None or abs(np.linalg.det(self.cell)) < 1e-8):
            raise ValueError(f"structure {self.id!r}: periodic along {self.pbc.tolist()} but has no valid cell")

    def __len__(self) -> int:
        return len(self.numbers)

    @property
    def periodic(self) -> bool:
        return bool(self.pbc.any())

    @classmethod
    def from_atoms(cls, atoms: "Atoms", targets: dict[str, float] | None = None, id: str = "") -> "Structure":
        """Build from an ASE Atoms; forces are taken from ``atoms.arrays['forces']`` if present."""
        pbc = np.asarray(atoms.get_pbc(), dtype=bool)
        cell = np.asarray(atoms.get_cell()) if pbc.any() else None
        forces = atoms.arrays.get("forces")
        return cls(
            numbers=atoms.get_atomic_numbers(),
            positions=atoms.get_positions(),
            cell=cell,
            pbc=pbc,
            forces=None if forces is None else np.array(forces),
            targets=dict(targets or {}),
            id=id or atoms.get_chemical_formula(),
        )

    def to_atoms(self) -> "Atoms":
        from ase import Atoms

        atoms = Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)
        if self.forces is not None:
            atoms.arrays["forces"] = self.forces.copy()
        for name, values in self.atom_targets.items():
            atoms.arrays[name] = values.copy()
        atoms.info.update(self.targets)
        return atoms

    def transformed(self, rotation: np.ndarray | None = None, translation: Any = None,
                    permutation: np.ndarray | None = None) -> "Structure":
        """A rotated, translated and/or permuted copy (cell and forces follow), for symmetry tests."""
        numbers, positions, forces = self.numbers, self.positions, self.forces
        cell = self.cell
        if permutation is not None:
            numbers, positions = numbers[permutation], positions[permutation]
            forces = None if forces is None else forces[permutation]
        if rotation is not None:
            positions = positions @ rotation.T
            cell = None if cell is None else cell @ rotation.T
            forces = None if forces is None else forces @ rotation.T
        if translation is not None:
            positions = positions + np.asarray(translation, dtype=np.float64)
        atom_targets = {k: v[permutation] if permutation is not None else v for k, v in self.atom_targets.items()}
        stress = self.stress
        if rotation is not None and stress is not None:
            stress = rotation @ stress @ rotation.T
        return Structure(numbers, positions, cell, self.pbc, forces, dict(self.targets), self.id, atom_targets, stress)


def _array(value: object, shape: tuple[int, ...], what: str, sid: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        want = "[" + ", ".join(str(d) for d in shape) + "]"
        raise ValueError(f"structure {sid!r}: {what} have shape {list(array.shape)}, expected {want}")
    return array


def _stress(value: object, sid: str) -> np.ndarray:
    """A [3, 3] stress tensor (eV/Å³) from a full tensor or Voigt order xx, yy, zz, yz, xz, xy."""
    array = np.asarray(value, dtype=np.float64)
    if array.shape == (6,):
        xx, yy, zz, yz, xz, xy = array
        array = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    if array.shape != (3, 3):
        raise ValueError(f"structure {sid!r}: stress has shape {list(array.shape)}, expected [3, 3] or Voigt [6]")
    return array
