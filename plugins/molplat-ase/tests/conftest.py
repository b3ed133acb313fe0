"""Session fixtures: EMT copper frames and one small SchNet trained on their energies and forces.

Training happens once per session (about 10 s on one core); tests copy the run's context so
each writes into its own run directory.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

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


@pytest.fixture(scope="session")
def copper_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import ase.io

    path = tmp_path_factory.mktemp("cu-data") / "cu.extxyz"
    ase.io.write(path, emt_copper_frames(), format="extxyz")
    return path


@pytest.fixture(scope="session")
def copper_context(copper_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The RunContext a simulator receives after a SchNet trained on EMT copper energies and forces."""
    import torch

    import molplat
    from molplat.predict import TrainedModel
    from molplat.results import RunContext

    torch.set_num_threads(1)
    pipeline = molplat.load_pipeline(copper_pipeline(copper_data, tmp_path_factory.mktemp("cu-runs")))
    summary = pipeline.run(echo=lambda message: None)
    run_dir = Path(summary["run_dir"])
    dataset = pipeline.components["dataset"].build()
    indices = dataset.splits(pipeline.dataset_common["split"], pipeline.dataset_common["split_seed"])
    splits = {name: [dataset[int(i)] for i in idx] for name, idx in indices.items()}
    return RunContext(pipeline, run_dir, TrainedModel.from_run(run_dir, pipeline=pipeline), splits, summary)


@pytest.fixture
def context(copper_context: Any, tmp_path: Path) -> Any:
    """The trained copper run, copied so a test writes into its own run directory."""
    run_dir = tmp_path / "run"
    shutil.copytree(copper_context.run_dir, run_dir)
    return dataclasses.replace(copper_context, run_dir=run_dir, summary=dict(copper_context.summary))


@pytest.fixture
def cu_cell_file(tmp_path: Path) -> Path:
    """A rattled 32-atom copper cell as extxyz (a structures_file)."""
    import ase.io
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.08, seed=3)
    path = tmp_path / "cu-rattled.extxyz"
    ase.io.write(path, atoms, format="extxyz")
    return path


def build(name: str, **settings: Any) -> Any:
    """A simulator as the pipeline builds it: through its spec, with defaults filled in."""
    from molplat.plugins import get_plugin_manager

    return get_plugin_manager().get("simulator", name).build(**settings)
