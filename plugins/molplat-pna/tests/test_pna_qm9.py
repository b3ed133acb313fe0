"""PNA learns QM9's gap and per-atom Mulliken charges in one run, and its checkpoint reloads
with the degree histogram of the training split."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import molplat

pytest.importorskip("molplat_qm9")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pipeline = molplat.load_pipeline({
        "dataset": {"name": "qm9", "target": ["gap", "mulliken_charge"],
                    "cache_dir": str(tmp_path_factory.mktemp("cache"))},
        "targets": {"mulliken_charge": {"loss": "l1", "weight": 2.0}},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "pna", "cutoff": 4.0, "hidden_channels": 32, "num_layers": 2, "num_radial": 12,
                  "head_channels": 32, "readout": "mean"},
        "trainer": {"max_epochs": 3, "batch_size": 32, "lr": 3e-3, "progress_bar": False,
                    "num_threads": 1},  # a tiny model: a second thread only waits
        "output": {"dir": str(tmp_path_factory.mktemp("runs")), "name": "pna", "plots": False},
    })
    return pipeline.run(echo=lambda message: None)


def test_loss_falls(run: dict) -> None:
    with open(Path(run["run_dir"]) / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    train, val = [float(r["train_loss"]) for r in rows], [float(r["val_loss"]) for r in rows]
    assert train[-1] < 0.7 * train[0] and val[-1] < val[0], (train, val)


def test_both_heads_beat_their_baselines(run: dict) -> None:
    charges = run["tasks"]["mulliken_charge"]
    assert charges["level"] == "atom" and charges["baseline"] == "per-element references"
    assert charges["test"]["mae"] < 0.6 * charges["baseline_mae"], charges
    gap = run["tasks"]["gap"]
    assert gap["test"]["mae"] < gap["baseline_mae"], gap


def test_the_checkpoint_reloads_with_the_training_histogram(run: dict) -> None:
    from ase.build import molecule

    checkpoint = torch.load(Path(run["run_dir"]) / "checkpoints" / "best.ckpt", weights_only=True)
    histogram = checkpoint["molplat"]["statistics"]["degree_histogram"]
    assert histogram and sum(histogram) > 1000  # the training split's atoms, from the core

    trained = molplat.load_model(run["run_dir"])
    model = trained.task.model
    assert model.degree_histogram == histogram and not model.default_histogram
    delta = sum(c * torch.log(torch.tensor(k + 1.0)) for k, c in enumerate(histogram)) / sum(histogram)
    assert model.convs[0].aggr_module.avg_deg_log.item() == pytest.approx(float(delta), rel=1e-5)
    assert list(model.graph_heads) == ["gap"] and list(model.atom_heads) == ["mulliken_charge"]

    water = molecule("H2O")
    predicted = trained.predict([water])["targets"]
    (charges,) = predicted["mulliken_charge"]["values"]
    assert charges.shape == (3,) and charges[0] < -0.2 and (charges[1:] > 0.1).all()  # O negative, H positive
    assert predicted["gap"]["values"].shape == (1,)
    summary = json.loads((Path(run["run_dir"]) / "summary.json").read_text())
    assert set(summary["tasks"]) == {"gap", "mulliken_charge"}
