"""Ensembles for real: three tiny SchNets on the QM9 dev set, their mean, spread, calibration, files and resume."""
from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch

import molplat
from molplat.cli import main
from molplat.ensemble import ENSEMBLE_FILE, EnsembleManifest, member_dir
from molplat.errors import RunError, ValidationError
from molplat.metrics import binned_calibration, calibration_metrics
from molplat.predict import TrainedModel
from molplat.prediction_files import Predictions, atoms_csv_path, write_csv
from molplat.rundir import read_checkpoint

pytest.importorskip("molplat_schnet")
pytest.importorskip("molplat_qm9")

TARGETS = ["gap", "mulliken_charge"]


def pipeline(runs: Path, ensemble: int | None = 3, epochs: int = 1, name: str = "ens",
             target: str | list[str] = "gap") -> dict:
    trainer = {"max_epochs": epochs, "batch_size": 64, "lr": 3e-3, "progress_bar": False,
               "num_threads": 1}  # a tiny model: a second thread only waits
    if ensemble is not None:
        trainer["ensemble"] = ensemble
    return {
        "dataset": {"name": "qm9", "target": target},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "schnet", "cutoff": 4.0, "hidden_channels": 16, "num_filters": 16,
                  "num_interactions": 1, "num_gaussians": 16},
        "trainer": trainer,
        "output": {"dir": str(runs), "name": name},
    }


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory) -> tuple[Path, dict]:
    runs = tmp_path_factory.mktemp("runs")
    summary = molplat.load_pipeline(pipeline(runs, target=TARGETS)).run(echo=lambda message: None)
    return Path(summary["run_dir"]), summary


@pytest.fixture(scope="module")
def dev_structures(ensemble_run):
    from molplat_qm9.dataset import QM9

    dataset = QM9()
    return [dataset[i] for i in range(12)]


def test_three_members_with_their_own_seed_and_weights(ensemble_run):
    run_dir, _ = ensemble_run
    manifest = EnsembleManifest.read(run_dir)
    assert manifest.complete and [m.seed for m in manifest.members] == [0, 1, 2]
    weights = []
    for k in range(3):
        folder = member_dir(run_dir, k)
        assert (folder / "metrics.csv").is_file() and (folder / "checkpoints" / "last.ckpt").is_file()
        state = read_checkpoint(folder / "checkpoints" / "best.ckpt").state_dict
        weights.append(torch.cat([v.flatten().double() for key, v in sorted(state.items()) if key.startswith("model.")]))
    assert all(not torch.allclose(weights[a], weights[b]) for a, b in ((0, 1), (0, 2), (1, 2)))
    # the single-model files are in the members' folders only
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.csv").exists()
    assert tomllib.loads((run_dir / "pipeline.toml").read_text())["trainer"]["ensemble"] == 3


def test_prediction_is_the_members_mean_and_spread(ensemble_run, dev_structures):
    run_dir, _ = ensemble_run
    model = molplat.load_model(run_dir)
    assert model.ensemble_size == 3 and len(model.members) == 3
    out = model.predict(dev_structures)
    alone = [TrainedModel(task, model.representation, run_dir).predict(dev_structures) for task in model.members]
    gaps = np.stack([p["targets"]["gap"]["values"] for p in alone])
    np.testing.assert_allclose(out["y"], gaps.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(out["y_std"], gaps.std(axis=0), rtol=1e-10)
    assert out["targets"]["gap"]["std"] is out["y_std"] and (out["y_std"] > 0).all()
    charges = [np.stack([p["targets"]["mulliken_charge"]["values"][i] for p in alone]) for i in range(len(alone[0]["y"]))]
    for i, per_member in enumerate(charges):
        np.testing.assert_allclose(out["targets"]["mulliken_charge"]["values"][i], per_member.mean(axis=0), rtol=1e-10)
        np.testing.assert_allclose(out["targets"]["mulliken_charge"]["std"][i], per_member.std(axis=0), atol=1e-12)


def test_summary_has_mean_metrics_member_metrics_and_calibration(ensemble_run):
    run_dir, summary = ensemble_run
    stored = json.loads((run_dir / "summary.json").read_text())
    assert stored["ensemble"] == {"size": 3}
    assert [m["seed"] for m in stored["training"]["members"]] == [0, 1, 2]
    for name in TARGETS:
        entry = stored["tasks"][name]
        members = entry["members"]["test_mae"]
        assert len(members) == 3 and len(set(members)) == 3
        # |mean - truth| <= mean |member - truth|: the mean's MAE is at most the members' average MAE
        assert entry["test"]["mae"] <= np.mean(members) + 1e-12
        calibration = entry["calibration"]["test"]
        assert -1.0 <= calibration["spearman"] <= 1.0
        assert 0.0 <= calibration["miscalibration_area"] <= 0.5
        within = [calibration[f"within_{k}_std"] for k in (1, 2, 3)]
        assert 0.0 <= within[0] <= within[1] <= within[2] <= 1.0
        assert calibration["rmse"] == pytest.approx(entry["test"]["rmse"])
    with open(run_dir / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(float(r["predicted_std"]) >= 0 for r in rows)
    with open(run_dir / "atom_predictions.csv", newline="") as handle:
        assert "predicted_std" in next(csv.DictReader(handle))
    for plot in ("calibration.png", "calibration-mulliken_charge.png"):
        assert (run_dir / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibration_numbers_of_known_gaussian_errors():
    rng = np.random.default_rng(0)
    std = rng.uniform(0.1, 2.0, 20000)
    true = np.zeros_like(std)
    pred = rng.normal(0.0, std)  # errors drawn with exactly the predicted spread
    calibrated = calibration_metrics(true, pred, std)
    assert calibrated["within_1_std"] == pytest.approx(0.683, abs=0.01)
    assert calibrated["within_2_std"] == pytest.approx(0.954, abs=0.01)
    assert calibrated["miscalibration_area"] < 0.01
    assert calibrated["rmse"] / calibrated["rmv"] == pytest.approx(1.0, abs=0.03)
    assert calibrated["spearman"] > 0.3  # a larger spread goes with larger errors
    overconfident = calibration_metrics(true, pred, std / 5)
    assert overconfident["within_1_std"] < 0.2 and overconfident["miscalibration_area"] > 0.3
    rmv, rmse = binned_calibration(true, pred, std, bins=10)
    assert len(rmv) == 10 and np.all(np.diff(rmv) > 0)
    np.testing.assert_allclose(rmse, rmv, rtol=0.1)  # on the y = x line, bin by bin


def test_predict_files_carry_the_spread(ensemble_run, dev_structures, tmp_path, capsys):
    run_dir, _ = ensemble_run
    source = tmp_path / "in.extxyz"
    ase.io.write(source, [s.to_atoms() for s in dev_structures[:3]])
    assert main(["predict", str(run_dir), str(source), "-o", str(tmp_path / "out.csv")]) == 0
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["file", "index", "formula", "target", "units", "predicted", "predicted_std",
                             "reference", "error"]
    model = molplat.load_model(run_dir)
    expected = model.predict(ase.io.read(source, ":"))  # the file's positions, as written
    assert [float(r["predicted_std"]) for r in rows] == pytest.approx(list(expected["y_std"]), rel=1e-12)
    with open(tmp_path / "out.atoms.csv", newline="") as handle:
        atom_rows = list(csv.DictReader(handle))
    assert all(r["predicted_std"] != "" for r in atom_rows)
    assert main(["predict", str(run_dir), str(source), "-o", str(tmp_path / "out.extxyz")]) == 0
    frames = ase.io.read(tmp_path / "out.extxyz", ":")
    assert [f.info["gap_std"] for f in frames] == pytest.approx(list(expected["y_std"]), rel=1e-9)
    np.testing.assert_allclose(frames[0].arrays["mulliken_charge_std"],
                               expected["targets"]["mulliken_charge"]["std"][0], atol=1e-7)  # extxyz: 8 digits
    assert main(["predict", str(run_dir), str(source)]) == 0
    assert "gap_std" in capsys.readouterr().out
    # forces of an ensemble (here the gradient of its gap): the mean, and the spread per component
    with_forces = model.predict(dev_structures[:2], forces=True)
    assert with_forces["forces_std"][0].shape == with_forces["forces"][0].shape
    written = write_csv(tmp_path / "forces.csv", [_frame(s, source) for s in dev_structures[:2]],
                        Predictions.of(with_forces, model.heads))
    with open(atoms_csv_path(tmp_path / "forces.csv"), newline="") as handle:
        force_rows = [r for r in csv.DictReader(handle) if r["quantity"] == "force_x"]
    assert written[-1].name == "forces.atoms.csv"
    assert [float(r["predicted_std"]) for r in force_rows[:3]] == pytest.approx(
        list(with_forces["forces_std"][0][:3, 0]), rel=1e-12)


def _frame(structure, source):
    from molplat.prediction_files import Frame

    return Frame(str(source), 0, structure.to_atoms(), structure)


def test_the_ase_calculator_reports_the_spread(ensemble_run, dev_structures):
    run_dir, _ = ensemble_run
    model = molplat.load_model(run_dir)
    atoms = dev_structures[0].to_atoms()
    with pytest.warns(UserWarning, match="not trained on forces"):
        atoms.calc = model.calculator()
    energy = atoms.get_potential_energy()
    expected = model.predict([dev_structures[0]], forces=True)
    assert energy == pytest.approx(float(expected["y"][0]), rel=1e-12)
    assert atoms.calc.get_property("energy_std", atoms) == pytest.approx(float(expected["y_std"][0]), rel=1e-12)
    # the calculator takes the spread of the float32 forces in float64, batch prediction in float32
    np.testing.assert_allclose(atoms.calc.results["forces_std"], expected["forces_std"][0], rtol=1e-6)


def test_an_interrupted_ensemble_is_incomplete_and_resume_trains_only_the_rest(tmp_path, monkeypatch):
    from molplat.training.cpu import CPUBackend

    real_fit = CPUBackend.fit
    calls: list[tuple[int, bool]] = []

    def interrupted_in_member_two(self, job):
        calls.append((job.seed, job.resume))
        if job.seed == 1:  # one of two epochs, then the process is "killed"
            real_fit(type(self)(**{**self.settings, "max_epochs": 1}), job)
            raise RunError("training interrupted (simulated)")
        return real_fit(self, job)

    monkeypatch.setattr(CPUBackend, "fit", interrupted_in_member_two)
    loaded = molplat.load_pipeline(pipeline(tmp_path / "runs", epochs=2, name="resume"))
    with pytest.raises(RunError, match="simulated"):
        loaded.run(echo=lambda message: None)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert EnsembleManifest.read(run_dir).finished == [0]
    assert not (run_dir / "summary.json").exists()
    with pytest.raises(ValidationError, match=r"incomplete \(1 of 3 trained\); finish it with .*--resume"):
        molplat.load_model(run_dir)
    first = (member_dir(run_dir, 0) / "checkpoints" / "best.ckpt").read_bytes()
    epoch_one = (member_dir(run_dir, 1) / "metrics.csv").read_text().splitlines()

    monkeypatch.setattr(CPUBackend, "fit", real_fit)
    said: list[str] = []
    summary = loaded.run(resume=run_dir, echo=said.append)
    assert "ensemble member 1 of 3: trained already (2 epochs)" in said
    assert (member_dir(run_dir, 0) / "checkpoints" / "best.ckpt").read_bytes() == first
    member_two = (member_dir(run_dir, 1) / "metrics.csv").read_text().splitlines()
    assert member_two[:2] == epoch_one and len(member_two) == 3  # epoch 0 kept, epoch 1 trained from last.ckpt
    assert [m["epochs"] for m in summary["training"]["members"]] == [2, 2, 2]
    assert molplat.load_model(run_dir).ensemble_size == 3 and calls == [(0, False), (1, False)]


def test_a_single_model_run_keeps_its_layout(tmp_path):
    summary = molplat.load_pipeline(pipeline(tmp_path, ensemble=1, name="single")).run(echo=lambda message: None)
    run_dir = Path(summary["run_dir"])
    assert (run_dir / "checkpoints" / "best.ckpt").is_file() and (run_dir / "metrics.csv").is_file()
    assert not (run_dir / ENSEMBLE_FILE).exists() and not (run_dir / "members").exists()
    assert not (run_dir / "calibration.png").exists()
    assert "ensemble" not in tomllib.loads((run_dir / "pipeline.toml").read_text())["trainer"]
    assert "calibration" not in summary and "ensemble" not in summary and "members" not in summary["training"]
    with open(run_dir / "predictions.csv", newline="") as handle:
        assert "predicted_std" not in next(csv.DictReader(handle))
    model = molplat.load_model(run_dir)
    assert model.ensemble_size == 1 and "y_std" not in model.predict([model_structure()])


def model_structure():
    from ase.build import molecule

    return molecule("CH4")


@pytest.mark.parametrize("value, message", [
    ("0", "[trainer] ensemble: 0 is below the minimum 1"),
    ("33", "[trainer] ensemble: 33 is above the maximum 32"),
    ("true", "[trainer] ensemble: expected int, got a boolean True"),
    ('"3"', "[trainer] ensemble: expected int, got str"),
])
def test_bad_ensemble_sizes_are_one_line_and_nothing_is_written(tmp_path, capsys, value, message):
    text = f"""[dataset]
name = "qm9"
[representation]
name = "adjacency_list"
[model]
name = "schnet"
[trainer]
ensemble = {value}
[output]
dir = "{tmp_path / 'runs'}"
"""
    path = tmp_path / "p.toml"
    path.write_text(text)
    assert main(["run", str(path)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], errors
    assert not (tmp_path / "runs").exists()


def test_show_lists_the_ensemble_key_of_every_backend(capsys):
    assert main(["show", "cpu"]) == 0
    assert "[trainer] keys of every backend: ensemble (int, default 1, [1, 32])" in capsys.readouterr().out
