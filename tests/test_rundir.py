"""The run directory contract: safe checkpoints, a lock, race-free creation, clean-up, checked caches."""
from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import molecule

import molplat
from molplat.errors import ValidationError
from molplat.files import atomic_save_npz, atomic_write_text, load_npz
from molplat.rundir import RunDirectory, read_checkpoint
from molplat_sdk.damage import CACHE_DAMAGE, CACHE_DAMAGE_IDS

PIPELINE = {
    "dataset": {"name": "qm9", "size": 80, "split": [0.5, 0.25, 0.25]},
    "representation": {"name": "adjacency_list", "cutoff": 3.0},
    "model": {"name": "schnet", "hidden_channels": 8, "num_filters": 8, "num_interactions": 1, "cutoff": 3.0},
    "trainer": {"max_epochs": 2, "batch_size": 32, "progress_bar": False},
    "output": {"plots": False, "name": "rd"},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rundir")
    summary = molplat.load_pipeline({**PIPELINE, "output": {**PIPELINE["output"], "dir": str(root)}}).run(
        echo=lambda message: None)
    return Path(summary["run_dir"])


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    target = tmp_path / finished.name
    shutil.copytree(finished, target)
    return target


class Payload:
    """What an attacker plants: unpickling it would create a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_carrying_a_pickle_payload_is_refused_and_never_runs(run_copy, tmp_path, capsys):
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"state_dict": {}, "molplat": {"format": 1}, "evil": Payload(marker)}, buffer)
    (run_copy / "checkpoints" / "best.ckpt").write_bytes(buffer.getvalue())
    with pytest.raises(ValidationError) as info:
        molplat.load_model(run_copy)
    assert str(info.value).count("\n") == 0
    assert "refused to load: the checkpoint holds more than tensors and plain data" in str(info.value)
    from molplat.cli import main

    assert main(["predict", str(run_copy), str(_molecules(tmp_path))]) == 2
    assert "refused to load" in capsys.readouterr().err
    assert not marker.exists()
    # a plain pickle (not even a torch file) with the payload is refused the same way
    (run_copy / "checkpoints" / "best.ckpt").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ValidationError):
        molplat.load_model(run_copy)
    assert not marker.exists()


def _molecules(folder: Path) -> Path:
    from ase.io import write

    path = folder / "mols.xyz"
    write(path, [molecule("CH4"), molecule("H2O")])
    return path


@pytest.mark.parametrize("name", ["../../x.ckpt", "../best.ckpt", "/etc/passwd", "sub/best.ckpt", ".."])
def test_checkpoint_names_stay_inside_the_run_directory(run_copy, name):
    with pytest.raises(ValidationError, match="--checkpoint"):
        molplat.load_model(run_copy, checkpoint=name)


def test_a_symlink_out_of_the_checkpoint_folder_is_refused(run_copy, tmp_path):
    outside = tmp_path / "outside.ckpt"
    shutil.copy(run_copy / "checkpoints" / "best.ckpt", outside)
    (run_copy / "checkpoints" / "link.ckpt").symlink_to(outside)
    with pytest.raises(ValidationError, match="points outside"):
        molplat.load_model(run_copy, checkpoint="link.ckpt")


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_empty_or_truncated_checkpoints_are_one_line_in_predict_and_resume(run_copy, tmp_path, damage, capsys):
    for name in ("best.ckpt", "last.ckpt"):
        path = run_copy / "checkpoints" / name
        data = path.read_bytes()
        path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"\x00" * 100}[damage])
    with pytest.raises(ValidationError) as info:
        molplat.load_model(run_copy)
    assert "\n" not in str(info.value)
    pipeline = tmp_path / "p.toml"
    import tomli_w

    pipeline.write_text(tomli_w.dumps({**PIPELINE, "output": {**PIPELINE["output"], "dir": str(run_copy.parent)}}))
    from molplat.cli import main

    assert main(["run", str(pipeline), "--resume", str(run_copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "last.ckpt" in err[0] and ("empty" in err[0] or "truncated" in err[0])


def test_loading_a_model_imports_no_lightning(finished):
    code = ("import sys, molplat\nfrom ase.build import molecule\n"
            f"m = molplat.load_model({str(finished)!r})\nprint(m.predict([molecule('C6H6')])['y'][0])\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] in ('pytorch_lightning', 'lightning')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    value, modules = proc.stdout.strip().splitlines()
    assert np.isfinite(float(value)) and modules == "[]"


def _hold_lock(path: str, ready, release) -> None:
    run = RunDirectory(path)
    run.acquire()
    ready.set()
    release.wait(60)
    run.release()


def test_a_second_process_resuming_a_run_in_use_is_refused_naming_the_holder(run_copy, tmp_path):
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(run_copy), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        pipeline = tmp_path / "p.toml"
        import tomli_w

        pipeline.write_text(tomli_w.dumps({**PIPELINE, "output": {**PIPELINE["output"],
                                                                  "dir": str(run_copy.parent)}}))
        proc = subprocess.run([sys.executable, "-m", "molplat.cli", "run", str(pipeline), "--resume", str(run_copy)],
                              capture_output=True, text=True)
        assert proc.returncode == 1
        (line,) = proc.stderr.strip().splitlines()
        assert f"{run_copy} is in use by process {holder.pid} on " in line
        assert "wait for that run to finish or stop it" in line
    finally:
        release.set()
        holder.join(60)
    # once the holder is gone the directory can be taken again
    run = RunDirectory(run_copy)
    run.acquire()
    run.release()


def _create_many(base: str, start, count: int, out) -> None:
    start.wait(60)
    made = []
    for _ in range(count):
        try:
            made.append(RunDirectory.create(base, "race").path.name)
        except Exception as exc:  # noqa: BLE001 - the test counts every failure
            made.append(f"FAILED {type(exc).__name__}: {exc}")
    out.put(made)


def test_six_processes_creating_run_directories_at_once_each_get_their_own(tmp_path):
    context = multiprocessing.get_context("fork")
    start, out = context.Event(), context.Queue()
    workers = [context.Process(target=_create_many, args=(str(tmp_path / "runs"), start, 20, out)) for _ in range(6)]
    for worker in workers:
        worker.start()
    start.set()
    names = [name for _ in workers for name in out.get(timeout=120)]
    for worker in workers:
        worker.join(60)
    assert not [n for n in names if n.startswith("FAILED")]
    assert len(names) == 120 and len(set(names)) == 120
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(names)


def test_acquiring_a_run_directory_removes_what_interrupted_writes_left(run_copy):
    leftovers = [run_copy / ".summary.json.4f2a9c.tmp", run_copy / "checkpoints" / ".last.ckpt.00aa11.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    keep = run_copy / "notes.tmp"  # not one of ours: left alone
    keep.write_text("user file")
    run = RunDirectory(run_copy)
    run.acquire()
    run.release()
    assert not any(p.exists() for p in leftovers) and keep.exists()


def test_atomic_writes_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_save_npz(tmp_path / "a.npz", x=np.arange(3))
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("damage", CACHE_DAMAGE, ids=CACHE_DAMAGE_IDS)
def test_a_damaged_cache_is_noticed_deleted_and_reported_in_one_line(tmp_path, capsys, damage):
    path = tmp_path / "cache.npz"
    values = np.linspace(0.0, 1.0, 1000)
    atomic_save_npz(path, values=values, names=np.array(["a", "b"]))
    assert np.array_equal(load_npz(path)["values"], values)
    damage(path)
    assert load_npz(path, what="test cache") is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"notice: test cache {path} is damaged") and "rebuilding it" in err[0]
    assert not path.exists()


class PlainLoop:
    """A trainer backend without Lightning: full-batch Adam in a plain torch loop, checkpoints via molplat.rundir."""

    def __init__(self, epochs: int = 3) -> None:
        self.epochs = epochs

    def fit(self, job):
        from molplat.rundir import FitResult, write_checkpoint
        from molplat.training import AtomisticTask

        torch.manual_seed(0)
        task = AtomisticTask(job.build_model(), job.heads)
        task.scaler.fit(job.statistics, job.heads)
        optimizer = torch.optim.Adam(task.parameters(), lr=3e-3)
        train, val = job.collator(list(job.train)), job.collator(list(job.val))
        folder = job.run_dir / "checkpoints"
        best = float("inf")
        for epoch in range(self.epochs):
            task.train()
            optimizer.zero_grad()
            loss, _ = task.loss(train, task(train))
            loss.backward()
            optimizer.step()
            task.eval()
            with torch.no_grad():
                val_loss = float(task.loss(val, task(val))[0])
            state = task.state_dict()
            job.epoch_finished(epoch, {"epoch": epoch, "train_loss": float(loss.detach()), "val_loss": val_loss})
            write_checkpoint(folder / "last.ckpt", state, job.heads, job.statistics, epoch, val_loss)
            if val_loss < best:
                best = val_loss
                write_checkpoint(folder / "best.ckpt", state, job.heads, job.statistics, epoch, val_loss)
        return FitResult(folder / "best.ckpt", folder / "last.ckpt", self.epochs, best)


def _plain_backend_plugin():
    import types

    from molplat import ComponentSpec, Setting, hookimpl

    module = types.ModuleType("molplat_test_plain_backend")
    module.MOLPLAT_API = ">=1.0,<2"
    module.PlainLoop = PlainLoop

    @hookimpl
    def molplat_trainer_backends():
        return [ComponentSpec(name="plain_loop", kind="trainer_backend", factory="molplat_test_plain_backend:PlainLoop",
                              summary="a plain torch loop",
                              settings=(Setting("epochs", "int", 3, "epochs", minimum=1, maximum=100),))]

    module.molplat_trainer_backends = molplat_trainer_backends
    sys.modules[module.__name__] = module
    return module


def _epoch_recorder(epochs: list) -> types.ModuleType:
    """A logger plugin ("epochs") that keeps each molplat_epoch_finished it receives."""
    from molplat import hookimpl

    module = types.ModuleType("molplat_test_epoch_recorder")
    module.MOLPLAT_API = ">=1.0,<2"
    module.molplat_loggers = hookimpl(lambda: ["epochs"])
    module.molplat_epoch_finished = hookimpl(
        lambda run_dir, epoch, metrics: epochs.append((epoch, metrics["val_loss"])))
    return module


def checkpoint_loss(summary: dict) -> float:
    return read_checkpoint(Path(summary["run_dir"]) / "checkpoints" / "last.ckpt").val_loss


def test_a_backend_without_lightning_writes_runs_that_predict_reads(tmp_path):
    """The run directory is trainer-neutral: a plain torch loop writing with molplat.rundir works end to end,
    and its job.epoch_finished calls reach the run's loggers."""
    from molplat.plugins import PluginManager

    epochs: list[tuple[int, float]] = []
    manager = PluginManager(extra={"plain-backend": _plain_backend_plugin(), "recorder": _epoch_recorder(epochs)})
    pipeline = molplat.load_pipeline({**PIPELINE, "trainer": {"name": "plain_loop", "epochs": 3},
                                      "output": {**PIPELINE["output"], "dir": str(tmp_path),
                                                 "loggers": ["epochs"]}}, manager=manager)
    summary = pipeline.run(echo=lambda message: None)
    assert [epoch for epoch, _ in epochs] == [0, 1, 2] and epochs[2][1] == pytest.approx(checkpoint_loss(summary))
    run_dir = Path(summary["run_dir"])
    checkpoint = read_checkpoint(run_dir / "checkpoints" / "best.ckpt")
    assert checkpoint.epoch == 2 and "pytorch-lightning_version" not in checkpoint.raw
    assert np.isfinite(summary["test"]["mae"]) and (run_dir / "predictions.csv").is_file()
    model = molplat.load_model(run_dir)
    assert np.isfinite(model.predict([molecule("CH4")])["y"]).all()
