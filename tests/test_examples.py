"""The shipped example pipelines stay valid and runnable on the dev sets."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

import molplat

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.toml"))
#: examples that start from another example's run ([model] init); tests/test_finetune.py runs them after it
NEEDS_A_RUN = ("xtb-finetune-forces.toml",)


@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.name not in NEEDS_A_RUN], ids=lambda p: p.name)
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


def test_hmof_folder_with_a_missing_label_trains_on_the_labelled_rest(tmp_path):
    """A user's hMOF download: CIFs plus a labels CSV with one empty cell, end to end."""
    from ase.build import bulk
    from ase.io import write

    rng = np.random.default_rng(0)
    rows = ["id,co2_working_capacity"]
    for k in range(12):
        atoms = bulk("Cu", "fcc", a=3.5 + 0.05 * k, cubic=True)
        atoms.rattle(0.05, seed=k)
        write(tmp_path / f"mof{k}.cif", atoms)
        rows.append(f"mof{k},{'' if k == 5 else round(float(rng.uniform(0.5, 3.0)), 3)}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    messages: list[str] = []
    spec = {
        "dataset": {"name": "hmof", "root": str(tmp_path), "split": [0.5, 0.25, 0.25]},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "cgcnn", "atom_features": 8, "num_convs": 1, "cutoff": 4.0},
        "trainer": {"max_epochs": 1, "batch_size": 4, "progress_bar": False},
        "output": {"dir": str(tmp_path / "runs"), "plots": False},
    }
    summary = molplat.load_pipeline(spec).run(echo=messages.append)
    assert summary["target"] == "co2_working_capacity" and summary["units"] == "mol/kg"
    assert any("leaving out 1 structures without values for every target" in m for m in messages)
    sizes = json.loads((Path(summary["run_dir"]) / "data.json").read_text())["sizes"]
    assert sum(sizes.values()) == 11
