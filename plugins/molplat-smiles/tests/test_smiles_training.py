"""End to end: QM9 SMILES -> bond graphs -> GINE learns the gap; 3d mode feeds SchNet."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import molplat
from molplat_smiles.dataset import structure_from_smiles


@pytest.fixture(scope="module")
def gap_run(smiles_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    pipeline = molplat.load_pipeline({
        "dataset": {"name": "smiles_csv", "size": 300, "target": "gap", "cache_dir": str(smiles_cache)},
        "representation": {"name": "molecular_graph"},
        "model": {"name": "gine", "hidden_channels": 32, "num_layers": 3},
        "trainer": {"max_epochs": 15, "batch_size": 16, "lr": 3e-3, "progress_bar": False, "num_threads": 1},
        "output": {"dir": str(tmp_path_factory.mktemp("runs")), "name": "gap", "plots": False},
    })
    return pipeline.run(echo=lambda message: None)


def test_gine_beats_the_training_mean_on_the_gap(gap_run: dict) -> None:
    entry = gap_run["tasks"]["gap"] if "tasks" in gap_run else gap_run
    assert gap_run["units"] == "eV"
    assert entry["test"]["mae"] < entry["baseline_mae"], entry


def test_trained_model_predicts_from_a_smiles(gap_run: dict) -> None:
    model = molplat.load_model(gap_run["run_dir"])
    gaps = model.predict([structure_from_smiles("CCO"), structure_from_smiles("c1ccccc1")])["y"]
    assert np.isfinite(gaps).all() and (2.0 < np.asarray(gaps)).all() and (np.asarray(gaps) < 15.0).all()


def test_3d_mode_trains_schnet(tmp_path: Path) -> None:
    pytest.importorskip("molplat_schnet")
    path = tmp_path / "mols.csv"
    rows = ["CCO", "CCN", "CCC", "CC=O", "C#N", "CO", "CCCO", "OCCO", "NCCN", "CC(C)C", "C=CC", "CC#C"]
    path.write_text("smiles,gap\n" + "".join(f"{s},{5 + 0.1 * k}\n" for k, s in enumerate(rows)))
    summary = molplat.load_pipeline({
        "dataset": {"name": "smiles_csv", "path": str(path), "mode": "3d", "cache_dir": str(tmp_path / "c"),
                    "split": [0.5, 0.25, 0.25]},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "schnet", "cutoff": 4.0, "hidden_channels": 16, "num_filters": 16,
                  "num_interactions": 1, "num_gaussians": 10},
        "trainer": {"max_epochs": 1, "batch_size": 4, "progress_bar": False, "num_threads": 1},
        "output": {"dir": str(tmp_path / "runs"), "plots": False},
    }).run(echo=lambda message: None)
    assert summary["test"]["mae"] > 0
