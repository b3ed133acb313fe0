"""End to end: a tiny SchNet trained on energies and forces of the tiny dev set."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydronet_files import TINY

import molplat

pytest.importorskip("molplat_schnet")


def test_energy_and_forces_train_end_to_end(hydronet_cache: Path, tmp_path: Path) -> None:
    pipeline = molplat.load_pipeline({
        "dataset": {"name": "hydronet", **TINY, "cache_dir": str(hydronet_cache), "target": "energy",
                    "split": [0.5, 0.25, 0.25]},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "schnet", "cutoff": 4.0, "hidden_channels": 16, "num_filters": 16,
                  "num_interactions": 1, "num_gaussians": 10, "readout": "sum"},
        "trainer": {"task": "energy_forces", "max_epochs": 2, "batch_size": 4, "progress_bar": False,
                    "num_threads": 1},
        "output": {"dir": str(tmp_path), "name": "tiny", "plots": False},
    })
    summary = pipeline.run(echo=lambda message: None)
    assert summary["target"] == "energy" and summary["units"] == "eV"
    assert summary["tasks"]["energy"]["baseline"] == "per-element references"
    assert summary["test"]["mae"] >= 0 and summary["test"]["forces_mae"] > 0
    assert set(summary["plugins"]) == {"molplat", "molplat-hydronet", "molplat-schnet"}


def test_binding_energy_per_water_is_a_target(hydronet_cache: Path, tmp_path: Path) -> None:
    pipeline = molplat.load_pipeline({
        "dataset": {"name": "hydronet", **TINY, "cache_dir": str(hydronet_cache),
                    "target": "binding_energy_per_water", "split": [0.5, 0.25, 0.25]},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "schnet", "cutoff": 4.0, "hidden_channels": 8, "num_filters": 8,
                  "num_interactions": 1, "num_gaussians": 8, "readout": "mean"},
        "trainer": {"max_epochs": 1, "batch_size": 4, "progress_bar": False, "num_threads": 1},
        "output": {"dir": str(tmp_path), "name": "binding", "plots": False},
    })
    summary = pipeline.run(echo=lambda message: None)
    assert summary["target"] == "binding_energy_per_water" and summary["tasks"]["binding_energy_per_water"][
        "baseline"] == "training mean"
