"""PaiNN learns QM9 targets through a real run: HOMO (intensive, averaged), ZPVE (extensive,
summed: readout "auto") and the per-atom Mulliken charges, together."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

import molplat

pytest.importorskip("molplat_qm9")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pipeline = molplat.load_pipeline({
        "dataset": {"name": "qm9", "target": ["homo", "zpve", "mulliken_charge"],
                    "cache_dir": str(tmp_path_factory.mktemp("cache"))},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "painn", "cutoff": 4.0, "hidden_channels": 32, "num_interactions": 2, "num_radial": 12,
                  "readout": "auto"},
        "trainer": {"max_epochs": 3, "batch_size": 16, "lr": 3e-3, "progress_bar": False,
                    "num_threads": 1},  # a tiny model: a second thread only waits on a busy machine
        "output": {"dir": str(tmp_path_factory.mktemp("runs")), "name": "painn", "plots": False},
    })
    return pipeline.run(echo=lambda message: None)


def test_loss_falls(run: dict) -> None:
    with open(Path(run["run_dir"]) / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    train, val = [float(r["train_loss"]) for r in rows], [float(r["val_loss"]) for r in rows]
    assert train[-1] < 0.7 * train[0] and val[-1] < val[0], (train, val)


def test_every_target_beats_its_baseline(run: dict) -> None:
    """Three epochs on ~800 molecules: the charges are learnt well (0.04 e against 0.10 e for
    each element's mean charge), ZPVE beats the composition fit, HOMO just beats the mean."""
    tasks = run["tasks"]
    errors = {name: (t["test"]["mae"], t["baseline_mae"]) for name, t in tasks.items()}
    assert tasks["mulliken_charge"]["level"] == "atom" and tasks["zpve"]["baseline"] == "per-element references"
    assert errors["mulliken_charge"][0] < 0.5 * errors["mulliken_charge"][1], errors
    assert errors["zpve"][0] < 0.9 * errors["zpve"][1], errors
    assert errors["homo"][0] < errors["homo"][1], errors
