"""EGNN learns QM9's HOMO energy and per-atom Mulliken charges together, through a real run."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

import molplat

pytest.importorskip("molplat_qm9")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pipeline = molplat.load_pipeline({
        "dataset": {"name": "qm9", "target": ["homo", "mulliken_charge"],
                    "cache_dir": str(tmp_path_factory.mktemp("cache"))},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "egnn", "cutoff": 4.0, "hidden_channels": 32, "num_layers": 3, "num_radial": 16,
                  "readout": "mean"},  # the HOMO is intensive
        "trainer": {"max_epochs": 5, "batch_size": 32, "lr": 3e-3, "progress_bar": False,
                    "num_threads": 1},  # a tiny model: a second thread only waits
        "output": {"dir": str(tmp_path_factory.mktemp("runs")), "name": "egnn", "plots": False},
    })
    return pipeline.run(echo=lambda message: None)


def test_loss_falls(run: dict) -> None:
    with open(Path(run["run_dir"]) / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    train, val = [float(r["train_loss"]) for r in rows], [float(r["val_loss"]) for r in rows]
    assert train[-1] < 0.7 * train[0] and val[-1] < 0.7 * val[0], (train, val)


def test_beats_the_baselines(run: dict) -> None:
    charges = run["tasks"]["mulliken_charge"]
    assert charges["level"] == "atom" and charges["units"] == "e"
    # Each element's mean charge leaves ~0.1 e; the atoms' environments explain most of the rest.
    assert charges["test"]["mae"] < 0.5 * charges["baseline_mae"], charges
    homo = run["tasks"]["homo"]
    assert homo["units"] == "eV" and homo["test"]["mae"] < homo["baseline_mae"], homo
