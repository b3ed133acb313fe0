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


@dataclass(frozen=True)
class Target:
    """A property a dataset can predict, and the units its values are in."""

    name: str
    units: str
    description: str = ""


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

    def __post_init__(self) -> None:
        self.numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        self.pbc = np.broadcast_to(np.asarray(self.pbc, dtype=bool), (3,)).copy()
        if self.cell is not None:
            self.cell = np.asarray(self.cell, dtype=np.float64).reshape(3, 3)
        if self.forces is not None:
            self.forces = np.asarray(self.forces, dtype=np.float64).reshape(-1, 3)
        if len(self.numbers) != len(self.positions):
            raise ValueError(
                f"structure {self.id!r}: {len(self.numbers)} atomic numbers but {len(self.positions)} positions"
            )
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
        return Structure(numbers, positions, cell, self.pbc, forces, dict(self.targets), self.id)
