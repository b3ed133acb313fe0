"""PhysNet learns on QM9 through a real run: a molecular target and the Mulliken charges,
which the model's charge-conserving charge head predicts (charge_output auto: they are in e)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import molplat

pytest.importorskip("molplat_qm9")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pipeline = molplat.load_pipeline({
        "dataset": {"name": "qm9", "target": ["homo", "mulliken_charge"],
                    "cache_dir": str(tmp_path_factory.mktemp("cache"))},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "physnet", "cutoff": 4.0, "hidden_channels": 32, "num_rbf": 16, "num_modules": 2,
                  "num_residual_interaction": 1, "num_residual_atomic": 1, "num_residual_output": 1,
                  "readout": "mean"},
        "trainer": {"max_epochs": 3, "batch_size": 32, "lr": 3e-3, "progress_bar": False,
                    "num_threads": 1},  # a tiny model: a second thread only waits on a busy machine
        "output": {"dir": str(tmp_path_factory.mktemp("runs")), "name": "charges", "plots": False},
    })
    return pipeline.run(echo=lambda message: None)


def test_loss_falls(run: dict) -> None:
    with open(Path(run["run_dir"]) / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    train, val = [float(r["train_loss"]) for r in rows], [float(r["val_loss"]) for r in rows]
    assert train[-1] < 0.7 * train[0] and val[-1] < val[0], (train, val)


def test_both_targets_beat_their_baselines(run: dict) -> None:
    charges = run["tasks"]["mulliken_charge"]
    assert charges["level"] == "atom" and charges["units"] == "e"
    # Each element's mean charge leaves ~0.1 e; the environment explains most of the rest (0.03 e here).
    assert charges["test"]["mae"] < 0.5 * charges["baseline_mae"], charges
    homo = run["tasks"]["homo"]
    assert homo["test"]["mae"] < homo["baseline_mae"], homo  # the molecular head learns alongside


def test_predicted_charges_of_each_molecule_sum_to_zero(run: dict) -> None:
    from ase.build import molecule

    molecules = [molecule("H2O"), molecule("CH3CH2OH")]
    predicted = molplat.load_model(run["run_dir"]).predict(molecules)["targets"]["mulliken_charge"]
    for charges in predicted["values"]:
        assert abs(float(np.sum(charges))) < 1e-4
    water = predicted["values"][0]
    assert water[0] < 0 < water[1]  # O negative, H positive
