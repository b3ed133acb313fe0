"""A whole run through the CLI, every artifact checked; then predict, the Python API and resume after a kill."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule
from ase.io import write

import molplat

PIPELINE = """
[dataset]
name = "qm9"
subset = "dev"
target = "gap"

[representation]
name = "adjacency_list"
cutoff = 4.0

[model]
name = "schnet"
hidden_channels = 32
num_filters = 32
num_interactions = 2
cutoff = 4.0
readout = "mean"

[trainer]
batch_size = 64
max_epochs = {epochs}
lr = 2e-3
patience = 100
progress_bar = {progress}

[output]
dir = "{runs}"
name = "e2e"
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "molplat.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("e2e")
    path = root / "pipeline.toml"
    path.write_text(PIPELINE.format(epochs=4, progress="true", runs=root / "runs"))
    proc = cli("run", str(path), cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (root / "runs").iterdir()
    return run_dir, proc


def test_run_writes_every_artifact(finished_run):
    run_dir, proc = finished_run
    assert run_dir.name.startswith("e2e-")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"target", "units", "val", "test", "baseline_mae", "plugins"} <= set(summary)
    assert summary["target"] == "gap" and summary["units"] == "eV"
    for split in ("val", "test"):
        assert set(summary[split]) >= {"mae", "rmse", "r2"}
        assert 0 < summary[split]["mae"] <= summary[split]["rmse"]
    assert summary["baseline_mae"] > 0
    assert set(summary["plugins"]) == {"molplat", "molplat-qm9", "molplat-schnet"}
    resolved = tomllib.loads((run_dir / "pipeline.toml").read_text())
    assert resolved["model"]["num_filters"] == 32 and resolved["trainer"]["optimizer"] == "adamw"
    assert resolved["plugins"]["versions"]["molplat-schnet"] == summary["plugins"]["molplat-schnet"]
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert {"train_loss", "val_loss", "val_mae", "lr"} <= set(rows[0])
    for name in ("best.ckpt", "last.ckpt"):
        assert (run_dir / "checkpoints" / name).stat().st_size > 1000
    preds = list(csv.DictReader(open(run_dir / "predictions.csv")))
    data = json.loads((run_dir / "data.json").read_text())
    assert len(preds) == data["sizes"]["test"] > 50
    mae = np.mean([abs(float(r["predicted"]) - float(r["true"])) for r in preds])
    assert mae == pytest.approx(summary["test"]["mae"], rel=1e-4)
    assert (run_dir / "parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the progress bar and the final table
    assert "Epoch 3" in proc.stdout + proc.stderr
    assert "test, predicting the training mean" in proc.stdout and "RMSE" in proc.stdout


def test_predict_cli_and_python_api_agree(finished_run, tmp_path):
    run_dir, _ = finished_run
    mols = [molecule("CH4"), molecule("H2O"), molecule("C6H6")]
    write(tmp_path / "mols.xyz", mols)
    out = tmp_path / "pred.csv"
    proc = cli("predict", str(run_dir), str(tmp_path / "mols.xyz"), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(out)))
    assert [r["formula"] for r in rows] == ["CH4", "H2O", "C6H6"]
    assert all(r["units"] == "eV" and r["target"] == "gap" for r in rows)
    model = molplat.load_model(run_dir)
    result = model.predict(mols)
    assert result["units"] == "eV"
    assert np.allclose(result["y"], [float(r["predicted"]) for r in rows], rtol=1e-5)
    printed = cli("predict", str(run_dir), str(tmp_path / "mols.xyz"), cwd=tmp_path)
    assert "C6H6" in printed.stdout and "eV" in printed.stdout
    bad = cli("predict", str(run_dir), str(tmp_path / "missing.xyz"), cwd=tmp_path)
    assert bad.returncode == 2 and "missing.xyz: file not found" in bad.stderr


def test_python_api_runs_a_pipeline_from_a_dict(tmp_path):
    spec = tomllib.loads(PIPELINE.format(epochs=1, progress="false", runs=tmp_path / "runs"))
    pipeline = molplat.load_pipeline(spec)
    summary = pipeline.run()
    assert Path(summary["run_dir"]).parent == tmp_path / "runs"
    assert summary["test"]["mae"] > 0


def test_resume_after_kill(tmp_path):
    path = tmp_path / "pipeline.toml"
    path.write_text(PIPELINE.format(epochs=8, progress="false", runs=tmp_path / "runs"))
    proc = subprocess.Popen([sys.executable, "-m", "molplat.cli", "run", str(path)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    metrics = None
    while time.time() < deadline and proc.poll() is None:
        runs = list((tmp_path / "runs").glob("e2e-*/metrics.csv"))
        if runs and (runs[0].parent / "checkpoints" / "last.ckpt").exists():
            metrics = runs[0]
            if len(runs[0].read_text().splitlines()) >= 3:  # header + two epochs
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed; raise max_epochs"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run_dir = metrics.parent
    assert not (run_dir / "summary.json").exists()
    done_before = len(list(csv.DictReader(open(metrics))))
    assert 2 <= done_before < 8
    resumed = cli("run", str(path), "--resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    epochs = [int(r["epoch"]) for r in csv.DictReader(open(metrics))]
    assert epochs == list(range(8))
    assert json.loads((run_dir / "summary.json").read_text())["test"]["mae"] > 0
    assert len(list((tmp_path / "runs").iterdir())) == 1
    # a different pipeline cannot resume this run
    path.write_text(PIPELINE.format(epochs=8, progress="false", runs=tmp_path / "runs").replace("lr = 2e-3", "lr = 1e-2"))
    other = cli("run", str(path), "--resume", str(run_dir), cwd=tmp_path)
    assert other.returncode == 2 and "[trainer] lr: run has 0.002, pipeline has 0.01" in other.stderr


def test_graph_embeddings_are_per_structure_and_independent_of_the_batch(finished_run):
    """What UMAP maps and ROGI scores: one row per structure, the same alone as in a batch, unmoved by rotation."""
    run_dir, _ = finished_run
    model = molplat.load_model(run_dir)
    mols = [molecule("CH4"), molecule("H2O"), molecule("C6H6")]
    together = model.graph_embeddings(mols, batch_size=2)
    assert together.shape[0] == 3 and np.isfinite(together).all()
    alone = np.concatenate([model.graph_embeddings([m]) for m in mols])
    assert np.allclose(together, alone, atol=1e-5)
    turned = mols[2].copy()
    turned.rotate(70, "z", center="COM")
    assert np.allclose(model.graph_embeddings([turned])[0], together[2], atol=1e-4)


def test_target_values_read_the_labels_of_one_target(finished_run):
    from molplat.structure import Structure

    run_dir, _ = finished_run
    model = molplat.load_model(run_dir)
    labelled = Structure.from_atoms(molecule("H2O"))
    labelled.targets["gap"] = 7.5
    assert np.allclose(model.target_values([labelled, Structure.from_atoms(molecule("CH4"))], "gap"), [7.5, np.nan],
                       equal_nan=True)


def test_a_stage_samples_the_same_structures_every_time(tmp_path):
    from molplat.results import RunContext

    splits = {"train": list(range(10)), "val": list(range(10, 14)), "test": []}
    context = RunContext(pipeline=None, run_dir=tmp_path, model=None, splits=splits)
    assert context.sample(("train", "val"), 20, seed=0) == list(range(14))
    drawn = context.sample(("train", "val"), 5, seed=3)
    assert drawn == context.sample(("train", "val"), 5, seed=3) and drawn == sorted(drawn) and len(set(drawn)) == 5
    assert context.sample(("test",), 5, seed=0) == []
