"""The core's own components (the atoms_file dataset, representations, CPU trainer) pass the SDK conformance suite."""
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from molplat_sdk import PluginConformance


@pytest.fixture(scope="module")
def emt_cells(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve rattled Cu/Ni cells with EMT energy, forces and stress, and an info key: atoms_file's dev set."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(12):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.numbers[rng.random(len(atoms)) < 0.5] = 28
        atoms.rattle(0.05, seed=i)
        atoms.calc = EMT()
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces(),
                                           stress=atoms.get_stress())
        atoms.info["ni_fraction"] = float((atoms.numbers == 28).mean())
        frames.append(atoms)
    path = tmp_path_factory.mktemp("atoms-file") / "cells.extxyz"
    ase.io.write(path, frames)
    return path


class TestCoreConformance(PluginConformance):
    plugin = "molplat"

    @pytest.fixture
    def molplat_settings(self, emt_cells: Path) -> dict:
        return {"atoms_file": {"path": str(emt_cells), "targets": ["ni_fraction"], "units": {"ni_fraction": "1"}}}
