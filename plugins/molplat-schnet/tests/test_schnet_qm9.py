"""SchNet learns QM9's per-atom Mulliken charges together with a molecular target, through a real run."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

import molplat

pytest.importorskip("molplat_qm9")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pipeline = molplat.load_pipeline({
        "dataset": {"name": "qm9", "target": ["gap", "mulliken_charge"],
                    "cache_dir": str(tmp_path_factory.mktemp("cache"))},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "schnet", "cutoff": 4.0, "hidden_channels": 32, "num_filters": 32,
                  "num_interactions": 2, "num_gaussians": 20, "readout": "mean"},
        "trainer": {"max_epochs": 3, "batch_size": 32, "lr": 3e-3, "progress_bar": False,
                    "num_threads": 1},  # a tiny model: a second thread only waits (8x slower on a busy machine)
        "output": {"dir": str(tmp_path_factory.mktemp("runs")), "name": "charges", "plots": False},
    })
    return pipeline.run(echo=lambda message: None)


def test_loss_falls(run: dict) -> None:
    with open(Path(run["run_dir"]) / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    train, val = [float(r["train_loss"]) for r in rows], [float(r["val_loss"]) for r in rows]
    assert train[-1] < 0.7 * train[0] and val[-1] < val[0], (train, val)


def test_charges_beat_the_per_element_mean(run: dict) -> None:
    charges = run["tasks"]["mulliken_charge"]
    assert charges["level"] == "atom" and charges["units"] == "e"
    assert charges["baseline"] == "per-element references"
    # Each element's mean charge leaves ~0.1 e; the environment explains most of the rest.
    assert charges["test"]["mae"] < 0.6 * charges["baseline_mae"], charges
    gap = run["tasks"]["gap"]
    assert gap["test"]["mae"] < gap["baseline_mae"], gap  # the molecular head learns alongside
    with open(Path(run["run_dir"]) / "atom_predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {r["target"] for r in rows} == {"mulliken_charge"} and {r["element"] for r in rows} >= {"1", "6"}


def test_the_trained_model_predicts_charges_per_atom(run: dict) -> None:
    from ase.build import molecule

    water = molecule("H2O")
    predicted = molplat.load_model(run["run_dir"]).predict([water])["targets"]["mulliken_charge"]
    (charges,) = predicted["values"]
    assert charges.shape == (3,) and predicted["units"] == "e"
    assert charges[0] < -0.2 and (charges[1:] > 0.1).all()  # O negative, H positive
