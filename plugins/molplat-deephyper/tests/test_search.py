"""A real CBO search with DeepHyper's process evaluator on 2 local workers, on the QM9 dev set."""
from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

import pytest

import molplat


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, tiny_search) -> dict:
    pipeline = molplat.load_pipeline(tiny_search(str(tmp_path_factory.mktemp("runs")), workers=2))
    return pipeline.run(echo=lambda message: None)


def _without(table: dict, *names: str) -> dict:
    return {k: v for k, v in table.items() if k not in names}


def test_trials_differ_in_the_sampled_keys_only(searched: dict) -> None:
    run = Path(searched["run_dir"])
    searching = tomllib.loads((run / "search.toml").read_text())
    space = searching["search"]["space"]
    trials = sorted((run / "trials").iterdir())
    assert [t.name for t in trials] == ["000", "001", "002"]
    sampled = []
    for trial in trials:
        resolved = tomllib.loads((trial / "pipeline.toml").read_text())
        for table in ("dataset", "representation", "model", "trainer", "data"):
            differing = {f"{table}.{k}" for k in set(resolved[table]) | set(searching[table])
                         if resolved[table].get(k) != searching[table].get(k)}
            assert differing <= set(space), (trial, differing)
        assert "search" not in resolved and "explain" not in resolved
        sampled.append((resolved["trainer"]["lr"], resolved["model"]["hidden_channels"]))
        assert 1e-3 <= sampled[-1][0] <= 3e-2 and sampled[-1][1] in (4, 8, 16)
        assert json.loads((trial / "summary.json").read_text())["training"]["epochs"] == 1
    assert len(set(sampled)) == 3  # three configurations, not one trained three times


def test_the_best_configuration_reproduces_its_objective(searched: dict) -> None:
    """The run's model is the best configuration trained again, with the same seed, in the main process
    (the trial ran in a worker process): its validation MAE is the best trial's objective."""
    search = searched["search"]
    best = search["trials"][0]
    assert search["best"] == best["settings"] and search["objective"] == "val.gap.mae"
    assert [t["objective"] for t in search["trials"]] == sorted(t["objective"] for t in search["trials"])
    assert searched["val"]["mae"] == pytest.approx(best["objective"], rel=1e-6)
    run = Path(searched["run_dir"])
    written = tomllib.loads((run / "best.toml").read_text())
    assert written["trainer"]["lr"] == best["settings"]["trainer.lr"]
    assert written["model"]["hidden_channels"] == best["settings"]["model.hidden_channels"]
    assert "search" not in written and molplat.load_pipeline(run / "best.toml")
    assert molplat.load_model(run).predict([_water()])["y"].shape == (1,)


def test_the_search_writes_its_evaluations_plot_and_table(searched: dict) -> None:
    run = Path(searched["run_dir"])
    with open(run / "evaluations.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["evaluation"] for r in rows] == ["1", "2", "3"] and all(r["status"] == "done" for r in rows)
    assert {float(r["objective"]) for r in rows} == {t["objective"] for t in searched["search"]["trials"]}
    assert (run / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (run / "best_configurations.txt").read_text()
    assert "trainer.lr" in table and "val.gap.mae" in table and table.count("trials/") == 3
    metrics = searched["search"]["metrics"]
    assert metrics["evaluations"] == 3 and metrics["failed"] == 0 and metrics["overhead_per_evaluation_s"] >= 0
    assert set(searched["search"]["files"]) == {"evaluations.csv", "search.png", "best_configurations.txt"}


def _water():
    from ase.build import molecule

    return molecule("H2O")


def test_a_wall_clock_budget_ends_a_random_search_that_maximises_r2(tmp_path: Path, tiny_search) -> None:
    raw = tiny_search(str(tmp_path), name="random", max_evals=500, max_time=0.05, objective="val.gap.r2")
    del raw["search"]["initial_points"]
    summary = molplat.load_pipeline(raw).run(echo=lambda message: None)
    search = summary["search"]
    assert 1 <= search["metrics"]["evaluations"] < 500  # stopped by the 3 s budget, not by max_evals
    assert search["maximize"] is True
    r2 = [t["objective"] for t in search["trials"]]
    assert r2 == sorted(r2, reverse=True)  # larger r2 ranks first
    assert summary["val"]["r2"] == pytest.approx(r2[0], rel=1e-6)
