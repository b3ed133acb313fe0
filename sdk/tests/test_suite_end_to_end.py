"""The suite as a plugin author meets it: pytest on an installed plugin distribution."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN_PY = '''
import molplat
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"


@molplat.hookimpl
def molplat_models():
    return [ComponentSpec(name="tilted", kind="model", factory="molplat_tilted.model:Tilted",
                          summary="a model that depends on the absolute z coordinate",
                          settings=(Setting("cutoff", "float", 4.0, "radius in Å", minimum=0.1, maximum=20.0),),
                          accepts=("adjacency_list",), outputs=("property",))]
'''

MODEL_PY = '''
import torch
from molplat.models import AtomisticModel, ModelOutput


class Tilted(AtomisticModel):
    accepts = ("adjacency_list",)
    embedding_layer = "embedding"

    def __init__(self, n_outputs=1, cutoff=4.0):
        super().__init__(n_outputs)
        self.embedding = torch.nn.Embedding(101, 4)
        self.out = torch.nn.Linear(5, n_outputs)

    def forward(self, batch):
        h = torch.cat([self.embedding(batch.numbers), batch.positions[:, 2:3]], dim=1)
        atom = self.out(h)
        graph = batch.atom_graph_index()
        y = torch.zeros(batch.num_graphs, self.n_outputs, dtype=h.dtype).index_add(0, graph, atom)
        pooled = torch.zeros(batch.num_graphs, 4, dtype=h.dtype).index_add(0, graph, h[:, :4])
        return ModelOutput(y=y, atom_embedding=h, graph_embedding=pooled)
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "molplat-tilted"
version = "0.1.0"

[project.entry-points."molplat.plugins"]
molplat-tilted = "molplat_tilted.plugin"
'''

TEST_PY = '''
from molplat_sdk import PluginConformance


class TestConformance(PluginConformance):
    plugin = "molplat-tilted"
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The broken plugin installed into a folder of its own (the test venv stays untouched)."""
    root = tmp_path_factory.mktemp("tilted")
    src = root / "molplat-tilted"
    (src / "molplat_tilted").mkdir(parents=True)
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "molplat_tilted" / "__init__.py").write_text("")
    (src / "molplat_tilted" / "plugin.py").write_text(PLUGIN_PY)
    (src / "molplat_tilted" / "model.py").write_text(MODEL_PY)
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, capture_output=True)
    return target


def run_pytest(tmp_path: Path, site: Path, test_source: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_plugin.py").write_text(textwrap.dedent(test_source))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def test_a_non_invariant_model_fails_the_suite_with_the_fix(tmp_path: Path, installed: Path):
    proc = run_pytest(tmp_path, installed, TEST_PY)
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "FAILED test_plugin.py::TestConformance::test_model_is_invariant[tilted-adjacency_list]" in out
    assert "predictions change under a rotation" in out and "fix: use only distances" in out
    assert "1 failed" in out and "passed" in out  # the other model checks pass
    assert "deselected" in out  # dataset, representation, ... checks do not apply to a model plugin
    assert "test_model_forces" not in out  # it declares no forces


def test_naming_a_plugin_that_is_not_installed_is_a_usage_error(tmp_path: Path, installed: Path):
    proc = run_pytest(tmp_path, installed, TEST_PY.replace("molplat-tilted", "molplat-tilde"))
    assert proc.returncode != 0
    assert "'molplat-tilde' is not an installed molplat plugin" in proc.stdout + proc.stderr
