"""What a search leaves in the run directory: every evaluation as CSV, the objective against evaluation
number with the best so far as a PNG, and the best configurations as a table (as in Park et al.'s Table 2)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from molplat.files import atomic_write_text

from molplat_deephyper.records import Evaluation

EVALUATIONS_FILE = "evaluations.csv"
PLOT_FILE = "search.png"
TABLE_FILE = "best_configurations.txt"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_evaluations(path: Path, evaluations: list[Evaluation], keys: list[str]) -> Path:
    """One row per finished evaluation, in the order they finished, with every digit (``objective``: the
    searched metric's value; every validation metric follows)."""
    metric_names = sorted({m for e in evaluations for m in e.metrics if m not in ("directory", "error")})
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["evaluation", "trial", "directory", *keys, "objective", "status", *metric_names, "error"])
    for number, e in enumerate(evaluations, start=1):
        writer.writerow([number, e.trial, e.directory, *(e.settings[k] for k in keys),
                         "" if e.objective is None else repr(e.objective), "failed" if e.failed else "done",
                         *(repr(e.metrics[m]) if m in e.metrics else "" for m in metric_names), e.error])
    atomic_write_text(path, rows.getvalue())
    return path


def best_so_far(values: list[float | None], maximize: bool) -> list[float | None]:
    best: float | None = None
    out: list[float | None] = []
    for value in values:
        if value is not None and (best is None or (value > best if maximize else value < best)):
            best = value
        out.append(best)
    return out


def plot_search(path: Path, evaluations: list[Evaluation], objective: str, maximize: bool, title: str) -> Path:
    """The objective of each evaluation (failed ones marked on the axis) and the best-so-far curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numbers = list(range(1, len(evaluations) + 1))
    values = [e.objective for e in evaluations]
    fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=120)
    done = [(n, v) for n, v in zip(numbers, values) if v is not None]
    if done:
        ax.scatter(*zip(*done), s=22, color="tab:blue", label="evaluation", zorder=3)
        best = best_so_far(values, maximize)
        ax.step(numbers, [b if b is not None else float("nan") for b in best], where="post", color="tab:red",
                label="best so far")
    failed = [n for n, v in zip(numbers, values) if v is None]
    if failed:
        ax.scatter(failed, [ax.get_ylim()[1 if not maximize else 0]] * len(failed), marker="x", color="grey",
                   label="failed", clip_on=False)
    if not maximize and done and min(v for _, v in done) > 0 and max(v for _, v in done) > 10 * min(
            v for _, v in done):
        ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("evaluation")
    ax.set_ylabel(f"{objective} ({'higher' if maximize else 'lower'} is better)")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)
    return path


def best_table(best: list[Evaluation], keys: list[str], objective: str) -> str:
    """The best configurations, one row each: rank, trial, the searched keys, the objective and the time."""
    from tabulate import tabulate

    rows = [[rank, e.directory, *(_fmt(e.settings[k]) for k in keys), _fmt(e.objective),
             _fmt(e.metrics.get("seconds", float("nan")))] for rank, e in enumerate(best, start=1)]
    return tabulate(rows, headers=["rank", "trial", *keys, objective, "seconds"], tablefmt="simple",
                    disable_numparse=True)
