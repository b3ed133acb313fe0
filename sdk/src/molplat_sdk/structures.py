"""Small real structures that exercise the awkward cases: several sizes, and periodic cells
whose neighbours lie in other images (so missing shifts or offsets show up)."""
from __future__ import annotations

import numpy as np
from ase.build import bulk, molecule

from molplat.structure import Structure


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A proper rotation matrix (det +1), uniformly distributed."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def molecules() -> list[Structure]:
    water = Structure.from_atoms(molecule("H2O"), id="water")
    ethanol = Structure.from_atoms(molecule("CH3CH2OH"), id="ethanol")
    pyridine = Structure.from_atoms(molecule("C5H5N"), id="pyridine")
    return [water, ethanol, pyridine]


def crystals() -> list[Structure]:
    """A rattled primitive silicon cell (many images within 5 Å) and a sheared, rattled rock salt."""
    si = bulk("Si", "diamond", a=5.43)
    si.rattle(0.05, seed=1)
    nacl = bulk("NaCl", "rocksalt", a=5.64)
    nacl.set_cell(nacl.cell.array + np.array([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.2, 0.1, 0.0]]), scale_atoms=True)
    nacl.rattle(0.05, seed=2)
    return [Structure.from_atoms(si, id="si"), Structure.from_atoms(nacl, id="nacl")]


def tiny_structures() -> list[Structure]:
    """Molecules of 3 to 13 atoms, then two periodic crystals."""
    return molecules() + crystals()


def lattice_shifted(structure: Structure, atom: int = 0, rng: np.random.Generator | None = None) -> Structure:
    """The same periodic crystal with one atom moved by a lattice vector: physically identical."""
    rng = rng or np.random.default_rng(0)
    shift = rng.integers(-1, 2, size=3) * structure.pbc
    if not shift.any():
        shift = structure.pbc.astype(int)
    positions = structure.positions.copy()
    positions[atom] += shift @ structure.cell
    return Structure(structure.numbers, positions, structure.cell, structure.pbc, structure.forces,
                     dict(structure.targets), structure.id)
