"""Plugin discovery against real distributions with real entry points.

The fixture distributions under plugin_fixtures/ are built and installed with pip
into a private folder; a child process with that folder on its path discovers them
through importlib metadata exactly as it would in site-packages.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


KIND_KEYS = {"dataset", "representation", "model", "trainer_backend", "searcher", "explainer", "simulator",
             "store_backend", "logger", "command"}  # logger: names for [output] loggers; command: molplat NAME


def molplat(site: Path, *args: str, disable: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site), MOLPLAT_DISABLE_PLUGINS=disable)
    return subprocess.run([sys.executable, "-m", "molplat.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd)


def listing(site: Path, disable: str = "") -> dict[str, dict]:
    proc = molplat(site, "list-plugins", "--json", disable=disable)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    for entry in data:
        assert set(entry) == {"name", "version", "status", "error", "components", "warnings"}
        assert set(entry["components"]) <= KIND_KEYS
    return {entry["name"]: entry for entry in data}


def test_broken_incompatible_and_clashing_plugins_are_reported_and_the_rest_work(plugin_site):
    plugins = listing(plugin_site)
    broken, old, clash, toy = (plugins[n] for n in ("molplat-broken", "molplat-oldapi", "molplat-clash", "molplat-toy"))
    assert broken["status"] == "failed"
    assert "molplat_missing_dependency" in broken["error"]
    assert old["status"] == "incompatible"
    assert ">=0.1,<1" in old["error"] and "1.0" in old["error"]
    # a clash keeps both plugins loaded and warns on both
    assert clash["status"] == "loaded" and clash["components"] == {"model": ["cgcnn"]}
    for name in ("molplat-clash", "molplat-cgcnn"):
        (warning,) = plugins[name]["warnings"]
        assert "model 'cgcnn' is also registered by another plugin" in warning
        assert f"pipelines must name it '{name}:cgcnn'" in warning
    assert toy["status"] == "loaded" and toy["error"] is None and toy["warnings"] == []
    assert toy["components"] == {"dataset": ["toy_emt"], "representation": ["toy_cloud"]}
    core = plugins["molplat"]
    assert core["status"] == "loaded"
    assert core["components"]["representation"] == ["adjacency_list", "adjacency_matrix", "point_cloud"]
    assert core["components"]["trainer_backend"] == ["cpu"]


def test_show_works_beside_broken_plugins(plugin_site):
    proc = molplat(plugin_site, "show", "toy_cloud")
    assert proc.returncode == 0, proc.stderr
    assert "representation, plugin molplat-toy" in proc.stdout
    assert "max_atomic_number" in proc.stdout


def test_disabled_by_environment(plugin_site):
    plugins = listing(plugin_site, disable="molplat-toy,molplat-broken")
    assert plugins["molplat-toy"]["status"] == "disabled"
    assert plugins["molplat-toy"]["components"] == {}
    assert plugins["molplat-broken"]["status"] == "disabled"


def test_disabled_by_pipeline(plugin_site, tmp_path):
    pipeline = tmp_path / "p.toml"
    base = ('[dataset]\nname = "qm9"\n[representation]\nname = "toy_cloud"\n[model]\nname = "schnet"\n')
    pipeline.write_text(base)
    proc = molplat(plugin_site, "validate", str(pipeline))
    assert "unknown representation" not in proc.stderr  # it exists while the plugin is enabled
    pipeline.write_text(base + '[plugins]\ndisable = ["molplat-toy"]\n')
    proc = molplat(plugin_site, "validate", str(pipeline))
    assert proc.returncode == 2
    assert "[representation] name: unknown representation 'toy_cloud'" in proc.stderr
    assert "molplat-toy [disabled]" in proc.stderr


def test_kind_filter_and_table(plugin_site):
    proc = molplat(plugin_site, "list-plugins", "--kind", "trainer_backend", "--json")
    names = [p["name"] for p in json.loads(proc.stdout)]
    assert "molplat" in names and "molplat-toy" not in names
    table = molplat(plugin_site, "list-plugins").stdout
    header = table.splitlines()[0].split()
    assert header == ["plugin", "version", "status", "components"]
    assert "incompatible (written for molplat plugin API >=0.1,<1" in table


def test_listing_imports_no_torch(plugin_site):
    code = ("import sys, io, contextlib, molplat.cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    molplat.cli.main(['list-plugins', '--json'])\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pytorch_lightning', 'ase'))\n"
            "print(heavy)\n")
    env = dict(os.environ, PYTHONPATH=str(plugin_site))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert proc.stdout.strip() == "[]"


def test_event_hooks_reach_a_tracker_plugin(plugin_site, tmp_path):
    events = tmp_path / "events.jsonl"
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        '[dataset]\nname = "qm9"\nsplit = [0.5, 0.25, 0.25]\n'
        '[representation]\nname = "adjacency_list"\ncutoff = 3.0\n'
        '[model]\nname = "schnet"\nhidden_channels = 8\nnum_filters = 8\nnum_interactions = 1\ncutoff = 3.0\n'
        '[trainer]\nmax_epochs = 1\nbatch_size = 128\nprogress_bar = false\n'
        f'[output]\ndir = "{tmp_path / "runs"}"\nplots = false\n')
    env = dict(os.environ, PYTHONPATH=str(plugin_site), MOLPLAT_TOY_EVENTS=str(events))
    proc = subprocess.run([sys.executable, "-m", "molplat.cli", "run", str(pipeline)], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["event"] for e in lines] == ["run_started", "stage_finished", "stage_finished", "stage_finished",
                                           "run_finished"]
    assert lines[0]["model"] == "molplat-schnet:schnet"  # resolved pipelines use qualified names
    assert [e["stage"] for e in lines[1:4]] == ["data", "train", "evaluate"]
    assert "baseline_mae" in lines[3]["keys"]
    assert lines[-1]["test_mae"] > 0


def test_energy_and_forces_pipeline_from_a_third_party_dataset(plugin_site, tmp_path):
    """task = 'energy_forces' end to end: forces reach the loss, the summary and predictions."""
    pipeline = tmp_path / "emt.toml"
    pipeline.write_text(
        '[dataset]\nname = "toy_emt"\ncount = 40\n'
        '[representation]\nname = "adjacency_list"\ncutoff = 4.0\n'
        '[model]\nname = "schnet"\nhidden_channels = 16\nnum_filters = 16\nnum_interactions = 2\ncutoff = 4.0\n'
        '[trainer]\ntask = "energy_forces"\nmax_epochs = 3\nbatch_size = 8\nprogress_bar = false\n'
        f'[output]\ndir = "{tmp_path / "runs"}"\n')
    proc = molplat(plugin_site, "run", str(pipeline), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["units"] == "eV"
    assert summary["test"]["forces_mae"] > 0
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert "val_forces_mae" in rows[0] and len(rows) == 4
    from ase.build import bulk
    from ase.io import write

    write(tmp_path / "cu.extxyz", bulk("Cu", "fcc", a=3.6, cubic=True))
    predicted = molplat(plugin_site, "predict", str(run_dir), str(tmp_path / "cu.extxyz"), cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    assert "Cu4" in predicted.stdout and "eV" in predicted.stdout
