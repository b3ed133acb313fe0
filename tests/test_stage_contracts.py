"""The contracts the optional stages build on: result classes, pipeline variants, the ASE calculator."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from molplat.errors import RunError, ValidationError
from molplat.pipeline.config import Pipeline
from molplat.pipeline.runner import run_stage_component
from molplat.results import Explanation, SearchResult, SimulationResult
from molplat.specs import ComponentSpec
from molplat_sdk.context import context_copy, toy_pipeline


def test_results_serialise_to_plain_json():
    result = SearchResult(trials=[{"settings": {"trainer.lr": 1e-3}, "objective": np.float64(0.5)}],
                          best={"trainer.lr": 1e-3}, metrics={"best_objective": np.float32(0.5), "bad": float("nan")})
    as_dict = result.as_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["metrics"] == {"best_objective": 0.5, "bad": None} and as_dict["objective"] == "val_mae"
    assert Explanation(per_atom={"a": [1.0]}).as_dict()["per_atom"] == {"a": [1.0]}
    assert SimulationResult(trajectories=["simulate/x.traj"]).as_dict()["trajectories"] == ["simulate/x.traj"]


class ReturnsADict:
    def run(self, context):
        return {"value": 1}


def test_a_stage_must_return_its_result_class(toy_run_context, tmp_path: Path):
    context = context_copy(toy_run_context, tmp_path / "run")
    with pytest.raises(RunError, match="returned dict, not molplat.results.SimulationResult"):
        run_stage_component(ReturnsADict(), "simulator", "md", context)
    folder = context.directory("explain", "saliency")
    assert folder == context.run_dir / "explain" / "saliency" and folder.is_dir()
    assert context.relative(folder / "a.png") == "explain/saliency/a.png"


def test_pipeline_variant_changes_settings_and_drops_search(molplat_manager, tmp_path: Path):
    pipeline = Pipeline.load(toy_pipeline(tmp_path), manager=molplat_manager)
    trial = pipeline.variant({"model.hidden_channels": 4, "trainer.lr": 0.01, "output.name": "trial-0"})
    assert trial.components["model"].settings["hidden_channels"] == 4
    assert trial.components["trainer"].settings["lr"] == 0.01 and trial.output["name"] == "trial-0"
    assert pipeline.components["model"].settings["hidden_channels"] == 8  # the original is untouched
    with pytest.raises(ValidationError, match="hidden_channels"):
        pipeline.variant({"model.hidden_channels": "wide"})
    with pytest.raises(ValidationError, match="table.setting"):
        pipeline.variant({"lr": 0.1})


def test_a_representation_declaring_a_layout_is_accepted_by_models_of_that_layout(molplat_manager, tmp_path: Path):
    from molplat.pipeline.config import layouts_of

    rep = ComponentSpec(name="knn", kind="representation", factory="x:Y", outputs=("adjacency_list",))
    assert layouts_of(rep) == ("knn", "adjacency_list")
    raw = toy_pipeline(tmp_path)
    raw["representation"] = {"name": "point_cloud"}
    with pytest.raises(ValidationError, match="does not accept representation 'point_cloud'"):
        Pipeline.load(raw, manager=molplat_manager)


def test_the_calculator_gives_energy_and_minus_its_gradient(toy_run_context):
    from ase.md.verlet import VelocityVerlet
    from ase.units import fs

    atoms = toy_run_context.splits["test"][0].to_atoms()
    atoms.calc = toy_run_context.model.calculator()
    forces = atoms.get_forces()
    h, index = 1e-3, (0, 1)
    energies = []
    for sign in (1, -1):
        moved = atoms.copy()
        moved.calc = toy_run_context.model.calculator()
        moved.positions[index] += sign * h
        energies.append(moved.get_potential_energy())
    assert forces[index] == pytest.approx(-(energies[0] - energies[1]) / (2 * h), rel=2e-2, abs=2e-3)
    VelocityVerlet(atoms, timestep=0.5 * fs).run(3)  # ASE dynamics run on it
    assert np.isfinite(atoms.get_potential_energy())


def test_the_sdk_toys_stay_out_of_the_users_plugin_manager():
    from molplat.plugins import get_plugin_manager

    assert "sdk_toy_emt" not in get_plugin_manager().components("dataset")
