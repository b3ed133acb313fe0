"""Shared fixtures: small real structures built with ASE."""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule

from molplat.structure import Structure


@pytest.fixture
def water() -> Structure:
    return Structure.from_atoms(molecule("H2O"), id="water")


@pytest.fixture
def ethanol() -> Structure:
    return Structure.from_atoms(molecule("CH3CH2OH"), id="ethanol")


@pytest.fixture
def silicon() -> Structure:
    atoms = bulk("Si", "diamond", a=5.43)  # primitive cell: many periodic images within 5 Å
    atoms.rattle(0.05, seed=1)
    return Structure.from_atoms(atoms, id="si")


@pytest.fixture
def slab() -> Structure:
    """Periodic in x and y only, with a skewed cell."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.set_cell(atoms.cell.array + np.array([[0, 0, 0], [0.7, 0, 0], [0, 0, 6.0]]), scale_atoms=False)
    atoms.set_pbc([True, True, False])
    atoms.rattle(0.05, seed=2)
    return Structure.from_atoms(atoms, id="slab")
