"""The search stage's contract: it runs before the run's own training, trials are sub-runs on the data
prepared once, the best configuration is written as best.toml and becomes the run's model, explain runs
once on that model, pipelines pickle for process evaluators, and a space is checked at validate time."""
from __future__ import annotations

import pickle
import sys
import tomllib
from pathlib import Path

import pytest

import molplat
from molplat.errors import ValidationError
from molplat.pipeline.config import Pipeline
from molplat.plugins import PluginManager
from molplat.results import Explanation, RunContext, SearchResult
from molplat.specs import ComponentSpec, Setting
from molplat_sdk import toys
from molplat_sdk.context import toy_pipeline

PLUGIN = "molplat-test-stages"
SEEN: dict[str, list] = {"search_model": [], "explain_hidden": [], "trial_metrics": []}


class GridSearcher:
    """Scores every value of one key in turn and keeps the lowest objective: the smallest real searcher."""

    def __init__(self, space: dict, objective: str = "val_loss"):
        self.space, self.objective = space, objective

    def run(self, context: RunContext) -> SearchResult:
        SEEN["search_model"].append(context.model)
        (dimension,) = context.search_space(self.space)
        trials = []
        for n, value in enumerate(dimension.choices):
            metrics = context.run_trial({dimension.key: value}, f"trials/{n:03d}")
            SEEN["trial_metrics"].append(metrics)
            trials.append({"settings": {dimension.key: value}, "objective": metrics[self.objective],
                           "directory": f"trials/{n:03d}"})
        trials.sort(key=lambda t: t["objective"])
        return SearchResult(trials=trials, best=trials[0]["settings"], objective=self.objective)


class WidthExplainer:
    """Records the width of the model it explains (the final model's, after a search)."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def run(self, context: RunContext) -> Explanation:
        assert context.model is not None
        SEEN["explain_hidden"].append(context.pipeline.components["model"].settings["hidden_channels"])
        return Explanation(metrics={"scale": self.scale})


MOLPLAT_API = ">=1.0,<2"


@molplat.hookimpl
def molplat_searchers() -> list[ComponentSpec]:
    return [ComponentSpec(name="grid", kind="searcher", factory=f"{__name__}:GridSearcher",
                          settings=(Setting("space", "dict", None, "the space", required=True),
                                    Setting("objective", "str", "val_loss", "the metric")))]


@molplat.hookimpl
def molplat_explainers() -> list[ComponentSpec]:
    return [ComponentSpec(name="width", kind="explainer", factory=f"{__name__}:WidthExplainer",
                          settings=(Setting("scale", "float", 1.0, "a number", minimum=0.0, maximum=10.0),))]


@pytest.fixture(scope="module")
def manager() -> PluginManager:
    return PluginManager(extra={toys.PLUGIN_NAME: toys, PLUGIN: sys.modules[__name__]})


def searching(tmp_path: Path, **search) -> dict:
    raw = toy_pipeline(tmp_path, **{"trainer.max_epochs": 2, "trainer.num_threads": 1})
    raw["search"] = {"name": "grid", "space": {"model.hidden_channels": [4, 12]}, **search}
    raw["explain"] = [{"name": "width"}]
    return raw


def test_the_search_runs_first_and_its_best_configuration_is_the_runs_model(manager, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch):
    import molplat.pipeline.trials as trials

    def no_second_preparation(*args, **kwargs):
        raise AssertionError("a trial prepared the data again")

    monkeypatch.setattr(trials, "prepare", no_second_preparation)
    for key in SEEN:
        SEEN[key].clear()
    summary = Pipeline.load(searching(tmp_path), manager=manager).run(echo=lambda m: None)
    run = Path(summary["run_dir"])
    assert SEEN["search_model"] == [None]  # the searcher ran before the run's model existed
    objectives = {t["settings"]["model.hidden_channels"]: t["objective"] for t in summary["search"]["trials"]}
    best_width = min(objectives, key=objectives.get)
    assert summary["search"]["best"] == {"model.hidden_channels": best_width}
    # Trials are sub-runs, trained and scored on the validation split, without explain or simulate.
    for n in (0, 1):
        trial = run / "trials" / f"{n:03d}"
        assert (trial / "checkpoints" / "best.ckpt").is_file() and (trial / "summary.json").is_file()
        assert not (trial / "explain").exists()
    assert set(SEEN["trial_metrics"][0]) >= {"val_loss", "val.mae", "val.energy.mae", "val.forces.mae", "seconds"}
    # best.toml is a runnable pipeline with the best settings and no [search]; pipeline.toml is the model's.
    best = tomllib.loads((run / "best.toml").read_text())
    assert "search" not in best and best["model"]["hidden_channels"] == best_width
    assert best["output"]["name"] == "toy-best"
    Pipeline.load(best, manager=manager)
    assert tomllib.loads((run / "pipeline.toml").read_text())["model"]["hidden_channels"] == best_width
    assert "search" in tomllib.loads((run / "search.toml").read_text())
    molplat.load_model(run, manager=manager)  # the weights fit the model pipeline.toml describes
    # The run's model reproduces the best trial (same data, same seed, same settings).
    assert summary["training"]["best_val_loss"] == pytest.approx(objectives[best_width], rel=1e-5)
    assert SEEN["explain_hidden"] == [best_width] and list(summary["explain"]) == ["width"]


def test_a_search_run_resumes_against_the_pipeline_that_searched(manager, tmp_path: Path):
    pipeline = Pipeline.load(searching(tmp_path), manager=manager)
    summary = pipeline.run(echo=lambda m: None)
    again = pipeline.run(resume=summary["run_dir"], echo=lambda m: None)  # pipeline.toml now holds the best
    assert again["search"]["best"] == summary["search"]["best"]
    changed = searching(tmp_path)
    changed["search"]["space"] = {"model.hidden_channels": [4, 16]}
    with pytest.raises(ValidationError, match="different pipeline"):
        Pipeline.load(changed, manager=manager).run(resume=summary["run_dir"], echo=lambda m: None)


@pytest.mark.parametrize("space, message", [
    ({"model.hidden_width": [4, 8]}, "'hidden_width' is not a key of model"),
    ({"model.hidden_channels": [4, "wide"]}, "'wide': expected int"),
    ({"model.hidden_channels": {"low": 0, "high": 8}}, "0: "),
    ({"trainer.lr": {"low": 0.0, "high": 0.1, "log": True}}, "must start above 0"),
    ({"trainer.lr": {"low": 0.1, "high": 0.01}}, "must be below high"),
    ({"trainer.lr": 0.1}, "expected a range"),
    ({"output.dir": ["a", "b"]}, "[output] is not searched"),
    ({"lr": [0.1, 0.2]}, "\"table.setting\""),
    ({"trainer.optimizer": {"low": 1, "high": 2}}, "a range needs a number key"),
    ({"model.hidden_channels": [8]}, "at least two values"),
])
def test_a_bad_space_is_a_validation_error(manager, tmp_path: Path, space: dict, message: str):
    raw = searching(tmp_path)
    raw["search"]["space"] = space
    with pytest.raises(ValidationError) as info:
        Pipeline.load(raw, manager=manager)
    assert message in str(info.value)


def test_a_search_objective_must_be_a_validation_metric_of_the_run(manager, tmp_path: Path):
    with pytest.raises(ValidationError, match=r"'val.gap.mae' is not a validation metric .*val.energy.mae"):
        Pipeline.load(searching(tmp_path, objective="val.gap.mae"), manager=manager)
    assert Pipeline.load(searching(tmp_path, objective="val.forces.mae"), manager=manager)


def test_a_float_key_searched_over_integer_ends_samples_floats(manager, tmp_path: Path):
    raw = searching(tmp_path)
    raw["search"]["space"] = {"trainer.weight_decay": {"low": 0, "high": 1}, "model.hidden_channels":
                              {"low": 4, "high": 16}}
    pipeline = Pipeline.load(raw, manager=manager)
    context = RunContext(pipeline, tmp_path, None)
    decay, width = context.search_space(raw["search"]["space"])
    assert (decay.low, decay.high, decay.integer) == (0.0, 1.0, False) and isinstance(decay.low, float)
    assert width.integer and width.contains(8) and not width.contains(8.5) and not width.contains(17)


def test_a_pipeline_pickles_and_is_validated_again(manager, tmp_path: Path):
    pipeline = Pipeline.load(searching(tmp_path), manager=manager)
    copy = pickle.loads(pickle.dumps(pipeline))
    assert copy.resolved() == pipeline.resolved() and copy.source == pipeline.source
    assert copy.base_dir == pipeline.base_dir and copy.manager is not pipeline.manager
    assert copy.variant({"model.hidden_channels": 4}).components["model"].settings["hidden_channels"] == 4
    from molplat.pipeline.trials import TrialRunner

    runner = pickle.loads(pickle.dumps(TrialRunner(pipeline, tmp_path)))
    assert runner.run_dir == tmp_path.resolve() and runner.pipeline.resolved() == pipeline.resolved()


def test_variant_changes_an_explain_entry(manager, tmp_path: Path):
    raw = searching(tmp_path)
    pipeline = Pipeline.load(raw, manager=manager)
    assert pipeline.variant({"explain.scale": 2.0}).explainers[0].settings["scale"] == 2.0
    assert pipeline.variant({"explain.width.scale": 3.0}).explainers[0].settings["scale"] == 3.0
    raw["explain"] = [{"name": "width"}, {"name": "width", "scale": 0.5}]
    two = Pipeline.load(raw, manager=manager)
    with pytest.raises(ValidationError, match="name one"):
        two.variant({"explain.scale": 2.0})
    with pytest.raises(ValidationError, match="no \\[\\[explain\\]\\] entry is named 'other'"):
        two.variant({"explain.other.scale": 2.0})
    with pytest.raises(ValidationError, match="scale"):
        pipeline.variant({"explain.scale": -1.0})


def test_a_trial_directory_must_be_inside_the_run(manager, tmp_path: Path):
    from molplat.errors import RunError

    context = RunContext(Pipeline.load(searching(tmp_path), manager=manager), tmp_path / "run", None)
    with pytest.raises(RunError, match="inside the run directory"):
        context.run_trial({"model.hidden_channels": 4}, "../elsewhere")
