"""Logger plugins through real runs: [output] loggers turns them on, validation refuses unknown
ones, unnamed ones stay silent, a failing one never fails the run, and each reads back."""
from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

import molplat
from molplat import hookimpl
from molplat.plugins import PluginManager

tensorboard = pytest.importorskip("molplat_tensorboard")
pytest.importorskip("molplat_mlflow")
pytest.importorskip("molplat_wandb")
pytest.importorskip("molplat_qm9")

PIPELINE = """
[dataset]
name = "qm9"
target = "gap"
size = 100
split = [0.6, 0.2, 0.2]
cache_dir = "{folder}/cache"
[representation]
name = "adjacency_list"
cutoff = 3.0
[model]
name = "schnet"
hidden_channels = 8
num_filters = 8
num_interactions = 1
num_gaussians = 8
cutoff = 3.0
[trainer]
max_epochs = 2
batch_size = 32
progress_bar = false
num_threads = 1
[output]
dir = "{folder}/runs"
loggers = {loggers}
"""


def write_pipeline(folder: Path, loggers: str) -> Path:
    path = folder / "p.toml"
    path.write_text(PIPELINE.format(folder=folder, loggers=loggers))
    return path


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory, molplat_cli) -> tuple[Path, Path]:
    """One real `molplat run` with all three loggers; HOME, the working folder and TMPDIR are empty folders."""
    folder = tmp_path_factory.mktemp("logged")
    for name in ("home", "cwd", "tmp"):
        (folder / name).mkdir()
    path = write_pipeline(folder, '["tensorboard", "mlflow", "wandb"]')
    proc = molplat_cli("run", str(path), cwd=folder / "cwd", HOME=str(folder / "home"), TMPDIR=str(folder / "tmp"),
                       MPLCONFIGDIR=str(folder / "mpl"), WANDB_MODE="online")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (folder / "runs").iterdir()
    return folder, run_dir


def test_loggers_write_only_inside_the_run_directory(logged_run):
    folder, run_dir = logged_run
    assert {p.name for p in folder.iterdir()} == {"home", "cwd", "tmp", "mpl", "cache", "runs", "p.toml"}
    for name in ("home", "cwd"):
        assert list((folder / name).rglob("*")) == [], name
    # torch makes its compile-cache folder in TMPDIR whether or not a logger runs; wandb's socket is gone
    assert [p.name for p in (folder / "tmp").iterdir() if not p.name.startswith("torchinductor_")] == []
    assert {"tensorboard", "mlflow.db", "mlartifacts", "wandb"} <= {p.name for p in run_dir.iterdir()}
    assert json.loads((run_dir / "summary.json").read_text())["warnings"] == []


def test_the_three_loggers_read_back_the_same_epochs(logged_run):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from molplat_mlflow.log import tracking_uri
    from molplat_wandb.transaction_log import read_offline_run

    _, run_dir = logged_run
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    val_loss = [float(r.split(",")[header.index("val_loss")]) for r in rows[1:]]
    assert len(val_loss) == 2
    summary = json.loads((run_dir / "summary.json").read_text())

    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    assert [s.value for s in events.Scalars("epoch/val_loss")] == pytest.approx(val_loss, rel=1e-6)
    assert events.Scalars("test/gap/mae")[0].value == pytest.approx(summary["test"]["mae"], rel=1e-6)
    assert "parity" in events.Tags()["images"]

    client = MlflowClient(tracking_uri=tracking_uri(run_dir))
    (run,) = client.search_runs([client.get_experiment_by_name("molplat").experiment_id])
    history = sorted(client.get_metric_history(run.info.run_id, "val_loss"), key=lambda m: m.step)
    assert [m.value for m in history] == pytest.approx(val_loss, rel=1e-6)
    assert run.data.metrics["test/gap/mae"] == pytest.approx(summary["test"]["mae"])
    assert run.data.params["model.name"] == "molplat-schnet:schnet" and run.info.status == "FINISHED"

    (log,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    offline = read_offline_run(log)
    assert [row["val_loss"] for row in offline.history if "val_loss" in row] == pytest.approx(val_loss, rel=1e-6)
    assert offline.summary["test/gap/mae"] == pytest.approx(summary["test"]["mae"])
    assert offline.config["model"]["name"] == "molplat-schnet:schnet"


@pytest.mark.parametrize("loggers, expected", [
    ('["tensorbord"]', "[output] loggers: unknown logger 'tensorbord'; did you mean 'tensorboard'?"),
    ('["comet"]', "[output] loggers: unknown logger 'comet'; installed loggers: "),
    ('"wandb"', "[output] loggers: expected list[str]"),
    ('["tensorboard", 5]', "[output] loggers: in list: expected str, got int 5"),
])
def test_an_unknown_logger_is_one_line_and_nothing_is_written(capsys, tmp_path, loggers, expected):
    from molplat.cli import main

    path = write_pipeline(tmp_path, loggers)
    for command in ("validate", "run"):
        assert main([command, str(path)]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], lines
    assert not (tmp_path / "runs").exists()


def test_a_logger_of_a_disabled_plugin_is_refused_naming_why(tmp_path):
    path = write_pipeline(tmp_path, '["wandb"]')
    path.write_text(path.read_text() + '[plugins]\ndisable = ["molplat-wandb"]\n')
    with pytest.raises(molplat.ValidationError) as caught:
        molplat.load_pipeline(path)
    (line,) = caught.value.problems
    assert "unknown logger 'wandb'" in line and "molplat-wandb [disabled]" in line


def _recording_logger(calls: list) -> types.ModuleType:
    module = types.ModuleType("molplat_test_recording_logger")
    module.MOLPLAT_API = ">=1.0,<2"
    module.molplat_loggers = hookimpl(lambda: ["recorder"])
    module.molplat_epoch_finished = hookimpl(lambda run_dir, epoch, metrics: calls.append(epoch))
    return module


def test_logger_plugins_get_events_only_when_named():
    calls: list = []
    manager = PluginManager(extra={"recording-logger": _recording_logger(calls)})
    assert manager.loggers()["recorder"] == ["recording-logger"]
    manager.events(loggers=[]).epoch_finished("run", 0, {"val_loss": 1.0})
    manager.events(loggers=["tensorboard"]).epoch_finished("run", 1, {"val_loss": 1.0})
    assert calls == []
    manager.events(loggers=["recorder"]).epoch_finished("run", 2, {"val_loss": 1.0})
    assert calls == [2]
    assert {"molplat-tensorboard", "molplat-mlflow", "molplat-wandb"} <= manager.events().silent


def test_a_logger_whose_library_fails_does_not_fail_the_run(tmp_path, monkeypatch):
    """TensorBoard's writer raising (a full disk, here as OSError from add_scalar) costs its log, not the run."""
    from torch.utils.tensorboard import SummaryWriter

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SummaryWriter, "add_scalar", disk_full)
    messages: list[str] = []
    summary = molplat.load_pipeline(write_pipeline(tmp_path, '["tensorboard"]')).run(echo=messages.append)
    (warning,) = summary["warnings"]
    assert warning.startswith("plugin 'molplat-tensorboard' failed in hook molplat_epoch_finished (OSError: ")
    assert json.loads((Path(summary["run_dir"]) / "summary.json").read_text())["warnings"] == [warning]
    assert sum("molplat-tensorboard" in m for m in messages) == 1
    assert summary["training"]["epochs"] == 2
    assert summary["run_dir"] not in tensorboard.plugin.logs.open  # the failed log was closed, not left open


def test_a_run_that_fails_after_it_started_tells_its_loggers(tmp_path, monkeypatch):
    """After run_started a run ends with run_finished or run_failed (with the user's one line), never neither."""
    from molplat.errors import RunError

    def evaluation_fails(*args, **kwargs):
        raise RunError("evaluate: the disk is full\nsecond line")

    monkeypatch.setattr("molplat.pipeline.evaluate.evaluate", evaluation_fails)
    calls: list = []
    module = types.ModuleType("molplat_test_recording_logger")
    module.MOLPLAT_API = ">=1.0,<2"
    module.molplat_loggers = hookimpl(lambda: ["recorder"])
    module.molplat_run_started = hookimpl(lambda run_dir, pipeline: calls.append("started"))
    module.molplat_run_finished = hookimpl(lambda run_dir, summary: calls.append("finished"))
    module.molplat_run_failed = hookimpl(lambda run_dir, error: calls.append(("failed", error)))
    manager = PluginManager(extra={"recording-logger": module})
    pipeline = molplat.load_pipeline(write_pipeline(tmp_path, '["recorder"]'), manager=manager)
    with pytest.raises(RunError):
        pipeline.run(echo=lambda message: None)
    assert calls == ["started", ("failed", "evaluate: the disk is full")]
