"""DDP on this machine: 2 processes with 1 thread each against 1 process with 2 threads.

Both train examples/qm9-ddp.toml's SchNet on the QM9 dev set (800 training molecules)
at the same global batch (32): the `ddp` backend with devices = 2, num_threads = 1
(each rank takes 16 molecules a step), against the same backend with devices = 1,
num_threads = 2. Each configuration is a fresh `molplat run`, three times, alternating;
the epoch time is the median of `metrics.csv`'s `seconds` over the epochs after the first
(which includes warm-up). The load average is read before and after every run: a busy
machine makes the numbers meaningless, so run it on a quiet one.

    .venv/bin/python benchmarks/ddp.py                       # ~5-8 minutes on 2 cores
    .venv/bin/python benchmarks/ddp.py --epochs 2 --runs 1 --train 0.1 --width 16   # a quick check
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
EXAMPLE = ROOT / "examples" / "qm9-ddp.toml"
CONFIGS = {"2 processes × 1 thread": {"devices": 2, "num_threads": 1},
           "1 process × 2 threads": {"devices": 1, "num_threads": 2}}


def pipeline_file(folder: Path, name: str, config: dict, args: argparse.Namespace) -> Path:
    pipeline = tomllib.loads(EXAMPLE.read_text())
    pipeline["dataset"]["split"] = [args.train, 0.1, round(0.9 - args.train, 6)]
    if args.width:
        pipeline["model"].update(hidden_channels=args.width, num_filters=args.width)
    pipeline["trainer"].update(config, batch_size=args.batch_size, max_epochs=args.epochs, patience=args.epochs,
                               progress_bar=False)
    pipeline["output"] = {"dir": str(folder / name), "plots": False}
    path = folder / f"{name}.toml"
    path.write_text(tomli_w.dumps(pipeline))
    return path


def one_run(path: Path) -> dict:
    load_before = os.getloadavg()[0]
    done = subprocess.run([str(Path(sys.executable).parent / "molplat"), "run", str(path)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"molplat run {path} failed: {done.stderr.strip().splitlines()[-1:]}")
    load_after = os.getloadavg()[0]
    run_dir = Path(done.stdout.strip().splitlines()[-1].split(": ", 1)[1])
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    seconds = [float(r["seconds"]) for r in rows]
    steady = seconds[1:] or seconds
    train = json.loads((run_dir / "data.json").read_text())["sizes"]["train"]
    epoch = statistics.median(steady)
    return {"epoch_s": epoch, "samples_s": train / epoch, "load": (load_before, load_after), "train": train}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train", type=float, default=0.8, help="training fraction of the 1,000-molecule dev set")
    parser.add_argument("--width", type=int, default=0, help="SchNet width (default: the example's 64)")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = {name: pipeline_file(folder, f"config{k}", config, args) for k, (name, config) in
                 enumerate(CONFIGS.items())}
        for run in range(args.runs):
            for name in CONFIGS:  # alternating, so a change in load hits both
                results[name].append(one_run(paths[name]))
                print(f"run {run + 1}/{args.runs} {name}: {results[name][-1]['epoch_s']:.2f} s/epoch", flush=True)
    rows = []
    for name, runs in results.items():
        epochs = [r["epoch_s"] for r in runs]
        rates = [r["samples_s"] for r in runs]
        loads = [x for r in runs for x in r["load"]]
        rows.append([name, f"{statistics.median(epochs):.2f}", f"{min(epochs):.2f}-{max(epochs):.2f}",
                     f"{statistics.median(rates):.0f}", f"{min(rates):.0f}-{max(rates):.0f}",
                     f"{min(loads):.2f}-{max(loads):.2f}"])
    train = results[next(iter(results))][0]["train"]
    print(f"\nQM9 dev set, {train} training molecules, global batch {args.batch_size}, {args.epochs} epochs, "
          f"{args.runs} runs each, {os.cpu_count()} cores; epoch time = median over epochs 2..")
    print(tabulate(rows, headers=["configuration", "epoch [s]", "range", "samples/s", "range", "load average"],
                   tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
