"""The poptorch backend: its PopTorch calls (on the test double), run directories, resume, and the CLI
with and without poptorch installed."""
from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

import molplat
from molplat.data import compute_statistics
from molplat.data.samples import SampleCollator, make_sample
from molplat.errors import ValidationError
from molplat.models import build_model
from molplat.models.heads import Heads
from molplat.plugins import get_plugin_manager
from molplat.representations.adjacency_list import AdjacencyList
from molplat.rundir import TrainingJob, read_checkpoint
from molplat_poptorch.options import make_options

HERE = Path(__file__).parent
SCHNET = {"name": "schnet", "hidden_channels": 16, "num_filters": 16, "num_interactions": 2, "num_gaussians": 16,
          "cutoff": 4.0}
IPU = {"device_iterations": 2, "replication_factor": 2, "gradient_accumulation": 2}


def pipeline(tmp_path: Path, **trainer) -> dict:
    return {"dataset": {"name": "qm9", "target": "gap", "split": [0.5, 0.25, 0.25]},
            "representation": {"name": "adjacency_list", "cutoff": 4.0}, "model": dict(SCHNET),
            "trainer": {"name": "poptorch", "batch_size": 8, "max_epochs": 2, "num_threads": 1, **trainer},
            "output": {"dir": str(tmp_path / "runs"), "plots": False}}


def test_options_carry_every_ipu_setting(poptorch_double, tmp_path):
    settings = {"device_iterations": 4, "replication_factor": 2, "gradient_accumulation": 8, "seed": 7,
                "executable_cache": str(tmp_path / "cache"), "ipu_model": True}
    training = make_options(poptorch_double, settings, training=True)
    assert training.calls == [
        ("deviceIterations", 4), ("replicationFactor", 2), ("randomSeed", 7),
        ("outputMode", poptorch_double.OutputMode.All), ("Training.gradientAccumulation", 8),
        ("Training.accumulationAndReplicationReductionType", poptorch_double.ReductionType.Mean),
        ("enableExecutableCaching", str(tmp_path / "cache")), ("useIpuModel", True)]
    inference = make_options(poptorch_double, {**settings, "executable_cache": None, "ipu_model": False},
                             training=False)
    assert ("Training.gradientAccumulation", 8) not in inference.calls
    assert not any(name in ("enableExecutableCaching", "useIpuModel") for name, _ in inference.calls)


def test_a_run_trains_through_poptorch_and_writes_a_run_directory_that_predict_reads(poptorch_double, tmp_path):
    summary = molplat.load_pipeline(pipeline(tmp_path, **IPU)).run(echo=lambda *a: None)
    run = Path(summary["run_dir"])
    training, inference = poptorch_double.CREATED_EXECUTORS
    assert training.training and not inference.training
    assert training.calls > 0 and inference.calls > 0 and "copyWeightsToHost" in training.events
    assert "detachFromDevice" in training.events and "detachFromDevice" in inference.events
    assert training.options.calls[:2] == [("deviceIterations", 2), ("replicationFactor", 2)]
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss,val_loss") and len(rows) == 3
    best = read_checkpoint(run / "checkpoints" / "best.ckpt")
    last = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert last.epoch == 1 and best.val_loss == pytest.approx(min(float(r.split(",")[2]) for r in rows[1:]))
    assert last.raw["poptorch"]["fixed_sizes"]["num_graphs"] == 9
    # the trained weights are the host model's: load_model predicts the test split as the run evaluated it
    model = molplat.load_model(run)
    predictions = np.genfromtxt(run / "predictions.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    assert summary["test"]["mae"] < 3.0 and np.isfinite(predictions["predicted"]).all()
    from ase.build import molecule
    from molplat.structure import Structure

    benzene = molecule("C6H6")
    out = model.predict([Structure(benzene.numbers, benzene.positions)])
    assert np.isfinite(out["y"]).all()


def test_resume_continues_from_the_last_checkpoint(poptorch_double, tmp_path):
    heads = Heads.single("gap", units="eV")
    dataset = get_plugin_manager().get("dataset", "qm9").build(subset="dev")
    representation = AdjacencyList(cutoff=4.0)
    samples = [make_sample(dataset[i], representation, heads) for i in range(48)]
    statistics = compute_statistics(samples[:32], heads)
    factory = get_plugin_manager().get("model", "schnet").load()
    settings = {k: v for k, v in SCHNET.items() if k != "name"}
    job = partial(TrainingJob, train=samples[:32], val=samples[32:], collator=SampleCollator(representation),
                  build_model=partial(build_model, factory, settings, heads, statistics), run_dir=tmp_path,
                  heads=heads, statistics=statistics)
    spec = get_plugin_manager().get("trainer_backend", "poptorch")
    first = spec.build(max_epochs=1, batch_size=8, num_threads=1).fit(job())
    assert first.epochs == 1
    once = read_checkpoint(first.last_checkpoint)
    result = spec.build(max_epochs=3, batch_size=8, num_threads=1).fit(job(resume=True))
    assert result.epochs == 3
    last = read_checkpoint(result.last_checkpoint)
    assert last.epoch == 2 and not torch.equal(last.state_dict["model.embedding.weight"],
                                               once.state_dict["model.embedding.weight"])
    epochs = [line.split(",")[0] for line in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2"]
    # a step needing more fixed-size batches than the training split packs into is one line
    with pytest.raises(ValidationError, match="device_iterations"):
        spec.build(max_epochs=1, batch_size=8, device_iterations=64).fit(job(run_dir=tmp_path / "other"))


def molplat_cli(*args: str, double: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real CLI in a child process; ``double`` puts the PopTorch test double in sys.modules first."""
    code = "import sys; from molplat.cli import main; sys.exit(main(sys.argv[1:]))"
    if double:
        code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import poptorch_test_double; "
                f"sys.modules['poptorch'] = poptorch_test_double; " + code)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def write_pipeline(tmp_path: Path, **trainer) -> Path:
    import tomli_w

    data = pipeline(tmp_path, **trainer)
    data["output"]["dir"] = "runs"
    data["dataset"]["size"] = 160  # a small seeded draw: the CLI runs train 80 molecules
    path = tmp_path / "ipu.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def test_without_poptorch_validate_and_run_exit_2_in_one_line_and_write_nothing(tmp_path):
    path = write_pipeline(tmp_path)
    for command in ("validate", "run"):
        proc = molplat_cli(command, str(path), cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, proc.stderr
        assert "poptorch is not installed" in lines[0] and "Poplar SDK 3.x" in lines[0]
        assert "[trainer] name" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()
    listed = json.loads(molplat_cli("list-plugins", "--json", cwd=tmp_path).stdout)
    entry = next(p for p in listed if p["name"] == "molplat-poptorch")
    assert entry["status"] == "loaded" and entry["components"]["trainer_backend"] == ["poptorch"]


def test_cli_run_with_the_double_then_predict_without_poptorch(tmp_path):
    path = write_pipeline(tmp_path, max_epochs=1)
    run = molplat_cli("run", str(path), double=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    run_dir = next((tmp_path / "runs").iterdir())
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    from ase.build import molecule
    from ase.io import write

    write(tmp_path / "mols.xyz", [molecule("CH4"), molecule("H2O")])
    predicted = molplat_cli("predict", str(run_dir), str(tmp_path / "mols.xyz"), "-o", str(tmp_path / "out.csv"),
                            cwd=tmp_path)  # no double: predict needs no poptorch
    assert predicted.returncode == 0, predicted.stderr
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert len(rows) == 3 and all("gap" in row for row in rows[1:])


def test_validation_does_not_depend_on_how_batches_are_grouped_into_calls(poptorch_double, tmp_path):
    """A last call short of batches is filled with batches of no real graph, which weigh nothing."""
    from molplat.training import build_task
    from molplat_poptorch.backend import PopTorchFit
    from molplat_poptorch.options import make_options
    from molplat_poptorch.step import FixedSizeStep, batch_keys

    heads = Heads.single("gap", units="eV")
    dataset = get_plugin_manager().get("dataset", "qm9").build(subset="dev")
    representation = AdjacencyList(cutoff=4.0)
    samples = [make_sample(dataset[i], representation, heads) for i in range(40)]
    statistics = compute_statistics(samples, heads)
    factory = get_plugin_manager().get("model", "schnet").load()
    settings = {k: v for k, v in SCHNET.items() if k != "name"}
    job = TrainingJob(train=samples[:20], val=samples[20:], collator=SampleCollator(representation),
                      build_model=partial(build_model, factory, settings, heads, statistics), run_dir=tmp_path,
                      heads=heads, statistics=statistics)
    spec = get_plugin_manager().get("trainer_backend", "poptorch")
    torch.manual_seed(0)
    task = build_task(job.build_model(), heads, statistics, {}).eval()
    results = []
    for calls in ({"device_iterations": 1, "replication_factor": 1}, {"device_iterations": 3, "replication_factor": 2}):
        fit = PopTorchFit(poptorch_double, job, spec.build(batch_size=3, **calls).settings)
        sizes, counts = fit._sizes()
        loader = fit._loader("val", sizes, counts["val"], shuffle=False)
        assert len(loader) % 6  # the grouped run needs filler batches
        keys = batch_keys(next(iter(loader)))
        inference = poptorch_double.inferenceModel(FixedSizeStep(task, keys, sizes.num_graphs),
                                                   options=make_options(poptorch_double, fit.settings, False))
        results.append(fit._validate(inference, loader, keys, sizes, epoch=0))
    assert results[0][0] > 0
    assert results[1] == pytest.approx(results[0], rel=1e-6)


def test_an_ensemble_seeds_each_member_through_the_job(poptorch_double, tmp_path):
    summary = molplat.load_pipeline(pipeline(tmp_path, max_epochs=1, ensemble=2)).run(echo=lambda *a: None)
    run = Path(summary["run_dir"])
    seeds = [value for options in poptorch_double.CREATED_OPTIONS for name, value in options.calls
             if name == "randomSeed"]
    assert sorted(set(seeds)) == [0, 1]  # member K runs with the trainer's seed plus K
    weights = [read_checkpoint(run / "members" / str(k) / "checkpoints" / "best.ckpt").state_dict for k in (0, 1)]
    assert any(not torch.equal(weights[0][key], weights[1][key]) for key in weights[0] if key.startswith("model."))
    assert summary["ensemble"] == {"size": 2} and molplat.load_model(run).ensemble_size == 2


def test_a_structure_too_large_for_the_fixed_sizes_is_one_line_and_leaves_no_run_directory(poptorch_double,
                                                                                           tmp_path):
    """The sizes meet the data only inside fit: the runner still leaves nothing behind for this bad input."""
    with pytest.raises(ValidationError) as caught:
        molplat.load_pipeline(pipeline(tmp_path, num_nodes=8)).run(echo=lambda *a: None)
    (line,) = caught.value.problems
    assert line.startswith("[trainer] num_nodes/num_edges: train structure") and "raise num_nodes" in line
    assert list((tmp_path / "runs").iterdir()) == []
