"""Extensive energies, for real: a tiny SchNet trained on u0 of the dev set.

u0 is a total energy (-1,101 to -19,444 eV on QM9): the core fits per-element reference
energies on the training split, so the model learns only what the composition does not
explain, and with a sum readout the prediction for two distant molecules is the sum of
their predictions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import molplat
from molplat.structure import Structure

pytest.importorskip("molplat_schnet")


@pytest.fixture(scope="module")
def u0_run(qm9_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    pipeline = molplat.load_pipeline({
        "dataset": {"name": "qm9", "target": "u0", "cache_dir": str(qm9_cache)},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "schnet", "cutoff": 4.0, "hidden_channels": 32, "num_filters": 32,
                  "num_interactions": 2, "num_gaussians": 20, "readout": "sum"},
        "trainer": {"max_epochs": 3, "batch_size": 32, "lr": 3e-3, "progress_bar": False,
                    "num_threads": 1},  # a tiny model: a second thread only waits (8x slower on a busy machine)
        "output": {"dir": str(tmp_path_factory.mktemp("runs")), "name": "u0", "plots": False},
    })
    return pipeline.run(echo=lambda message: None)


def test_u0_is_learnt_on_top_of_per_element_references(u0_run: dict, dev) -> None:
    entry = u0_run["tasks"]["u0"]
    assert entry["baseline"] == "per-element references"
    baseline, test_mae = entry["baseline_mae"], entry["test"]["mae"]
    # What the run scored against before: predicting the training mean of a total energy.
    splits = dev.splits((0.8, 0.1, 0.1), seed=0)
    u0 = dev.values("u0")
    mean_mae = float(np.abs(u0[splits["test"]] - u0[splits["train"]].mean()).mean())
    assert mean_mae > 200.0  # eV: molecules of different sizes have very different total energies
    assert baseline < 2.0  # eV: the composition explains nearly all of it
    # Three epochs of a tiny model add little to the references, but must not lose them.
    assert test_mae < 2.0 * baseline, (test_mae, baseline)
    assert test_mae < 0.01 * mean_mae, (test_mae, mean_mae)


def test_u0_of_two_distant_molecules_is_the_sum_of_theirs(u0_run: dict, dev) -> None:
    model = molplat.load_model(u0_run["run_dir"])
    a, b = dev[3], dev[10]
    apart = Structure(np.concatenate([a.numbers, b.numbers]),
                      np.concatenate([a.positions, b.positions + [50.0, 0.0, 0.0]]), id="pair")
    predicted = model.predict([a, b, apart])["y"]
    assert predicted[0] < -100.0 and predicted[1] < -100.0  # total energies in eV
    assert predicted[2] == pytest.approx(predicted[0] + predicted[1], rel=1e-6, abs=1e-3)
