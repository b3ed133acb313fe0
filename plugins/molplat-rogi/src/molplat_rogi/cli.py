"""`molplat rogi RUN_DIR...`: ROGI against test MAE across runs, as a table and a PNG (Park et al., Fig. 9).

Each run must have run the rogi explainer (``[[explain]] name = "rogi"``); the command
reads ROGI and the test MAE from its summary.json and trains or loads nothing.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from molplat.errors import ValidationError
from molplat.rundir import SUMMARY_FILE, RunDirectory

FIX = ('add [[explain]] name = "rogi" to its pipeline and run it again (`molplat run PIPELINE`)')


def run_points(path: str) -> list[dict[str, Any]]:
    """One point per graph target of the run in ``path``: ROGI on embeddings and descriptors, test MAE."""
    run = RunDirectory.open(path)
    summary = run.read_json(SUMMARY_FILE)
    pipeline = run.read_pipeline()
    explained = (summary.get("explain") or {}).get("rogi") or {}
    metrics = explained.get("metrics") or {}
    if not metrics:
        raise ValidationError(f"{run.path}: summary.json has no ROGI (the run had no rogi explainer); {FIX}")
    model = str((pipeline.get("model") or {}).get("name", "?")).rpartition(":")[2]  # resolved names are qualified
    points = []
    for target, entry in (summary.get("tasks") or {}).items():
        if f"{target}/embedding" not in metrics:
            continue
        mae = (entry.get("test") or {}).get("mae")
        points.append({"run": str(run.path), "label": model, "model": model, "target": target,
                       "units": entry.get("units") or "", "embedding": _number(metrics.get(f"{target}/embedding")),
                       "descriptor": _number(metrics.get(f"{target}/descriptor")), "mae": _number(mae)})
    if not points:
        raise ValidationError(f"{run.path}: summary.json has ROGI for no target of the run; {FIX}")
    return points


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...", type=click.Path())
@click.option("--plot", "plot", default="rogi_vs_mae.png", show_default=True, type=click.Path(dir_okay=False),
              help="Where to write the PNG of ROGI against test MAE.")
def rogi(run_dirs: tuple[str, ...], plot: str) -> int:
    """ROGI of each run's learned embeddings (and of descriptors) against its test MAE.

    Every RUN_DIR must have run the rogi explainer ([[explain]] name = "rogi"). Prints a
    table and writes a PNG with a panel per target (Park et al., Fig. 9).
    """
    from tabulate import tabulate

    from molplat_rogi.plots import write_rogi_vs_mae

    output = Path(plot)
    if output.suffix.lower() != ".png":
        raise ValidationError(f"--plot {plot}: give a file ending in .png")
    if not output.parent.resolve().is_dir():
        raise ValidationError(f"--plot {plot}: folder {output.parent} does not exist; create it or pick another")
    points = [p for path in dict.fromkeys(run_dirs) for p in run_points(path)]
    for p in points:  # two runs of one model: tell them apart by their folder
        if sum(1 for q in points if q["model"] == p["model"] and q["target"] == p["target"]) > 1:
            p["label"] = f"{p['model']} ({Path(p['run']).name})"
    rows = [[p["run"], p["model"], p["target"], _cell(p["embedding"]), _cell(p["descriptor"]),
             _cell(p["mae"]) + (f" {p['units']}" if p["units"] and p["mae"] is not None else "")] for p in points]
    click.echo(tabulate(rows, headers=["run", "model", "target", "ROGI embedding", "ROGI descriptors", "test MAE"],
                        tablefmt="simple", disable_numparse=True))
    written = write_rogi_vs_mae(output, points)
    click.echo(f"\nwrote {written}")
    return 0
