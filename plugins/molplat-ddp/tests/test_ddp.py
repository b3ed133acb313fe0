"""The ddp backend in 2 real CPU processes (gloo) on the QM9 dev set, against a 1-process run.

One 2-process `molplat run` of a trimmed examples/qm9-ddp.toml is shared by the tests of
this module (about 20 s on a quiet 2-core machine); the 1-process reference runs in this
process with the built-in cpu backend at the same global batch.
"""
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

import pytest
import tomli_w
import torch

import molplat
from molplat.rundir import read_checkpoint
from molplat_ddp.lightning_parts import parameter_digest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "qm9-ddp.toml"
MOLPLAT = [str(Path(sys.executable).parent / "molplat")]
GLOBAL_BATCH = 16
EPOCHS = 3


def trimmed_example(tmp: Path, **trainer: object) -> Path:
    """examples/qm9-ddp.toml, small: 192 training molecules (12 global batches of 16), a tiny SchNet, 3 epochs."""
    pipeline = tomllib.loads(EXAMPLE.read_text())
    assert pipeline["trainer"]["name"] == "ddp" and pipeline["trainer"]["devices"] == 2
    pipeline["dataset"]["split"] = [0.192, 0.05, 0.758]
    pipeline["model"].update(hidden_channels=16, num_filters=16, num_interactions=1)
    pipeline["trainer"].update({"batch_size": GLOBAL_BATCH, "max_epochs": EPOCHS, "progress_bar": False, **trainer})
    pipeline["output"] = {"dir": str(tmp / "runs"), "plots": False}
    path = tmp / "qm9-ddp-small.toml"
    path.write_text(tomli_w.dumps(pipeline))
    return path


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*MOLPLAT, *args], capture_output=True, text=True, timeout=timeout)


def model_parameters(run_dir: Path, name: str = "last") -> dict[str, torch.Tensor]:
    state = read_checkpoint(run_dir / "checkpoints" / f"{name}.ckpt").state_dict
    return {k: v for k, v in state.items() if k.startswith("model.")}


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("ddp")
    pipeline = trimmed_example(tmp)
    done = run_cli("run", str(pipeline))
    assert done.returncode == 0, done.stderr[-2000:]
    runs = sorted((tmp / "runs").iterdir())
    return pipeline, runs[0] if runs else tmp / "runs" / "missing"


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    """The same pipeline trained by the cpu backend in this one process, batch 16 (the ddp run's global batch)."""
    tmp = tmp_path_factory.mktemp("one")
    raw = tomllib.loads(trimmed_example(tmp).read_text())
    for key in ("devices", "num_nodes", "accelerator", "timeout_minutes"):
        raw["trainer"].pop(key, None)
    raw["trainer"]["name"] = "cpu"
    summary = molplat.load_pipeline(raw).run(echo=lambda message: None)
    return Path(summary["run_dir"])


def test_one_run_directory_written_by_rank_zero(two_processes):
    pipeline, run_dir = two_processes
    runs = list(run_dir.parent.iterdir())
    assert runs == [run_dir]  # Lightning's own launcher would have re-run `molplat run` per rank: one per rank
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["training"]["world_size"] == 2
    assert summary["training"]["per_process_batch_size"] == GLOBAL_BATCH // 2
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS))  # one row per epoch, not one per rank
    sizes = json.loads((run_dir / "data.json").read_text())["sizes"]
    assert sizes["train"] % GLOBAL_BATCH == 0  # the premise of the equivalence below


def test_parameters_are_identical_across_ranks(two_processes):
    _, run_dir = two_processes
    digests = json.loads((run_dir / "summary.json").read_text())["training"]["parameter_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    # and the digest is that of the parameters rank 0 saved last
    model = molplat.load_model(run_dir, checkpoint="last").model
    assert parameter_digest(model.parameters()) == digests[0]


def test_two_processes_match_one_process_at_the_same_global_batch(two_processes, one_process):
    """Rank r's batches of 8 are the positions r mod 2 of the 1-process batch of 16 (both shuffle with the same
    seed), the loss is a mean over structures and DDP averages the two ranks' gradients: the gradient of
    every step is the 1-process gradient, summed in a different order. Float32 rounding (relative 1e-7 per
    sum) grows through 36 AdamW steps, which divide by sqrt(v) and so amplify differences in small
    gradients; 1e-4 absolute on the weights (lr 1e-3: a tenth of one step) holds that with a wide margin,
    while one batch taken differently moves weights by about lr = 1e-3."""
    _, ddp_dir = two_processes
    ddp, single = model_parameters(ddp_dir), model_parameters(one_process)
    assert ddp.keys() == single.keys()
    worst = max(float((ddp[k] - single[k]).abs().max()) for k in ddp)
    assert worst < 1e-4, worst
    rows_ddp = list(csv.DictReader((ddp_dir / "metrics.csv").open()))
    rows_one = list(csv.DictReader((one_process / "metrics.csv").open()))
    for a, b in zip(rows_ddp, rows_one):
        # val_loss is reduced over both ranks' halves of the validation split, train_loss over both ranks' batches
        assert float(a["val_loss"]) == pytest.approx(float(b["val_loss"]), rel=1e-4)
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=1e-4)
    assert float(rows_ddp[-1]["train_loss"]) < float(rows_ddp[0]["train_loss"])  # and it learnt something


def test_resume_continues_in_two_processes_from_python(two_processes):
    """--resume through the Python API: this pytest process is rank 0 and starts rank 1 itself."""
    pipeline, run_dir = two_processes
    before = model_parameters(run_dir)
    said: list[str] = []
    summary = molplat.load_pipeline(str(pipeline)).run(resume=run_dir, echo=said.append)
    assert f"resuming {run_dir}" in said
    assert summary["run_dir"] == str(run_dir) and summary["training"]["world_size"] == 2
    assert list(run_dir.parent.iterdir()) == [run_dir]
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS))  # max_epochs reached: nothing trained twice
    after = model_parameters(run_dir)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.distributed.is_initialized()  # the process group is gone: this process can run again


def test_gpu_without_cuda_is_one_line_and_writes_nothing(tmp_path):
    assert not torch.cuda.is_available()  # this test is about machines without one
    pipeline = trimmed_example(tmp_path, accelerator="gpu", devices=1)
    done = run_cli("run", str(pipeline))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "accelerator = \"gpu\"" in lines[0] and "no CUDA GPU" in lines[0], done.stderr
    assert not (tmp_path / "runs").exists()


def test_batch_size_must_split_over_the_processes(tmp_path):
    pipeline = trimmed_example(tmp_path, batch_size=15)
    done = run_cli("validate", str(pipeline))
    assert done.returncode == 2
    assert "batch_size: 15 is the global batch" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"molplat_ddp.worker" in cmdline:
                found.append(int(entry.name))
    return found


def test_a_failed_rank_is_one_line_in_rank_zero(tmp_path):
    """A rank killed while training (the OOM killer, say): rank 0 stops with one line naming it, exit 1."""
    pipeline = trimmed_example(tmp_path, max_epochs=200, patience=200)
    rank_zero = subprocess.Popen([*MOLPLAT, "run", str(pipeline)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
    try:
        deadline = time.monotonic() + 240
        while not list((tmp_path / "runs").glob("*/pipeline.toml")) and time.monotonic() < deadline:
            time.sleep(0.1)  # rank 0 has shared its run directory: the ranks head for training together
        workers = _children(rank_zero.pid)
        assert len(workers) == 1, "rank 0 should have started rank 1"
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = rank_zero.communicate(timeout=120)
    finally:
        if rank_zero.poll() is None:
            rank_zero.kill()
    assert rank_zero.returncode == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: [trainer] ddp: rank 1 failed (exit -9)"), stderr
    assert not _children(rank_zero.pid)


def test_torchrun_starts_the_same_run_as_the_local_launch(tmp_path, two_processes):
    """Under torchrun every rank runs `molplat run`; the ranks come from torchrun's environment, and the
    result is the run the backend's own launch made: one run directory, the same metrics row for row."""
    _, local_dir = two_processes
    pipeline = trimmed_example(tmp_path)
    torchrun = str(Path(sys.executable).parent / "torchrun")
    done = subprocess.run([torchrun, "--standalone", "--nproc-per-node", "2", "--no-python", *MOLPLAT, "run",
                           str(pipeline)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    said = {line for line in done.stdout.splitlines() if line.startswith("run directory:")}
    assert said == {f"run directory: {runs[0]}"}
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["training"]["world_size"] == 2
    torchrun_rows = list(csv.DictReader((runs[0] / "metrics.csv").open()))
    local_rows = list(csv.DictReader((local_dir / "metrics.csv").open()))
    assert len(torchrun_rows) == len(local_rows) == EPOCHS
    for a, b in zip(torchrun_rows, local_rows):
        assert float(a["val_loss"]) == pytest.approx(float(b["val_loss"]), rel=1e-6)
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=1e-6)
