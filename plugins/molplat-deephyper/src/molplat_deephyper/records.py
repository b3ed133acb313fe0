"""The evaluations of a search, read back from DeepHyper's ``results.csv`` of each (resumed) part.

Each call of the searcher on a run directory is one part (``search/NAME/part-K``): DeepHyper writes
the part's results.csv after every gathered batch, so a killed search keeps every evaluation that
finished, and a resumed one reads all parts before it continues.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molplat.search_space import Dimension

from molplat_deephyper.problem import plain_settings

PART_PREFIX = "part-"


@dataclass
class Evaluation:
    """One finished trial: its number and folder, the settings it ran, the objective (the metric itself, not
    DeepHyper's sign), its metrics, and the error when it failed."""

    part: int
    order: float
    trial: int
    directory: str
    settings: dict[str, Any]
    objective: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.objective is None


def parts(folder: Path) -> list[Path]:
    return sorted((p for p in folder.glob(f"{PART_PREFIX}*") if p.is_dir() and p.name[len(PART_PREFIX):].isdigit()),
                  key=lambda p: int(p.name[len(PART_PREFIX):]))


def read_evaluations(folder: Path, dimensions: list[Dimension], maximize: bool) -> list[Evaluation]:
    """Every finished evaluation of every part, in the order they finished."""
    evaluations: list[Evaluation] = []
    for index, part in enumerate(parts(folder)):
        path = part / "results.csv"
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                evaluation = _evaluation(index, row, dimensions, maximize)
                if evaluation is not None:
                    evaluations.append(evaluation)
    evaluations.sort(key=lambda e: (e.part, e.order))
    return evaluations


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _evaluation(part: int, row: dict[str, str], dimensions: list[Dimension], maximize: bool) -> Evaluation | None:
    trial = _number(row.get("m:trial"))
    if trial is None:
        return None  # a row DeepHyper wrote for a job that never ran
    try:
        settings = plain_settings({d.key: row[f"p:{d.key}"] for d in dimensions}, dimensions)
    except (KeyError, ValueError):
        return None  # the space changed; the core's resume check refuses that before we get here
    raw = _number(row.get("objective"))
    objective = None if raw is None else (raw if maximize else -raw)
    metrics = {k[2:]: v for k, v in ((k, _number(x)) for k, x in row.items() if k and k.startswith("m:"))
               if v is not None and k[2:] not in ("trial",) and not k[2:].startswith("timestamp")}
    return Evaluation(part, _number(row.get("m:timestamp_gather")) or 0.0, int(trial),
                      row.get("m:directory") or "", settings, objective, metrics, row.get("m:error") or "")


def ranked(evaluations: list[Evaluation], maximize: bool) -> list[Evaluation]:
    """The successful evaluations, best first (ties: the earlier trial first)."""
    done = [e for e in evaluations if not e.failed]
    return sorted(done, key=lambda e: (-e.objective if maximize else e.objective, e.trial))  # type: ignore[operator]
