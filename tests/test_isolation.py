"""Isolation beyond load time: components that cannot load, event hooks that raise, name clashes, typos.

Every case runs the real CLI in a child process against fixture distributions installed
with pip (tests/plugin_fixtures), found through their entry points.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

BASE = """
[dataset]
name = "qm9"
split = [0.5, 0.25, 0.25]
size = 60
[representation]
name = "adjacency_list"
cutoff = 3.0
[model]
name = "{model}"
hidden_channels = 8
num_filters = 8
num_interactions = 1
cutoff = 3.0
[trainer]
max_epochs = 1
batch_size = 32
progress_bar = false
[output]
dir = "{runs}"
plots = false
"""


def pipeline(tmp_path: Path, extra: str = "", model: str = "schnet") -> Path:
    path = tmp_path / "p.toml"
    text = BASE.format(model=model, runs=tmp_path / "runs")
    if not model.endswith("schnet"):
        text = text.replace("num_filters = 8\nnum_interactions = 1\n", "").replace("hidden_channels = 8\n", "")
    if model.startswith("fragile"):
        text = text.replace("cutoff = 3.0\n[trainer]", "[trainer]")
    path.write_text(text + extra)
    return path


def one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize("extra, model, expected", [
    ("", "fragile_import", "[model] name: model 'fragile_import' of plugin 'molplat-fragile' cannot be loaded: "
                           "ModuleNotFoundError: No module named 'molplat_fragile.missing_module'"),
    ("", "fragile_build", "[model]: model 'fragile_build' of plugin 'molplat-fragile' fails to build with these "
                          "settings: ValueError: width 8 needs an accelerator this machine lacks"),
    ('[search]\nname = "fragile_search"\n', "schnet",
     "[search]: searcher 'fragile_search' of plugin 'molplat-fragile' fails to build with these settings: "
     "RuntimeError: the search service is not configured"),
    ('[[explain]]\nname = "fragile_explain"\n', "schnet",
     "[[explain]] #1 name: explainer 'fragile_explain' of plugin 'molplat-fragile' cannot be loaded"),
    ('[simulate]\nname = "fragile_simulate"\n', "schnet",
     "[simulate]: simulator 'fragile_simulate' of plugin 'molplat-fragile' fails to build with these settings: "
     "ImportError: simulation engine library is not installed"),
], ids=["model-import", "model-build", "search-build", "explain-import", "simulate-build"])
def test_a_component_that_cannot_load_or_build_fails_validate_and_run_before_any_run_directory(molplat_cli, 
        plugin_site, tmp_path, extra, model, expected):
    path = pipeline(tmp_path, extra, model)
    for command in ("validate", "run"):
        line = one_error_line(molplat_cli(command, str(path), site=plugin_site))
        assert expected in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("hooks", ["run_started,stage_finished,run_finished", "stage_finished", "run_finished"])
def test_an_event_hook_that_raises_never_fails_the_run(molplat_cli, plugin_site, tmp_path, hooks):
    path = pipeline(tmp_path)
    events = tmp_path / "events.jsonl"
    proc = molplat_cli("run", str(path), site=plugin_site, MOLPLAT_FRAGILE_HOOKS=hooks,
                       MOLPLAT_TOY_EVENTS=str(events))
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = hooks.split(",")[0]
    # reported once as it happens (the final report lists it again), then the plugin is not called again
    warnings = [line for line in proc.stdout.splitlines() if "molplat-fragile" in line]
    assert len(warnings) == 1, warnings
    assert f"plugin 'molplat-fragile' failed in hook molplat_{first}" in warnings[0]
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    (warning,) = summary["warnings"]
    assert f"molplat_{first} (RuntimeError: fixture tracker lost its connection in {first})" in warning
    assert summary["test"]["mae"] > 0
    # the other plugins' hooks still ran, every one of them
    recorded = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert recorded == ["run_started", "stage_finished", "stage_finished", "stage_finished", "run_finished"]


def test_two_plugins_with_one_component_name_are_both_usable_by_qualified_name(molplat_cli, plugin_site, tmp_path):
    path = pipeline(tmp_path, model="cgcnn")
    line = one_error_line(molplat_cli("validate", str(path), site=plugin_site))
    assert ("[model] name: model 'cgcnn' is registered by 2 plugins; name one of them: 'molplat-cgcnn:cgcnn', "
            "'molplat-clash:cgcnn'") in line
    for qualified in ("molplat-cgcnn:cgcnn", "molplat-clash:cgcnn"):
        path = pipeline(tmp_path, model=qualified)
        proc = molplat_cli("validate", str(path), site=plugin_site)
        assert proc.returncode == 0, proc.stderr
    # a qualified name works without any clash too, and show accepts it
    proc = molplat_cli("validate", str(pipeline(tmp_path, model="molplat-schnet:schnet")))
    assert proc.returncode == 0, proc.stderr
    shown = molplat_cli("show", "molplat-clash:cgcnn", site=plugin_site)
    assert shown.returncode == 0 and "molplat-clash" in shown.stdout


def test_the_resolved_pipeline_names_components_by_qualified_name(molplat_cli, tmp_path):
    path = pipeline(tmp_path)
    proc = molplat_cli("run", str(path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    text = (run_dir / "pipeline.toml").read_text()
    assert 'name = "molplat-schnet:schnet"' in text and 'name = "molplat:adjacency_list"' in text


@pytest.mark.parametrize("where", ["pipeline", "environment"])
def test_an_unknown_disabled_plugin_is_reported_with_a_close_match(molplat_cli, plugin_site, tmp_path, where):
    if where == "pipeline":
        path = pipeline(tmp_path, '[plugins]\ndisable = ["molplat-tyo"]\n')
        proc = molplat_cli("validate", str(path), site=plugin_site)
        source = "[plugins] disable"
    else:
        path = pipeline(tmp_path)
        proc = molplat_cli("validate", str(path), site=plugin_site, MOLPLAT_DISABLE_PLUGINS="molplat-tyo")
        source = "MOLPLAT_DISABLE_PLUGINS"
    line = one_error_line(proc)
    assert f"{source}: 'molplat-tyo' is not an installed plugin; did you mean 'molplat-toy'?" in line
