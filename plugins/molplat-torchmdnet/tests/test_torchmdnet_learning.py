"""The equivariant transformer learns through real runs: a QM9 energy (the zero-point vibrational
energy, extensive, per-element references removed) and EMT energies and forces of metal clusters."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import molplat

TINY = {"name": "torchmdnet", "cutoff": 4.0, "hidden_channels": 32, "num_layers": 2, "num_heads": 4,
        "num_rbf": 16}
#: a tiny model: a second thread only waits (8x slower on a busy machine)
TRAINER = {"batch_size": 32, "lr": 3e-3, "progress_bar": False, "num_threads": 1}


def losses(run: dict) -> tuple[list[float], list[float]]:
    with open(Path(run["run_dir"]) / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [float(r["train_loss"]) for r in rows], [float(r["val_loss"]) for r in rows]


@pytest.fixture(scope="module")
def qm9_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pytest.importorskip("molplat_qm9")
    pipeline = molplat.load_pipeline({
        "dataset": {"name": "qm9", "target": "zpve", "cache_dir": str(tmp_path_factory.mktemp("cache"))},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        # the gated head reads the vector features too; on ZPVE it learns ~1.5x faster than the scalar one
        "model": {**TINY, "readout": "sum", "output_head": "gated"},
        "trainer": {**TRAINER, "max_epochs": 6},
        "output": {"dir": str(tmp_path_factory.mktemp("runs")), "name": "zpve", "plots": False},
    })
    return pipeline.run(echo=lambda message: None)


def test_qm9_loss_falls(qm9_run: dict) -> None:
    train, val = losses(qm9_run)
    assert len(train) == 6
    assert train[-1] < 0.5 * train[0] and val[-1] < val[0], (train, val)


def test_qm9_energy_beats_the_per_element_references(qm9_run: dict) -> None:
    """The composition alone leaves the baseline error; the geometry explains much of the rest."""
    assert qm9_run["units"] == "eV"
    assert qm9_run["test"]["mae"] < 0.7 * qm9_run["baseline_mae"], qm9_run["test"]


def emt_clusters(count: int, seed: int = 0) -> list:
    """Rattled 13-atom Cu/Pt icosahedra with EMT energies and forces (eV, eV/Å)."""
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.cluster import Icosahedron

    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        atoms = Icosahedron("Cu", noshells=2)
        atoms.numbers[rng.random(len(atoms)) < 0.3] = 78
        atoms.rattle(0.1, seed=seed * 1000 + i)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        frames.append(atoms)
    return frames


def test_learns_emt_energies_and_forces(tmp_path: Path) -> None:
    import ase.io

    frames = emt_clusters(48, seed=1)
    ase.io.write(tmp_path / "emt.extxyz", frames)
    run = molplat.load_pipeline({
        "dataset": {"name": "atoms_file", "path": str(tmp_path / "emt.extxyz"), "split": [0.66, 0.17, 0.17]},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {**TINY, "readout": "sum"},
        # 96 small steps: forces are learnt from few structures only with many updates
        "trainer": {**TRAINER, "task": "energy_forces", "max_epochs": 8, "batch_size": 4, "lr": 1e-2},
        "output": {"dir": str(tmp_path / "runs"), "plots": False},
    }).run(echo=lambda message: None)
    train, val = losses(run)
    assert val[-1] < 0.7 * val[0] and train[-1] < 0.5 * train[0], (train, val)
    assert run["target"] == "energy" and run["forces"]["units"] == "eV/Å"
    zero_forces_mae = np.mean([np.abs(a.calc.results["forces"]).mean() for a in frames])
    assert run["forces"]["test"]["mae"] < 0.85 * zero_forces_mae, (run["forces"], zero_forces_mae)
    assert run["test"]["mae"] < run["baseline_mae"], run["test"]
