"""A tiny SchNet on the QM9 dev set: each trial trains one epoch in a few seconds."""
from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("molplat_qm9")
pytest.importorskip("molplat_schnet")


@pytest.fixture(scope="session")
def tiny_search() -> Any:
    return _tiny_search


def _tiny_search(output_dir: str, **search: Any) -> dict[str, Any]:
    """A real search pipeline: SchNet learns the HOMO-LUMO gap for one epoch per trial."""
    return {
        "dataset": {"name": "qm9", "subset": "dev", "target": "gap", "split": [0.5, 0.25, 0.25]},
        "representation": {"name": "adjacency_list", "cutoff": 3.0},
        "model": {"name": "schnet", "hidden_channels": 8, "num_filters": 8, "num_interactions": 1,
                  "num_gaussians": 8, "cutoff": 3.0, "readout": "mean"},
        "trainer": {"max_epochs": 1, "batch_size": 64, "lr": 1e-3, "progress_bar": False, "num_threads": 1,
                    "seed": 3},
        "search": {"name": "cbo", "max_evals": 3, "initial_points": 2, "objective": "val.gap.mae",
                   "space": {"trainer.lr": {"low": 1e-3, "high": 3e-2, "log": True},
                             "model.hidden_channels": [4, 8, 16]}, **search},
        "output": {"dir": output_dir, "name": "search", "plots": False},
    }
