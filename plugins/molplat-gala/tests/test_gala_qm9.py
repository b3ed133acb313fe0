"""Gala learns QM9 targets through a real run: the loss falls and the test errors beat the baselines."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

import molplat

pytest.importorskip("molplat_qm9")

EPOCHS = 4


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # 300 training molecules of the dev set; the rest is mostly test (forward passes only).
    pipeline = molplat.load_pipeline({
        "dataset": {"name": "qm9", "target": ["homo", "mulliken_charge"], "split": [0.3, 0.1, 0.6],
                    "cache_dir": str(tmp_path_factory.mktemp("cache"))},
        "representation": {"name": "point_cloud"},
        "model": {"name": "gala", "hidden_channels": 16, "num_layers": 1, "rank": 1, "cutoff": 4.0,
                  "dilation": 1.0, "readout": "mean"},
        "trainer": {"max_epochs": EPOCHS, "batch_size": 16, "lr": 3e-3, "progress_bar": False,
                    "num_threads": 1},  # a tiny model: a second thread only waits
        "output": {"dir": str(tmp_path_factory.mktemp("runs")), "name": "gala", "plots": False},
    })
    return pipeline.run(echo=lambda message: None)


def test_loss_falls(run: dict) -> None:
    with open(Path(run["run_dir"]) / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    train, val = [float(r["train_loss"]) for r in rows], [float(r["val_loss"]) for r in rows]
    assert len(rows) == EPOCHS and train[-1] < 0.8 * train[0] and val[-1] < val[0], (train, val)


def test_beats_the_baselines(run: dict) -> None:
    charges = run["tasks"]["mulliken_charge"]
    assert charges["level"] == "atom" and charges["units"] == "e"
    assert charges["test"]["mae"] < 0.8 * charges["baseline_mae"], charges
    homo = run["tasks"]["homo"]
    assert homo["test"]["mae"] < homo["baseline_mae"], homo
