"""The shipped example pipelines stay valid and runnable on the dev sets."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import molplat

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(path):
    pipeline = molplat.load_pipeline(path)
    assert set(pipeline.components) >= {"dataset", "representation", "model", "trainer"}


def test_coremof_example_runs_on_periodic_crystals(tmp_path):
    spec = tomllib.loads((Path(__file__).parents[1] / "examples" / "coremof-cgcnn.toml").read_text())
    spec["trainer"].update(max_epochs=2, progress_bar=False)
    spec["model"].update(atom_features=16, num_convs=2)
    spec["output"] = {"dir": str(tmp_path), "plots": False}
    summary = molplat.load_pipeline(spec).run(echo=lambda _: None)
    assert summary["units"] == "g/cm^3"
    assert summary["test"]["mae"] > 0 and summary["baseline_mae"] > 0
    assert set(summary["plugins"]) == {"molplat", "molplat-coremof", "molplat-cgcnn"}
