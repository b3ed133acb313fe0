"""Each check passes on a sound component and fails, with its fix, on one that breaks the contract."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from molplat.specs import ComponentSpec, Setting
from molplat_sdk import ConformanceError
from molplat_sdk.checks import common, dataset, model, representation, stages
from molplat_sdk.context import context_copy
from molplat_sdk.structures import tiny_structures

MODEL_SETTINGS = (Setting("cutoff", "float", 4.0, "radius in Å"),)


def model_spec(factory: str, outputs=("property", "energy", "forces")) -> ComponentSpec:
    return ComponentSpec(name="subject", kind="model", factory=factory, summary="a model under test",
                         settings=MODEL_SETTINGS, accepts=("adjacency_list",), outputs=outputs,
                         plugin="molplat-sdk-tests")


def case(factory: str, manager) -> model.ModelCase:
    rep = manager.components("representation")["adjacency_list"]
    return model.ModelCase(model_spec(factory), {"cutoff": 4.0}, rep, {"cutoff": 4.0, "max_neighbors": None})


def run_all_model_checks(c: model.ModelCase) -> None:
    structures = tiny_structures()
    model.check_forward(c, structures)
    model.check_gradients(c, structures)
    model.check_invariance(c, structures, np.random.default_rng(0))
    model.check_forces(c, structures, np.random.default_rng(1))
    model.check_state_dict_round_trip(c, structures)


def test_a_sound_model_passes(molplat_manager):
    run_all_model_checks(case("broken:_Base", molplat_manager))


@pytest.mark.parametrize("factory, message", [
    ("broken:UsesAbsoluteZ", "change under a rotation"),
    ("broken:UsesAtomOrder", "reordered|depends on the others in its batch"),
    ("broken:IgnoresPeriodicShift", "lattice vector"),
    ("broken:HasUnusedParameter", "no gradient from y.*forgotten"),
    ("broken:DetachesPartOfTheEnergy", "numerical energy derivative"),
    ("broken:KeepsStateOutsideTheStateDict", "predicts differently"),
    ("broken:WrongShape", "has shape \\[5, 1\\]"),
])
def test_a_broken_model_is_caught_with_a_fix(molplat_manager, factory, message):
    with pytest.raises(ConformanceError, match=message) as caught:
        run_all_model_checks(case(factory, molplat_manager))
    assert "fix:" in str(caught.value) and "subject" in str(caught.value)


def dataset_spec(factory: str) -> ComponentSpec:
    return ComponentSpec(name="subject", kind="dataset", factory=factory, summary="a dataset under test",
                         plugin="molplat-sdk-tests")


@pytest.mark.parametrize("factory, message", [
    ("broken:NaNTargets", "non-finite target values"),
    ("broken:NoUnits", "has no units"),
    ("broken:ChargesAsNumbers", "outside 1..118"),
])
def test_a_broken_dataset_is_caught(factory, message):
    spec = dataset_spec(factory)
    data = dataset.build_offline(spec, {})
    with pytest.raises(ConformanceError, match=message):
        dataset.check_structures(spec, data)
        dataset.check_targets(spec, data)


def test_a_dataset_that_downloads_fails_offline():
    with pytest.raises(ConformanceError, match="tried to reach the network") as caught:
        dataset.build_offline(dataset_spec("broken:Downloads"), {})
    assert "ship the dev set" in str(caught.value)


def test_the_toy_dataset_passes():
    spec = dataset_spec("molplat_sdk.toy_components:ToyEMTDataset")
    data = dataset.build_offline(spec, {})
    dataset.check_structures(spec, data)
    dataset.check_targets(spec, data)
    dataset.check_splits(spec, data)


def rep_spec(factory: str) -> ComponentSpec:
    return ComponentSpec(name="subject", kind="representation", factory=factory, summary="a representation",
                         plugin="molplat-sdk-tests")


def test_edge_indices_without_offsets_are_caught():
    spec = rep_spec("broken:ForgetsEdgeOffsets")
    with pytest.raises(ConformanceError, match="neighbour pairs of structure|another structure"):
        representation.check_collate(spec, spec.build(cutoff=4.0), tiny_structures())


def test_missing_periodic_images_are_caught():
    spec = rep_spec("broken:DropsPeriodicImages")
    with pytest.raises(ConformanceError, match="pairs within 4.0 Å are missing") as caught:
        representation.check_neighbors(spec, spec.build(cutoff=4.0), tiny_structures())
    assert "periodic=True" in str(caught.value)


def test_truncated_neighbour_lists_are_checked_against_the_nearest():
    spec = rep_spec("molplat.representations.adjacency_list:AdjacencyList")
    representation.check_neighbors(spec, spec.build(cutoff=5.0, max_neighbors=4), tiny_structures())


def test_an_eager_plugin_module_is_caught():
    spec = ComponentSpec(name="subject", kind="model", factory="molplat_sdk.toy_components:ToyPairModel",
                         summary="x", plugin="molplat-sdk-tests")
    with pytest.raises(ConformanceError, match="imports torch"):
        common.check_lazy_factory(spec, "molplat_sdk.checks.model")  # stands in for a plugin.py importing torch
    with pytest.raises(ConformanceError, match="factory lives in the entry-point module"):
        common.check_lazy_factory(spec, "molplat_sdk.toy_components")


def test_settings_the_factory_does_not_take_are_caught():
    spec = ComponentSpec(name="subject", kind="model", factory="molplat_sdk.toy_components:ToyPairModel",
                         summary="x", settings=(Setting("depth", "int", 2, "layers"),), plugin="molplat-sdk-tests")
    with pytest.raises(ConformanceError, match=r"does not take \['depth'\]"):
        common.check_settings_defaults(spec)


def test_a_misspelt_test_setting_is_named():
    spec = model_spec("broken:_Base")
    with pytest.raises(ConformanceError, match="'cutof'.*does not declare"):
        common.settings_for(spec, {"cutof": 3.0})


@pytest.mark.parametrize("factory, message", [
    ("broken:ExplainerReturningADict", "returned dict, not molplat.results.Explanation"),
    ("broken:ExplainerListingAMissingFile", "does not exist"),
])
def test_a_broken_explainer_is_caught(toy_run_context, tmp_path: Path, factory, message):
    spec = ComponentSpec(name="subject", kind="explainer", factory=factory, summary="x", plugin="molplat-sdk-tests")
    with pytest.raises(ConformanceError, match=message):
        stages.check_stage(spec, {}, context_copy(toy_run_context, tmp_path / "run"))


def test_the_toy_run_trained_a_model_with_forces(toy_run_context):
    assert toy_run_context.model.task.with_forces
    assert set(toy_run_context.splits) == {"train", "val", "test"}
    out = toy_run_context.model.predict(toy_run_context.splits["test"][:2])
    assert out["y"].shape == (2,) and out["forces"][0].shape == (len(toy_run_context.splits["test"][0]), 3)
