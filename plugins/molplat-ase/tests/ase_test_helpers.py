"""Helpers of molplat-ase's tests: EMT copper frames, the copper pipeline, building a simulator.

A module of its own (not conftest) so test files import it by a name no other plugin uses; the
repository runs pytest with --import-mode=importlib, so conftest puts this folder on sys.path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: a 32-atom fcc copper cell, rattled, for structures_file tests (written by ``cu_cell_file``)
LATTICE = 3.61


def emt_copper_frames(count: int = 40, seed: int = 0) -> list[Any]:
    """Frames of a 32-atom copper cell from EMT Langevin dynamics at 800 K, with strained cells mixed in,
    each with its EMT energy and forces."""
    from ase import units
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin
    from ase.md import velocitydistribution as velocities

    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat((2, 2, 2))
    atoms.calc = EMT()
    thermalize = getattr(velocities, "thermalize_momenta", None) or velocities.MaxwellBoltzmannDistribution
    thermalize(atoms, temperature_K=800, rng=rng)
    dynamics = Langevin(atoms, 2 * units.fs, temperature_K=800, friction=0.02 / units.fs, fixcm=False, rng=rng)
    frames = []
    for k in range(count):
        dynamics.run(5)
        frame = atoms.copy()
        if k % 4 == 3:  # every fourth frame strained by up to 3 %, so volumes vary
            frame.set_cell(frame.cell * (1 + rng.uniform(-0.03, 0.03)), scale_atoms=True)
        frame.calc = EMT()
        energy, forces = frame.get_potential_energy(), frame.get_forces()
        frame.calc = SinglePointCalculator(frame, energy=energy, forces=forces)
        frames.append(frame)
    return frames


def copper_pipeline(data: Path, output: Path, **changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "dataset": {"name": "atoms_file", "path": str(data), "target": "energy", "split": [0.7, 0.15, 0.15]},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "schnet", "hidden_channels": 16, "num_filters": 16, "num_interactions": 2,
                  "num_gaussians": 16, "cutoff": 4.0},
        "trainer": {"name": "cpu", "task": "energy_forces", "forces_weight": 10.0, "max_epochs": 12,
                    "batch_size": 8, "lr": 5e-3, "progress_bar": False, "seed": 0, "num_threads": 1},
        "output": {"dir": str(output), "name": "cu"},
    }
    for key, value in changes.items():
        table, _, setting = key.partition(".")
        raw.setdefault(table, {})[setting] = value
    return raw


def build(name: str, **settings: Any) -> Any:
    """A simulator as the pipeline builds it: through its spec, with defaults filled in."""
    from molplat.plugins import get_plugin_manager

    return get_plugin_manager().get("simulator", name).build(**settings)
