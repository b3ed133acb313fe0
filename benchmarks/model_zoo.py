"""Every model of the zoo on the same two tasks at the same wall-clock budget, in one table.

Tasks (Park et al. Fig. 2 for QM9; a crystal task for CoRE MOF):
  qm9      the QM9 dev set (1,000 molecules), HOMO (eV) and ZPVE (eV) together, 80/10/10 split;
  coremof  the CoRE MOF dev set (~100 MOFs), crystal density (g/cm^3) and largest cavity diameter (Å).

Each model keeps the representation and widths of its own example pipeline
(examples/qm9-NAME.toml; CGCNN: examples/coremof-cgcnn.toml); for CoRE MOF every sparse
representation uses CGCNN's (cutoff 6 Å, 12 nearest neighbours) and the model's cutoff is set
to match. Every run trains for the same `[trainer] max_time` (checked at each epoch's end)
with the same number of torch threads, no epoch limit and no early stopping, so the table
compares what each model learns in equal time on this machine. Reported per model and task,
as the range over `--runs` runs (seeds 0, 1, ...): test MAE of each target, parameters,
training structures per second (training-split size over the median epoch time, first epoch
excluded), and the peak RSS of the `molplat run` process (data featurisation included). A
model that refuses a task says so. The load average before and after the runs is printed:
numbers from a busy machine mean little.

    .venv/bin/python benchmarks/model_zoo.py                    # every model, both tasks, 3 runs
    .venv/bin/python benchmarks/model_zoo.py --models schnet painn --tasks qm9 --runs 1 --budget 0.2
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import tomli_w
from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MOLPLAT = str(Path(sys.executable).parent / "molplat")

#: model -> the example pipeline whose [representation] and [model] tables it runs with
ZOO = {
    "schnet": "qm9-schnet.toml",
    "cgcnn": "coremof-cgcnn.toml",
    "physnet": "qm9-physnet.toml",
    "mpnn": "qm9-mpnn.toml",
    "mpnn_transformer": "qm9-mpnn-transformer.toml",
    "torchmdnet": "qm9-torchmdnet.toml",
    "egnn": "qm9-egnn.toml",
    "egnn_dgl": "qm9-egnn-dgl.toml",
    "megnet": "qm9-megnet.toml",
    "gala": "qm9-gala.toml",
    "pna": "qm9-pna.toml",
    "painn": "qm9-painn.toml",
}
TASKS = {
    "qm9": {"name": "qm9", "subset": "dev", "target": ["homo", "zpve"], "split": [0.8, 0.1, 0.1], "split_seed": 0},
    "coremof": {"name": "coremof", "subset": "dev", "target": ["density", "lcd"], "split": [0.8, 0.1, 0.1],
                "split_seed": 0},
}
CRYSTAL_NEIGHBORS = {"cutoff": 6.0, "max_neighbors": 12}


def pipeline_for(model: str, task: str, seed: int, budget: float, threads: int, folder: Path) -> Path:
    example = tomllib.loads((EXAMPLES / ZOO[model]).read_text())
    representation, settings = dict(example["representation"]), dict(example["model"])
    if task == "coremof" and "cutoff" in representation:
        representation.update(CRYSTAL_NEIGHBORS)
        if "cutoff" in settings:
            settings["cutoff"] = CRYSTAL_NEIGHBORS["cutoff"]
    trainer = dict(example.get("trainer", {}))
    trainer.update(max_epochs=100000, patience=100000, max_time=budget, seed=seed, progress_bar=False,
                   num_threads=threads)
    trainer.pop("ensemble", None)
    pipeline = {"dataset": TASKS[task], "representation": representation, "model": settings, "trainer": trainer,
                "output": {"dir": str(folder / "runs"), "name": f"{model}-{task}-{seed}", "plots": False}}
    path = folder / f"{model}-{task}-{seed}.toml"
    path.write_text(tomli_w.dumps(pipeline))
    return path


def refusal(path: Path) -> str | None:
    """The first line of `molplat validate`'s complaint, or None when the pipeline is valid."""
    done = subprocess.run([MOLPLAT, "validate", str(path)], capture_output=True, text=True)
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {done.returncode}"


def one_run(path: Path) -> dict:
    """Run one pipeline; its peak RSS comes from the kernel's accounting of that child (wait4)."""
    log, errors = path.with_suffix(".log"), path.with_suffix(".err")
    with log.open("w") as out, errors.open("w") as err:
        process = subprocess.Popen([MOLPLAT, "run", str(path)], stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        lines = [line for line in errors.read_text().splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"exit {os.waitstatus_to_exitcode(status)}")
    run_dir = Path(log.read_text().strip().splitlines()[-1].split(": ", 1)[1])
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    seconds = [float(r["seconds"]) for r in rows]
    train = json.loads((run_dir / "data.json").read_text())["sizes"]["train"]
    return {
        "mae": {name: task["test"]["mae"] for name, task in summary["tasks"].items()},
        "baseline": {name: task["baseline_mae"] for name, task in summary["tasks"].items()},
        "epochs": len(rows),
        "per_second": train / statistics.median(seconds[1:] or seconds),
        "peak_mb": usage.ru_maxrss / 1024,
        "parameters": parameters(run_dir),
    }


def parameters(run_dir: Path) -> int:
    from molplat.predict import TrainedModel

    return sum(p.numel() for p in TrainedModel.from_run(run_dir).model.parameters())


def spread(values: list[float], digits: int) -> str:
    low, high = min(values), max(values)
    return f"{low:.{digits}f}" if len(values) == 1 or f"{low:.{digits}f}" == f"{high:.{digits}f}" \
        else f"{low:.{digits}f}–{high:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(ZOO), choices=list(ZOO))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=0.25, help="training minutes per run (default 0.25)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads of every run (default: "
                        "the CPU count; the examples' own num_threads are overridden so every model gets the same)")
    args = parser.parse_args()
    table = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for task in args.tasks:
            for model in args.models:
                first = pipeline_for(model, task, 0, args.budget, args.threads, folder)
                refused = refusal(first)
                if refused:
                    table.append([task, model, "", f"refused: {refused[:70]}", "", "", "", ""])
                    print(f"{task} {model}: refused", file=sys.stderr)
                    continue
                runs = []
                try:
                    for seed in range(args.runs):
                        path = pipeline_for(model, task, seed, args.budget, args.threads, folder)
                        runs.append(one_run(path))
                        print(f"{task} {model} seed {seed}: {runs[-1]['mae']} load {os.getloadavg()[0]:.2f}",
                              file=sys.stderr, flush=True)
                except RuntimeError as failure:
                    table.append([task, model, "", f"failed: {str(failure)[:70]}", "", "", "", ""])
                    print(f"{task} {model}: failed: {failure}", file=sys.stderr, flush=True)
                    continue
                targets = list(runs[0]["mae"])
                table.append([
                    task, model, f"{runs[0]['parameters']:,}",
                    "  ".join(f"{t} {spread([r['mae'][t] for r in runs], 3)}" for t in targets),
                    "  ".join(f"{runs[0]['baseline'][t]:.3f}" for t in targets),
                    spread([r["per_second"] for r in runs], 0),
                    spread([r["peak_mb"] for r in runs], 0),
                    spread([r["epochs"] for r in runs], 0),
                ])
    load_after = os.getloadavg()
    print(tabulate(table, headers=["task", "model", "parameters", "test MAE (range)", "baseline MAE",
                                   "train structures/s", "peak RSS MB", "epochs"]))
    before, after = (tuple(round(v, 2) for v in load) for load in (load_before, load_after))
    print(f"\n{args.runs} run(s) per row, {args.budget} min of training each, {args.threads} torch threads; "
          f"load average (1, 5, 15 min) before {before}, after {after}; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
