"""`molplat new-plugin`: every kind renders a plugin that installs, is listed, passes its own tests
and the SDK's conformance suite, and runs its example pipeline; a bad request writes nothing.

The rendered plugins are installed (editable, no dependencies) into a throwaway venv layered on
this interpreter's site-packages, so molplat, torch, pytest and molplat-sdk come from here and
this environment is never modified.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from molplat.cli import main
from molplat.errors import ValidationError
from molplat.scaffold import SCAFFOLD_KINDS as KINDS
from molplat.scaffold import new_plugin, plugin_names

NAMES = {kind: "acme-" + kind.replace("_", "-") for kind in KINDS}
STAGE_OF = {"searcher": "search", "explainer": "explain", "simulator": "simulate"}


def run(python: Path, *args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MOLPLAT_DISABLE_PLUGINS", "PYTHONPATH")}
    return subprocess.run([str(python), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One plugin per kind, rendered with the CLI."""
    root = tmp_path_factory.mktemp("plugins")
    for kind, name in NAMES.items():
        assert main(["new-plugin", name, "--kind", kind, "--dir", str(root)]) == 0
    return {kind: root / f"molplat-{name}" for kind, name in NAMES.items()}


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory, rendered: dict[str, Path], overlay_venv) -> Path:
    """The throwaway venv's python, with every rendered plugin installed editable."""
    python = overlay_venv(tmp_path_factory.mktemp("venv") / "venv")
    editable = [arg for folder in rendered.values() for arg in ("-e", str(folder))]
    proc = run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
               "--disable-pip-version-check", *editable)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return python


def test_a_plugin_has_every_part(rendered):
    folder = rendered["model"]
    package = folder / "src" / "molplat_acme_model"
    for part in ("pyproject.toml", "README.md", ".github/workflows/ci.yml", "examples/pipeline.toml",
                 "tests/test_conformance.py", "tests/test_model.py"):
        assert (folder / part).is_file(), part
    assert {p.name for p in package.glob("*.py")} == {"__init__.py", "plugin.py", "model.py"}
    pyproject = (folder / "pyproject.toml").read_text()
    assert 'dependencies = ["molplat>=0.1,<0.2"]' in pyproject
    assert 'test = ["pytest>=7", "molplat-sdk>=0.1,<0.2"]' in pyproject
    assert 'molplat-acme-model = "molplat_acme_model.plugin"' in pyproject
    plugin = (package / "plugin.py").read_text()
    assert 'MOLPLAT_API = ">=1.0,<2"' in plugin and "import torch" not in plugin
    assert 'factory="molplat_acme_model.model:AcmeModel"' in plugin
    ci = (folder / ".github/workflows/ci.yml").read_text()
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in ci and 'pip install -e ".[test]"' in ci
    assert 'plugin = "molplat-acme-model"' in (folder / "tests/test_conformance.py").read_text()
    assert (rendered["dataset"] / "src/molplat_acme_dataset/data/molecules.extxyz").is_file()
    assert not (package / "data").exists()  # only the dataset template ships data
    assert not list(rendered["model"].rglob("*.jinja")) and not (rendered["model"] / "kinds").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_rendered_plugin_is_listed_with_its_component(python, kind):
    proc = run(python, "-m", "molplat.cli", "list-plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    entry = next(p for p in json.loads(proc.stdout) if p["name"] == f"molplat-{NAMES[kind]}")
    assert entry["status"] == "loaded", entry["error"]
    assert entry["components"] == {kind: [NAMES[kind].replace("-", "_")]}


@pytest.mark.parametrize("kind", KINDS)
def test_rendered_plugin_passes_conformance_and_its_own_tests(python, rendered, kind):
    proc = run(python, "-m", "pytest", str(rendered[kind] / "tests"), "-q", "-rA", "-p", "no:cacheprovider",
               cwd=rendered[kind])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert "PASSED tests/test_conformance.py::TestConformance::test_spec_is_well_formed" in output
    assert f"PASSED tests/test_{plugin_names(NAMES[kind], kind).module}.py::" in output


@pytest.mark.parametrize("kind", KINDS)
def test_rendered_example_pipeline_runs(python, rendered, kind, tmp_path):
    proc = run(python, "-m", "molplat.cli", "run", str(rendered[kind] / "examples" / "pipeline.toml"), cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    # [output] dir = "runs" is relative to the pipeline file, wherever molplat runs from
    (summary_file,) = (rendered[kind] / "examples").glob("runs/pipeline-*/summary.json")
    summary = json.loads(summary_file.read_text())
    component = NAMES[kind].replace("-", "_")
    assert f"molplat-{NAMES[kind]}" in summary["plugins"]  # the run used the new component
    if kind in STAGE_OF:
        result = summary[STAGE_OF[kind]]
        result = result[component] if kind in ("explainer", "simulator") else result
        assert result["files"] and all((summary_file.parent / f).is_file() for f in result["files"])


# -- requests that write nothing ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["My_Model", "my-model", "molplat-my-model", "  MOLPLAT_my_model "])
def test_names_are_normalised(name):
    names = plugin_names(name, "model")
    assert (names.distribution, names.package, names.component, names.class_name) == \
        ("molplat-my-model", "molplat_my_model", "my_model", "MyModel")


def test_a_class_name_never_shadows_a_name_the_template_uses():
    assert plugin_names("interaction", "model").class_name == "InteractionModel"  # the model's layer class
    assert plugin_names("timer", "trainer_backend").class_name == "TimerBackend"  # Lightning's Timer


@pytest.mark.parametrize("name, expected", [
    ("3d-net", "not a Python identifier"),
    ("my model!", "not a Python identifier"),
    ("class", "Python keyword"),
    ("molplat-", "empty"),
    ("my--model", "not a Python identifier"),
])
def test_an_invalid_name_is_one_error_and_writes_nothing(tmp_path, capsys, name, expected):
    target = tmp_path / "out"
    assert main(["new-plugin", name, "--kind", "model", "--dir", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert "such as" in err[0]  # it says how to fix it
    assert not target.exists()


def test_an_existing_folder_is_not_overwritten(tmp_path, capsys):
    existing = tmp_path / "molplat-fresh-idea"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    assert main(["new-plugin", "fresh-idea", "--kind", "model", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0], err
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("name, expected", [
    ("schnet", "distribution 'molplat-schnet' 0.1.0 is already installed"),  # the first-party plugin
    ("adjacency-list",
     "a component named 'adjacency_list' is already registered (representation from plugin 'molplat')"),
])
def test_a_name_that_is_taken_is_refused(tmp_path, capsys, name, expected):
    assert main(["new-plugin", name, "--kind", "model", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_a_file_as_dir_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["new-plugin", "fresh-idea", "--kind", "model", "--dir", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "file") in err[0] and "is a file" in err[0], err


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="unknown kind 'potential'; use one of: dataset, representation"):
        new_plugin("fresh-idea", kind="potential", directory=tmp_path)
    assert list(tmp_path.iterdir()) == []
