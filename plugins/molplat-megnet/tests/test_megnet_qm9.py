"""MEGNet learns on the QM9 dev set through a real run: a molecular target and per-atom charges."""
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
        "model": {"name": "megnet", "cutoff": 4.0, "atom_features": 16, "hidden_channels": 32, "block_channels": 16,
                  "set2set_channels": 16, "num_blocks": 2, "set2set_steps": 2, "num_gaussians": 20},
        "trainer": {"max_epochs": 3, "batch_size": 32, "lr": 3e-3, "progress_bar": False,
                    "num_threads": 1},  # a tiny model: a second thread only waits on a busy machine
        "output": {"dir": str(tmp_path_factory.mktemp("runs")), "name": "megnet", "plots": False},
    })
    return pipeline.run(echo=lambda message: None)


def test_loss_falls(run: dict) -> None:
    with open(Path(run["run_dir"]) / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    train, val = [float(r["train_loss"]) for r in rows], [float(r["val_loss"]) for r in rows]
    assert train[-1] < 0.7 * train[0] and val[-1] < val[0], (train, val)


def test_both_targets_beat_their_baselines(run: dict) -> None:
    homo, charges = run["tasks"]["homo"], run["tasks"]["mulliken_charge"]
    assert homo["test"]["mae"] < homo["baseline_mae"], homo
    assert charges["level"] == "atom" and charges["test"]["mae"] < 0.7 * charges["baseline_mae"], charges
