"""End to end: molplat runs train SchNet on the dev sets (energies and forces for S2EF, the relaxed
energy for IS2RE); tags and fixed cannot be chosen as targets."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import molplat
from molplat.errors import ValidationError

pytest.importorskip("molplat_schnet")


def pipeline(tmp_path: Path, cache: Path, small: dict, dataset: dict, trainer: dict) -> dict:
    return {
        "dataset": {"cache_dir": str(cache), **small, **dataset},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "schnet", "hidden_channels": 16, "num_filters": 16, "num_interactions": 1,
                  "num_gaussians": 16, "cutoff": 4.0},
        "trainer": {"max_epochs": 1, "batch_size": 16, "progress_bar": False, "num_threads": 1, **trainer},
        "output": {"dir": str(tmp_path / "runs"), "plots": False},
    }


def test_s2ef_energy_and_forces_run(tmp_path: Path, oc20_cache: Path, small: dict) -> None:
    spec = pipeline(tmp_path, oc20_cache, small, {"name": "oc20_s2ef", "target": "adsorption_energy"},
                    {"task": "energy_forces"})
    summary = molplat.load_pipeline(spec).run(echo=lambda _: None)
    assert summary["target"] == "adsorption_energy" and summary["units"] == "eV"
    assert summary["forces"]["units"] == "eV/Å" and summary["test"]["forces_mae"] > 0
    assert "molplat-oc20" in summary["plugins"]
    data = json.loads((Path(summary["run_dir"]) / "data.json").read_text())
    assert sum(data["sizes"].values()) > 8  # frames, split by system


def test_is2re_relaxed_energy_run(tmp_path: Path, oc20_cache: Path, small: dict) -> None:
    spec = pipeline(tmp_path, oc20_cache, small, {"name": "oc20_is2re", "split": [0.5, 0.25, 0.25]}, {})
    summary = molplat.load_pipeline(spec).run(echo=lambda _: None)
    assert summary["target"] == "relaxed_energy" and summary["baseline_mae"] > 0


def test_tags_are_not_a_target(tmp_path: Path, oc20_cache: Path, small: dict) -> None:
    spec = pipeline(tmp_path, oc20_cache, small, {"name": "oc20_s2ef", "target": "tags"}, {})
    with pytest.raises(ValidationError, match=r"'tags' of dataset 'oc20_s2ef' cannot be learnt"):
        molplat.load_pipeline(spec)
