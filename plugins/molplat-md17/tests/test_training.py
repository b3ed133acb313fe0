"""End to end: a tiny SchNet learns energies and forces of the session's generated trajectory."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import molplat

pytest.importorskip("molplat_schnet")


def test_energy_forces_run_on_the_generated_set(md17_cache: Path, tiny: dict, dev,
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    pipeline = molplat.load_pipeline({
        "dataset": {"name": "md17", "cache_dir": str(md17_cache), **tiny, "target": "energy"},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "schnet", "cutoff": 4.0, "hidden_channels": 16, "num_filters": 16, "num_interactions": 1,
                  "num_gaussians": 16, "readout": "sum"},
        "trainer": {"task": "energy_forces", "max_epochs": 3, "batch_size": 8, "lr": 3e-3, "progress_bar": False,
                    "num_threads": 1},
        "output": {"dir": str(tmp_path_factory.mktemp("runs")), "name": "md17", "plots": False},
    })
    summary = pipeline.run(echo=lambda message: None)
    assert summary["target"] == "energy" and summary["units"] == "eV"
    assert summary["forces"]["units"] == "eV/Å"
    for split in ("val", "test"):
        assert np.isfinite(summary[split]["mae"]) and np.isfinite(summary[split]["forces_mae"])
    assert summary["tasks"]["energy"]["baseline"] == "per-element references"
    assert set(summary["plugins"]) >= {"molplat", "molplat-md17", "molplat-schnet"}
    model = molplat.load_model(summary["run_dir"])
    prediction = model.predict([dev[0]])
    assert prediction["units"] == "eV" and prediction["forces"][0].shape == (9, 3)
