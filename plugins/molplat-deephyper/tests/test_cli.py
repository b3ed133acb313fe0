"""Through the command line: a bad space is exit 2 before anything runs; a killed search resumes."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import tomli_w


def _molplat(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "molplat.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _write(path: Path, pipeline: dict) -> Path:
    path.write_text(tomli_w.dumps(pipeline))
    return path


def test_a_bad_space_is_exit_2_before_anything_runs(tmp_path: Path, tiny_search) -> None:
    pipeline = tiny_search(str(tmp_path / "runs"))
    pipeline["search"]["space"] = {"model.hidden_channels": [8, -4], "trainer.learning_rate": {"low": 1, "high": 2},
                                   "trainer.lr": {"low": 0.0, "high": 0.1, "log": True}}
    path = _write(tmp_path / "bad.toml", pipeline)
    for command in ("validate", "run"):
        done = _molplat(command, str(path), cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "[search] space model.hidden_channels: -4:" in done.stderr
        assert "'learning_rate' is not a key of trainer_backend 'cpu' (did you mean 'lr'?)" in done.stderr \
            or "'learning_rate' is not a key of trainer_backend 'cpu'" in done.stderr
        assert "[search] space trainer.lr: a log-scale range must start above 0" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()  # nothing ran


def _finished(run_dir: Path) -> int:
    count = 0
    for results in run_dir.glob("search/cbo/part-*/results.csv"):
        with open(results, newline="") as handle:
            count += sum(1 for row in csv.DictReader(handle) if row.get("m:trial"))
    return count


def test_a_killed_search_resumes_from_the_evaluations_done(tmp_path: Path, tiny_search) -> None:
    path = _write(tmp_path / "search.toml", tiny_search(str(tmp_path / "runs"), max_evals=3))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "molplat.cli", "run", str(path)], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 400
    run_dir = None
    while time.monotonic() < deadline:
        runs = list((tmp_path / "runs").glob("search-*")) if (tmp_path / "runs").exists() else []
        run_dir = runs[0] if runs else None
        if run_dir is not None and _finished(run_dir) >= 1:
            break
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.5)
    assert run_dir is not None and _finished(run_dir) >= 1, "the search finished no evaluation in time"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    process.stderr.close()
    with open(next(run_dir.glob("search/cbo/part-0/results.csv")), newline="") as handle:
        before = {row["m:trial"]: (row["p:trainer.lr"], row["objective"]) for row in csv.DictReader(handle)
                  if row.get("m:trial")}
    assert 1 <= len(before) < 3 and not (run_dir / "best.toml").exists()

    done = _molplat("run", str(path), "--resume", str(run_dir), cwd=tmp_path, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(run_dir / "evaluations.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and len({r["trial"] for r in rows}) == 3
    kept = {r["trial"]: r for r in rows if r["trial"] in before}
    assert set(kept) == set(before)  # the evaluations done before the kill are kept, not run again
    for trial, (lr, objective) in before.items():
        assert float(kept[trial]["trainer.lr"]) == float(lr) and float(kept[trial]["objective"]) == -float(objective)
    assert (run_dir / "best.toml").is_file() and (run_dir / "search" / "cbo" / "part-1").is_dir()
    assert "best configurations" in done.stdout
