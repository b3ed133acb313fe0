"""Several targets in one run: graph and per-atom heads, regression and classification, each with its metrics."""
from __future__ import annotations

import csv
import sys
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import molplat
from molplat import ComponentSpec, Setting, hookimpl
from molplat.data import Dataset
from molplat.plugins import PluginManager
from molplat.structure import Structure, Target


class EMTClusters(Dataset):
    """Rattled Cu/Ni clusters with EMT total energies, per-atom EMT energies and a binary 'nickel-rich' label."""

    targets: ClassVar[dict[str, Target]] = {
        "energy": Target("energy", "eV", "EMT energy", extensive=True),
        "atom_energy": Target("atom_energy", "eV", "EMT energy of each atom", level="atom"),
        "ni_rich": Target("ni_rich", "1", "1 when more than half of the atoms are nickel"),
    }
    default_target = "energy"

    def __init__(self, count: int = 60) -> None:
        from ase.build import bulk
        from ase.calculators.emt import EMT

        rng = np.random.default_rng(0)
        fcc = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
        self.items = []
        for k in range(count):
            n = int(rng.integers(4, 9))
            atoms = fcc[np.argsort(np.linalg.norm(fcc.positions - fcc.positions[0], axis=1))[:n]]
            atoms.pbc, atoms.cell = False, None
            atoms.numbers = rng.choice([28, 29], size=n, p=[0.5, 0.5])
            atoms.rattle(0.1, seed=k)
            atoms.calc = EMT()
            self.items.append(Structure(
                atoms.numbers, atoms.positions, forces=atoms.get_forces(), id=f"cluster{k}",
                targets={"energy": atoms.get_potential_energy(), "ni_rich": float((atoms.numbers == 28).mean() > 0.5)},
                atom_targets={"atom_energy": atoms.get_potential_energies()}))

    def __len__(self) -> int:
        return len(self.items)

    def get(self, index: int) -> Structure:
        return self.items[index]


@pytest.fixture(scope="module")
def manager() -> PluginManager:
    module = types.ModuleType("molplat_test_emt_clusters")
    module.MOLPLAT_API = ">=1.0,<2"
    module.EMTClusters = EMTClusters

    @hookimpl
    def molplat_datasets():
        return [ComponentSpec(name="emt_clusters", kind="dataset", factory="molplat_test_emt_clusters:EMTClusters",
                              summary="EMT Cu/Ni clusters", settings=(
                                  Setting("count", "int", 60, "clusters", minimum=10, maximum=1000),))]

    @hookimpl
    def molplat_models():  # SchNet declared without per-atom outputs, as a graph-only model would be
        return [ComponentSpec(name="graph_only", kind="model", factory="molplat_schnet.model:SchNet",
                              summary="graph-level outputs only", accepts=("adjacency_list",), outputs=("property",),
                              settings=(Setting("cutoff", "float", 4.0, "radius", minimum=0.1, maximum=20.0),))]

    module.molplat_datasets = molplat_datasets
    module.molplat_models = molplat_models
    sys.modules[module.__name__] = module
    return PluginManager(extra={"emt-clusters": module})


def pipeline(tmp_path: Path, manager: PluginManager, **changes):
    raw = {
        "dataset": {"name": "emt_clusters", "target": ["energy", "ni_rich", "atom_energy"], "split": [0.6, 0.2, 0.2]},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "schnet", "hidden_channels": 16, "num_filters": 16, "num_interactions": 2, "cutoff": 4.0},
        "trainer": {"max_epochs": 8, "batch_size": 8, "lr": 3e-3, "progress_bar": False},
        "targets": {"ni_rich": {"loss": "bce", "weight": 0.5}, "atom_energy": {"loss": "l1"}},
        "output": {"dir": str(tmp_path / "runs"), "plots": True},
    }
    for key, value in changes.items():
        table, _, setting = key.partition(".")
        raw[table][setting] = value
    return molplat.load_pipeline(raw, manager=manager)


@pytest.fixture(scope="module")
def multitask(tmp_path_factory, manager) -> dict:
    return pipeline(tmp_path_factory.mktemp("multi"), manager).run(echo=lambda message: None)


def test_each_target_has_its_level_units_metrics_and_baseline(multitask):
    tasks = multitask["tasks"]
    assert list(tasks) == ["energy", "ni_rich", "atom_energy"]
    assert tasks["energy"]["level"] == "graph" and tasks["energy"]["units"] == "eV"
    assert set(tasks["energy"]["test"]) == {"mae", "rmse", "r2"}
    assert tasks["energy"]["baseline"] == "per-element references"
    assert tasks["ni_rich"]["loss"] == "bce" and set(tasks["ni_rich"]["test"]) == {"accuracy", "roc_auc"}
    assert 0.0 <= tasks["ni_rich"]["test"]["accuracy"] <= 1.0 and "baseline_accuracy" in tasks["ni_rich"]
    assert tasks["atom_energy"]["level"] == "atom" and tasks["atom_energy"]["loss"] == "l1"
    assert "target" not in multitask  # the single-target keys belong to single-target runs


def test_the_multitask_model_learns_every_head(multitask):
    run_dir = Path(multitask["run_dir"])
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert float(rows[-1]["val_loss"]) < 0.7 * float(rows[0]["val_loss"])
    assert {"val_mae_energy", "val_mae_atom_energy"} <= set(rows[0])
    tasks = multitask["tasks"]
    # per-atom EMT energies: better than each element's mean atom energy
    assert tasks["atom_energy"]["test"]["mae"] < tasks["atom_energy"]["baseline_mae"]


def test_predictions_of_every_head_are_written_and_load_model_predicts_them(multitask):
    run_dir = Path(multitask["run_dir"])
    rows = list(csv.DictReader(open(run_dir / "predictions.csv")))
    assert {r["target"] for r in rows} == {"energy", "ni_rich"}
    atom_rows = list(csv.DictReader(open(run_dir / "atom_predictions.csv")))
    assert {r["target"] for r in atom_rows} == {"atom_energy"} and {r["element"] for r in atom_rows} <= {"28", "29"}
    assert (run_dir / "parity.png").is_file() and (run_dir / "parity-atom_energy.png").is_file()
    # full precision: what the CSV holds parses back to the float the model predicted
    assert all(float(repr(float(r["predicted"]))) == float(r["predicted"]) for r in rows)


def test_load_model_predicts_every_target(multitask, manager):
    from ase.build import bulk

    model = molplat.load_model(multitask["run_dir"], manager=manager)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.pbc, atoms.cell = False, None
    out = model.predict([atoms, atoms[:3]])
    assert out["target"] == "energy" and out["units"] == "eV" and out["y"].shape == (2,)
    targets = out["targets"]
    assert 0.0 <= targets["ni_rich"]["values"].min() <= targets["ni_rich"]["values"].max() <= 1.0
    assert [len(v) for v in targets["atom_energy"]["values"]] == [4, 3]


def test_a_per_atom_target_needs_a_model_that_predicts_per_atom_values(manager):
    with pytest.raises(molplat.ValidationError, match="atom_energy are per-atom targets, and model 'graph_only' "
                                                      "predicts no per-atom properties"):
        molplat.load_pipeline({
            "dataset": {"name": "emt_clusters", "target": ["energy", "atom_energy"]},
            "representation": {"name": "adjacency_list", "cutoff": 4.0},
            "model": {"name": "graph_only", "cutoff": 4.0}}, manager=manager)


def test_relative_paths_resolve_against_the_pipeline_file(tmp_path, molplat_cli):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "p.toml").write_text(
        '[dataset]\nname = "qm9"\nsize = 40\nsplit = [0.5, 0.25, 0.25]\n'
        '[representation]\nname = "adjacency_list"\ncutoff = 3.0\n'
        '[model]\nname = "schnet"\nhidden_channels = 8\nnum_filters = 8\nnum_interactions = 1\ncutoff = 3.0\n'
        '[trainer]\nmax_epochs = 1\nprogress_bar = false\n[output]\ndir = "runs"\nplots = false\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = molplat_cli("run", str(folder / "p.toml"), cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((folder / "runs").iterdir())) == 1 and not list(elsewhere.iterdir())
