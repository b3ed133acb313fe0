"""[[simulate]] as an array of simulators, and the optional check_pipeline hook of stage components."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import ase.io
import pytest

import molplat
from molplat.errors import ValidationError
from molplat.pipeline.config import Pipeline
from molplat.plugins import PluginManager
from molplat.results import SimulationResult
from molplat.specs import ComponentSpec, Setting
from molplat_sdk import toys
from molplat_sdk.context import toy_pipeline

COMPONENTS = "molplat_test_stage_components"


class Recorder:
    """Writes one two-frame trajectory of the first test structure; says nothing about the pipeline."""

    def __init__(self, label: str = "a") -> None:
        self.label = label

    def run(self, context) -> SimulationResult:
        folder = context.directory("simulate", self.label)
        atoms = context.splits["test"][0].to_atoms()
        path = folder / "frames.extxyz"
        ase.io.write(path, [atoms, atoms], format="extxyz")
        return SimulationResult(metrics={"frames": 2}, trajectories=[context.relative(path)])


class NeedsForces(Recorder):
    """Refuses pipelines whose trainer does not learn forces, unless forced."""

    def __init__(self, force: bool = False, label: str = "b") -> None:
        super().__init__(label)
        self.force = force

    def check_pipeline(self, pipeline) -> list[str]:
        task = pipeline.components["trainer"].settings.get("task")
        if task == "energy_forces" or self.force:
            return []
        return ['the model is not trained on forces; set [trainer] task = "energy_forces" or force = true']


class RaisingCheck(Recorder):
    def check_pipeline(self, pipeline) -> list[str]:
        raise KeyError("no such table")


class WrongCheck(Recorder):
    def check_pipeline(self, pipeline):
        return "not a list"


_module = types.ModuleType(COMPONENTS)
for _cls in (Recorder, NeedsForces, RaisingCheck, WrongCheck):
    setattr(_module, _cls.__name__, _cls)
sys.modules[COMPONENTS] = _module

plugin = types.ModuleType("molplat_test_stage_plugin")
plugin.MOLPLAT_API = ">=1.0,<2"


def _spec(name: str, cls: str) -> ComponentSpec:
    return ComponentSpec(name=name, kind="simulator", factory=f"{COMPONENTS}:{cls}",
                         settings=(Setting("label", "str", name),)
                         + ((Setting("force", "bool", False),) if cls == "NeedsForces" else ()))


@molplat.hookimpl
def molplat_simulators() -> list[ComponentSpec]:
    return [_spec("record", "Recorder"), _spec("needs_forces", "NeedsForces"), _spec("raising", "RaisingCheck"),
            _spec("wrong", "WrongCheck")]


plugin.molplat_simulators = molplat_simulators


@pytest.fixture(scope="module")
def manager() -> PluginManager:
    return PluginManager(extra={toys.PLUGIN_NAME: toys, "molplat-test-stage": plugin})


def test_simulate_accepts_an_array_and_a_single_table(manager, tmp_path: Path):
    raw = toy_pipeline(tmp_path)
    raw["simulate"] = [{"name": "record"}, {"name": "needs_forces"}]
    pipeline = Pipeline.load(raw, manager=manager)
    assert [c.spec.name for c in pipeline.simulators] == ["record", "needs_forces"]
    assert "simulate" not in pipeline.components
    assert [entry["name"] for entry in pipeline.resolved()["simulate"]] == [
        "molplat-test-stage:record", "molplat-test-stage:needs_forces"]
    raw["simulate"] = {"name": "record"}
    assert [c.where for c in Pipeline.load(raw, manager=manager).simulators] == ["[simulate]"]


def test_a_simulator_named_twice_is_refused(manager, tmp_path: Path):
    raw = toy_pipeline(tmp_path)
    raw["simulate"] = [{"name": "record"}, {"name": "record", "label": "other"}]
    with pytest.raises(ValidationError, match=r"\[\[simulate\]\]: 'record' appears 2 times"):
        Pipeline.load(raw, manager=manager)


def test_check_pipeline_refuses_at_validate_time_naming_the_table(manager, tmp_path: Path):
    raw = toy_pipeline(tmp_path, **{"trainer.task": "property"})
    raw["simulate"] = {"name": "needs_forces"}
    with pytest.raises(ValidationError) as caught:
        Pipeline.load(raw, manager=manager)
    assert caught.value.problems == ["[simulate] 'needs_forces': the model is not trained on forces; set [trainer] "
                                     "task = \"energy_forces\" or force = true"]
    raw["simulate"] = [{"name": "record"}, {"name": "needs_forces"}]
    with pytest.raises(ValidationError, match=r"\[\[simulate\]\] #2 'needs_forces': the model is not trained"):
        Pipeline.load(raw, manager=manager)
    raw["simulate"] = {"name": "needs_forces", "force": True}
    assert Pipeline.load(raw, manager=manager).simulators[0].settings["force"] is True
    assert Pipeline.load(toy_pipeline(tmp_path, **{"simulate.name": "needs_forces"}), manager=manager)


@pytest.mark.parametrize("name, message", [
    ("raising", "[simulate] 'raising': check_pipeline failed: KeyError: 'no such table'"),
    ("wrong", "[simulate] 'wrong': check_pipeline returned str, not a list of problem strings"),
])
def test_a_broken_check_pipeline_is_one_problem(manager, tmp_path: Path, name: str, message: str):
    raw = toy_pipeline(tmp_path)
    raw["simulate"] = {"name": name}
    with pytest.raises(ValidationError) as caught:
        Pipeline.load(raw, manager=manager)
    assert caught.value.problems == [message]


def test_every_simulator_runs_and_is_stored_under_its_name(manager, tmp_path: Path):
    raw = toy_pipeline(tmp_path, **{"trainer.max_epochs": 1})
    raw["simulate"] = [{"name": "record"}, {"name": "needs_forces"}]
    summary = Pipeline.load(raw, manager=manager).run(echo=lambda message: None)
    run_dir = Path(summary["run_dir"])
    stored = json.loads((run_dir / "summary.json").read_text())["simulate"]
    assert sorted(stored) == ["needs_forces", "record"]
    for name, result in stored.items():
        assert result["metrics"] == {"frames": 2}
        assert result["trajectories"] == [f"simulate/{name}/frames.extxyz"]
        assert len(ase.io.read(run_dir / result["trajectories"][0], ":")) == 2
