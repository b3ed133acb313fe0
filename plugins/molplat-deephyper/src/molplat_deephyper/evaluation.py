"""The run function DeepHyper's evaluators call: one trial of the pipeline, as a sub-run of the run directory.

It lives at module level and takes only picklable arguments (the core's trial runner pickles as the
pipeline's raw table), so process, Ray and MPI evaluators can send it to their workers.
"""
from __future__ import annotations

import math
from typing import Any

from molplat.search_space import Dimension

from molplat_deephyper.problem import plain_settings

TRIALS_DIR = "trials"


def trial_directory(number: int) -> str:
    return f"{TRIALS_DIR}/{number:03d}"


def run_trial(job: Any, runner: Any, dimensions: list[Dimension], objective: str, maximize: bool,
              offset: int) -> dict[str, Any]:
    """Train the job's configuration; DeepHyper maximises, so a minimised metric is returned negated.

    A trial that fails (bad numbers, a configuration the model cannot train) is a failed evaluation
    ("F" to DeepHyper) with its reason in the metadata, not the end of the search.
    """
    number = offset + int(str(job.id).rpartition(".")[2])
    directory = trial_directory(number)
    settings = plain_settings(dict(job.parameters), dimensions)
    metadata: dict[str, Any] = {"trial": number, "directory": directory}
    try:
        metrics = runner(settings, directory)
    except Exception as exc:  # noqa: BLE001 - one failed configuration must not end the search
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        metadata["error"] = f"{type(exc).__name__}: {first}"[:300]
        return {"output": "F_error", "metadata": metadata}
    metadata.update({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    value = metrics.get(objective)
    if value is None or not math.isfinite(value):
        metadata["error"] = f"{objective} is {value} (metrics: {', '.join(sorted(metrics))})"
        return {"output": "F_metric", "metadata": metadata}
    return {"output": value if maximize else -value, "metadata": metadata}


async def run_trial_serial(job: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`run_trial` for DeepHyper's serial evaluator, which awaits its run function: one trial at a time,
    in this (the main) thread."""
    return run_trial(job, **kwargs)
