"""The rogi explainer in real toy runs, and `molplat rogi RUN_DIR...` over them."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

import molplat
from molplat.cli import main
from molplat.results import Explanation, run_stage_component
from molplat_rogi.explainer import RogiExplainer
from molplat_sdk.context import context_copy, sdk_manager, toy_pipeline


def test_the_explainer_scores_embeddings_and_descriptors(toy_run_context, tmp_path):
    context = context_copy(toy_run_context, tmp_path / "run")
    result = run_stage_component(RogiExplainer(split="all", max_structures=30), "explainer", "rogi", context)
    assert isinstance(result, Explanation)
    assert set(result.metrics) == {"energy/embedding", "energy/descriptor", "structures"}
    assert result.metrics["structures"] == 30
    for key in ("energy/embedding", "energy/descriptor"):
        assert 0.0 <= result.metrics[key] <= 1.0 and math.isfinite(result.metrics[key])
    assert result.files == ["explain/rogi/rogi.csv", "explain/rogi/rogi.png"]
    rows = list(csv.DictReader((context.run_dir / "explain/rogi/rogi.csv").open()))
    assert [(r["target"], r["space"]) for r in rows] == [("energy", "embedding"), ("energy", "descriptor")]
    assert "element fractions" in rows[1]["distance"]  # the toy set has periodic cells: compositions
    assert (context.run_dir / "explain/rogi/rogi.png").read_bytes().startswith(b"\x89PNG")


def test_a_split_too_small_is_one_clear_error(toy_run_context, tmp_path):
    context = context_copy(toy_run_context, tmp_path / "run")
    context.splits = {"train": context.splits["train"], "val": [], "test": context.splits["test"][:2]}
    with pytest.raises(molplat.RunError, match="split 'test' has 2 structures; ROGI needs at least 3"):
        RogiExplainer(split="test").run(context)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> list[Path]:
    """Two real toy runs (different widths) whose pipelines run the rogi explainer."""
    runs = []
    for width in (4, 8):
        raw = toy_pipeline(tmp_path_factory.mktemp(f"width{width}"), **{"model.hidden_channels": width})
        raw["explain"] = [{"name": "rogi", "split": "all"}]
        summary = molplat.load_pipeline(raw, manager=sdk_manager()).run(echo=lambda message: None)
        runs.append(Path(summary["run_dir"]))
    return runs


def test_molplat_rogi_prints_a_table_and_plots_rogi_against_mae(two_runs, tmp_path, capsys):
    plot = tmp_path / "fig9.png"
    assert main(["rogi", *map(str, two_runs), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    header, rule, *rows = out.split("\n\n")[0].splitlines()
    assert header.split() == ["run", "model", "target", "ROGI", "embedding", "ROGI", "descriptors", "test", "MAE"]
    assert len(rows) == 2
    for run, row in zip(two_runs, rows):
        summary = json.loads((run / "summary.json").read_text())
        expected = summary["explain"]["rogi"]["metrics"]["energy/embedding"]
        assert row.split()[:3] == [str(run), "sdk_toy_pair", "energy"]
        assert float(row.split()[3]) == pytest.approx(expected, rel=1e-3)
        assert float(row.split()[5]) == pytest.approx(summary["tasks"]["energy"]["test"]["mae"], rel=1e-3)
    assert f"wrote {plot}" in out
    assert plot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(("make", "message"), [
    (lambda tmp, run: tmp / "nowhere", "no such run directory; pass the folder that `molplat run` printed"),
    (lambda tmp, run: tmp, "not a molplat run directory"),
    (lambda tmp, run: _without(run, tmp, "summary.json"), "summary.json: cannot be read"),
    (lambda tmp, run: _without(run, tmp, "explain"), "summary.json has no ROGI (the run had no rogi explainer); "
                                                     "add [[explain]] name = \"rogi\""),
])
def test_a_bad_run_dir_is_one_clear_error(two_runs, tmp_path, capsys, make, message):
    bad = make(tmp_path, two_runs[0])
    assert main(["rogi", str(two_runs[1]), str(bad), "--plot", str(tmp_path / "x.png")]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("error: ") and message in line, line
    assert not (tmp_path / "x.png").exists()


def test_a_plot_path_that_is_no_png_is_refused(two_runs, tmp_path, capsys):
    assert main(["rogi", str(two_runs[0]), "--plot", str(tmp_path / "fig.pdf")]) == 2
    assert "give a file ending in .png" in capsys.readouterr().err


def _without(run: Path, tmp: Path, what: str) -> Path:
    import shutil

    copy = tmp / "copy"
    shutil.copytree(run, copy)
    summary = copy / "summary.json"
    if what == "summary.json":
        summary.unlink()
    else:
        data = json.loads(summary.read_text())
        data.pop(what, None)
        summary.write_text(json.dumps(data))
    return copy
