"""The plugin catalog: registry.toml stays true to plugins/, and the CLI reads and installs from it.

The real install runs in a throwaway venv that sees the project's site-packages through a
.pth file, so nothing is ever installed into (or removed from) the project's own .venv.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from molplat import catalog
from molplat.cli import main
from molplat.plugins import PluginManager
from molplat.resources import REGISTRY_ENV

ROOT = Path(__file__).resolve().parents[1]
TOY = Path(__file__).parent / "plugin_fixtures" / "molplat-toy"


def first_party() -> set[str]:
    """Distributions this checkout ships (registry entries with a `path`): the only installed
    plugins these tests may make claims about, since users install third-party ones beside them."""
    return {e.distribution for e in catalog.load_catalog(ROOT / "registry.toml").entries.values() if e.path}

ENTRY = """
[plugins.{name}]
distribution = "{dist}"
version = "{version}"
versions = "{versions}"
kinds = ["{kind}"]
components = {{ {kind} = ["{component}"] }}
summary = "a test entry"
homepage = "https://example.org/{dist}"
paper = ""
"""


def entry(name: str, dist: str, version: str = "0.1.0", versions: str = ">=0.1,<0.2", kind: str = "model",
          component: str = "x", path: str | None = None) -> str:
    text = ENTRY.format(name=name, dist=dist, version=version, versions=versions, kind=kind, component=component)
    return text + (f'path = "{path}"\n' if path else "")


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """Writes a catalog to a tmp file and points MOLPLAT_REGISTRY at it."""
    def write(text: str) -> Path:
        path = tmp_path / "registry.toml"
        path.write_text(text)
        monkeypatch.setenv(REGISTRY_ENV, str(path))
        return path
    return write


# -- the shipped registry keeps true ------------------------------------------------------------
def test_every_plugin_folder_has_a_matching_entry():
    entries = catalog.load_catalog(ROOT / "registry.toml").entries.values()
    by_path = {e.path: e for e in entries if e.path is not None}
    folders = sorted(ROOT.glob("plugins/molplat-*"))
    assert folders
    for folder in folders:
        assert folder.resolve() in by_path, f"registry.toml has no entry with path = \"plugins/{folder.name}\""
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        found = by_path[folder.resolve()]
        assert (found.distribution, found.version) == (project["name"], project["version"])
    assert set(by_path) == {f.resolve() for f in folders}, "an entry's path names no plugins/ folder"


def test_every_first_party_entry_lists_what_the_plugin_registers():
    """Third-party entries describe releases on PyPI; whatever version a user installed may differ."""
    manager = PluginManager()
    for entry_ in catalog.load_catalog(ROOT / "registry.toml").entries.values():
        if entry_.path is None:
            continue
        info = manager.plugin(entry_.distribution)
        assert info is not None, f"first-party {entry_.distribution} is not installed in this environment"
        assert info.status == "loaded", info.error
        assert {k: sorted(v) for k, v in entry_.components.items()} == \
               {k: sorted(v) for k, v in info.components.items()}, entry_.name
        assert sorted(entry_.kinds) == sorted(info.components)


def test_default_registry_is_the_checkouts(monkeypatch):
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    assert catalog.load_catalog().path == ROOT / "registry.toml"


# -- a malformed registry ---------------------------------------------------------------------
def test_invalid_toml_is_reported_with_the_file(registry, capsys):
    path = registry("[plugins.schnet\ndistribution = 1\n")
    assert main(["list-plugins", "--available"]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}: not valid TOML" in err


def test_missing_key_names_file_entry_key_and_fix(registry, capsys):
    text = entry("schnet", "molplat-schnet").replace('summary = "a test entry"\n', "")
    path = registry(text + entry("other", "molplat-other", kind="modle"))
    assert main(["install", "schnet", "--dry-run"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert f"error: {path}: [plugins.schnet]: missing key 'summary'; add summary = \"one line\"" in err
    assert any(line.startswith(f"error: {path}: [plugins.other] kinds: unknown kind 'modle'; did you mean 'model'?")
               for line in err)


def test_bad_versions_and_components(registry):
    registry(entry("a", "molplat-a", version="0.3.0") + entry("b", "molplat-b", versions="=>1")
             + entry("c", "molplat-c").replace('kinds = ["model"]', 'kinds = ["model", "dataset"]'))
    with pytest.raises(catalog.ValidationError) as exc:
        catalog.load_catalog()
    problems = exc.value.problems
    assert len(problems) == 3
    assert "[plugins.a] versions: '>=0.1,<0.2' excludes version '0.3.0'" in problems[0]
    assert "[plugins.b] versions: '=>1' is not a version range" in problems[1]
    assert "[plugins.c] components:" in problems[2]


# -- list-plugins --available -----------------------------------------------------------------
@pytest.fixture
def mixed_registry(registry):
    """qm9 up to date, schnet older than the catalog, a third-party plugin not installed."""
    return registry(entry("qm9", "molplat-qm9", kind="dataset", component="qm9")
                    + entry("schnet", "molplat-schnet", version="0.2.0", versions=">=0.2,<0.3", component="schnet")
                    + entry("acme", "molplat-acme", component="acme"))


def test_available_json_statuses(mixed_registry, capsys):
    assert main(["list-plugins", "--available", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["qm9"]["status"] == "installed" and rows["qm9"]["plugin_status"] == "loaded"
    assert rows["schnet"]["status"] == "newer in catalog"
    assert (rows["schnet"]["catalog_version"], rows["schnet"]["installed_version"]) == ("0.2.0", "0.1.0")
    assert rows["acme"]["status"] == "not installed" and rows["acme"]["installed_version"] is None
    assert rows["acme"]["components"] == {"model": ["acme"]} and rows["acme"]["kinds"] == ["model"]
    assert rows["molplat-cgcnn"]["status"] == "not in catalog"
    assert rows["molplat-cgcnn"]["components"] == {"model": ["cgcnn"]}
    assert "molplat" not in rows  # the core is not a plugin


def test_available_table_and_kind_filter(mixed_registry, capsys):
    assert main(["list-plugins", "--available"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "distribution", "catalog", "installed", "status", "components"]
    row = {line.split()[0]: line for line in lines[2:] if line.strip()}
    assert "newer in catalog" in row["schnet"] and "0.2.0" in row["schnet"]
    assert "not installed" in row["acme"]
    assert "installed" in row["qm9"] and "dataset: qm9" in row["qm9"]
    assert "not in catalog" in row["molplat-coremof"]
    assert "install one with `molplat install NAME`" in lines
    assert main(["list-plugins", "--available", "--kind", "dataset", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all("dataset" in r["kinds"] for r in rows)
    # qm9 by its catalog name; every other first-party dataset plugin is "not in catalog", by distribution
    others = {e.distribution for e in catalog.load_catalog(ROOT / "registry.toml").entries.values()
              if e.path and "dataset" in e.kinds and e.distribution != "molplat-qm9"}
    assert {r["name"] for r in rows if r["distribution"] in first_party()} == {"qm9"} | others


def test_available_imports_no_torch():
    code = ("import sys, molplat.cli; rc = molplat.cli.main(['list-plugins', '--available']); "
            "assert rc == 0; assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# -- install ----------------------------------------------------------------------------------
@pytest.fixture
def no_pip(monkeypatch):
    def refuse(command):
        raise AssertionError(f"pip must not run: {command}")
    monkeypatch.setattr(catalog, "_run_pip", refuse)


def test_unknown_name_suggests_and_installs_nothing(no_pip, monkeypatch, capsys):
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    assert main(["install", "schnet", "shnet"]) == 2
    err = capsys.readouterr().err
    assert "'shnet' is not in the catalog" in err and "did you mean 'schnet'?" in err
    assert "nothing was installed" in err


def test_dry_run_installs_from_the_checkout(no_pip, monkeypatch, capsys):
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    assert main(["install", "schnet", "molplat-schnet", "cgcnn", "--dry-run"]) == 0
    out = capsys.readouterr().out.strip()
    schnet, cgcnn = ROOT / "plugins" / "molplat-schnet", ROOT / "plugins" / "molplat-cgcnn"
    assert out == f"{sys.executable} -m pip install -e {schnet} -e {cgcnn}"


def test_dry_run_third_party_uses_the_index(no_pip, registry, capsys):
    registry(entry("acme", "molplat-acme", component="acme"))
    assert main(["install", "molplat-acme", "--dry-run", "--upgrade"]) == 0
    assert capsys.readouterr().out.strip().endswith("-m pip install --upgrade 'molplat-acme>=0.1,<0.2'")


def test_pip_failure_exits_1(registry, monkeypatch, capsys):
    registry(entry("acme", "molplat-acme", component="acme"))
    monkeypatch.setattr(catalog, "_run_pip", lambda command: 3)
    assert main(["install", "acme"]) == 1
    assert "pip install failed with exit code 3" in capsys.readouterr().err


def test_real_install_into_a_throwaway_venv(tmp_path, overlay_venv):
    """`molplat install toy` in a fresh venv: pip builds the fixture editable, molplat then loads it."""
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version("molplat-toy")  # never in the project's .venv, so pip has nothing to replace there
    project_site = Path(sysconfig.get_paths()["purelib"])
    before = sorted(p.name for p in project_site.iterdir())

    python = overlay_venv(tmp_path / "venv")
    toy = tmp_path / "molplat-toy"
    shutil.copytree(TOY, toy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    registry_file = tmp_path / "registry.toml"
    registry_file.write_text(entry("toy", "molplat-toy", version="0.0.1", versions=">=0.0.1", kind="dataset",
                                   component="toy_emt", path=str(toy)))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MOLPLAT_DISABLE_PLUGINS")}
    env.update({REGISTRY_ENV: str(registry_file), "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})

    def molplat(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([python, "-m", "molplat.cli", *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)

    proc = molplat("install", "toy", "--no-build-isolation")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"-m pip install --no-build-isolation -e {toy}" in proc.stdout
    assert "installed molplat-toy 0.0.1" in proc.stdout
    assert "`molplat list-plugins`" in proc.stdout

    proc = molplat("list-plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    plugins = {p["name"]: p for p in json.loads(proc.stdout)}
    assert plugins["molplat-toy"]["status"] == "loaded"
    assert plugins["molplat-toy"]["components"] == {"dataset": ["toy_emt"], "representation": ["toy_cloud"]}
    proc = molplat("list-plugins", "--available", "--json")
    assert {r["name"]: r["status"] for r in json.loads(proc.stdout)}["toy"] == "installed"

    assert sorted(p.name for p in project_site.iterdir()) == before
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version("molplat-toy")


# -- a third-party plugin beside the first-party ones ------------------------------------------
THIRD_PARTY_PLUGIN = '''
import molplat
from molplat import ComponentSpec

MOLPLAT_API = ">=1.0,<2"


@molplat.hookimpl
def molplat_datasets():
    return [ComponentSpec(name="outside_points", kind="dataset", factory="molplat_outside.data:Points",
                          summary="a dataset nobody at molplat ships")]


@molplat.hookimpl
def molplat_models():
    return [ComponentSpec(name="outside_net", kind="model", factory="molplat_outside.model:Net",
                          summary="a model nobody at molplat ships", accepts=("adjacency_list",),
                          outputs=("property",))]
'''
THIRD_PARTY_PYPROJECT = '''
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "molplat-outside"
version = "2.0.0"

[project.entry-points."molplat.plugins"]
molplat-outside = "molplat_outside.plugin"
'''


def test_catalog_checks_pass_with_a_third_party_plugin_installed(tmp_path, overlay_venv):
    """Users install plugins the catalog does not describe (or at other versions): the checks of
    this file hold in such an environment too. They run here in a venv that has one."""
    source = tmp_path / "molplat-outside"
    (source / "molplat_outside").mkdir(parents=True)
    (source / "pyproject.toml").write_text(THIRD_PARTY_PYPROJECT)
    (source / "molplat_outside" / "__init__.py").write_text("")
    (source / "molplat_outside" / "plugin.py").write_text(THIRD_PARTY_PLUGIN)
    python = overlay_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MOLPLAT_DISABLE_PLUGINS", REGISTRY_ENV, "PYTEST_ADDOPTS")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")

    def run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), *args], capture_output=True, text=True, env=env, cwd=ROOT,
                              timeout=timeout)

    proc = run("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(source))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run("-m", "molplat.cli", "list-plugins", "--json")
    plugins = {p["name"]: p for p in json.loads(proc.stdout)}
    assert plugins["molplat-outside"]["status"] == "loaded"
    assert plugins["molplat-outside"]["components"] == {"dataset": ["outside_points"], "model": ["outside_net"]}

    proc = run("-m", "pytest", str(Path(__file__)), "-q", "-p", "no:cacheprovider",
               "-k", "not third_party_plugin_installed", timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
