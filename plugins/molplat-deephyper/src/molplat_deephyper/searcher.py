"""The ``cbo`` and ``random`` searchers: DeepHyper asks for configurations, molplat trains them as trials.

A search is resumable: each call on a run directory is a part (``search/NAME/part-K``) whose
results.csv DeepHyper writes after every gathered batch. A resumed call reads every earlier part,
gives CBO's surrogate those evaluations (``CBO.fit_surrogate``), numbers its trials after them, and
runs only the evaluations ``max_evals`` still allows.
"""
from __future__ import annotations

import importlib.util
import logging
import math
import time
from pathlib import Path
from typing import Any

from molplat.errors import RunError
from molplat.results import RunContext, SearchResult
from molplat.search_space import Dimension, maximised

from molplat_deephyper import outputs
from molplat_deephyper.evaluation import run_trial, run_trial_serial
from molplat_deephyper.problem import hp_problem
from molplat_deephyper.records import PART_PREFIX, Evaluation, parts, ranked, read_evaluations

#: evaluators that need a library molplat-deephyper does not install
_NEEDS = {"ray": "ray"}


class DeepHyperSearcher:
    """What both searchers share; subclasses make DeepHyper's search object."""

    name = "search"

    def __init__(self, space: dict[str, Any], objective: str = "val_loss", goal: str = "auto", max_evals: int = 20,
                 max_time: float | None = None, workers: int = 1, evaluator: str = "auto", seed: int = 0,
                 top: int = 5) -> None:
        if evaluator in _NEEDS and importlib.util.find_spec(_NEEDS[evaluator]) is None:
            raise ValueError(f"evaluator = {evaluator!r} needs {_NEEDS[evaluator]} (pip install {_NEEDS[evaluator]}); "
                             f"use evaluator = 'process' on one machine")
        self.space, self.objective, self.max_evals, self.max_time = space, objective, max_evals, max_time
        self.maximize = goal == "max" or (goal == "auto" and maximised(objective))
        self.workers, self.seed, self.top = workers, seed, top
        self.evaluator = evaluator if evaluator != "auto" else ("serial" if workers == 1 else "process")

    # -- DeepHyper -------------------------------------------------------------------------
    def make_search(self, problem: Any, log_dir: Path, seed: int, previous: list[Evaluation]) -> Any:
        raise NotImplementedError

    def run(self, context: RunContext) -> SearchResult:
        dimensions = context.search_space(self.space)
        keys = [d.key for d in dimensions]
        folder = context.directory("search", self.name)
        previous = read_evaluations(folder, dimensions, self.maximize)
        remaining = self.max_evals - len(previous)
        started = time.perf_counter()
        ran = 0
        if remaining > 0:
            ran = self._search(context, dimensions, folder, previous, remaining)
        elapsed = time.perf_counter() - started
        evaluations = read_evaluations(folder, dimensions, self.maximize)
        best = ranked(evaluations, self.maximize)
        if not best:
            errors = sorted({e.error for e in evaluations if e.error}) or ["no evaluation finished"]
            raise RunError(f"search {self.name!r}: every one of {len(evaluations)} trials failed (first: {errors[0]}); "
                           f"narrow [search] space or check the pipeline with `molplat run` first")
        return self._result(context, evaluations, best, keys, previous, ran, elapsed)

    def _search(self, context: RunContext, dimensions: list[Dimension], folder: Path, previous: list[Evaluation],
                remaining: int) -> int:
        from deephyper.evaluator import Evaluator

        logging.getLogger("deephyper").setLevel(logging.WARNING)
        existing = parts(folder)
        part = folder / f"{PART_PREFIX}{int(existing[-1].name[len(PART_PREFIX):]) + 1 if existing else 0}"
        offset = 1 + max((e.trial for e in previous), default=-1)
        kwargs = {"runner": context.trial_runner(), "dimensions": dimensions, "objective": self.objective,
                  "maximize": self.maximize, "offset": offset}
        method_kwargs: dict[str, Any] = {"run_function_kwargs": kwargs}
        if self.evaluator in ("thread", "process", "ray"):  # ray: the cluster RAY_ADDRESS names, or a local one
            method_kwargs["num_workers"] = self.workers
        function = run_trial_serial if self.evaluator == "serial" else run_trial
        evaluator = Evaluator.create(function, method=self.evaluator, method_kwargs=method_kwargs)
        # a resumed random search draws new configurations, not the ones it drew before
        search = self.make_search(hp_problem(dimensions), part, self.seed + len(previous), previous)
        timeout = None if self.max_time is None else max(1, int(math.ceil(self.max_time * 60)))
        try:
            frame = search.search(evaluator, max_evals=remaining, timeout=timeout, max_evals_strict=True)
        finally:
            close = getattr(getattr(evaluator, "executor", None), "shutdown", None)
            if close is not None:
                close(wait=True)
        return 0 if frame is None else len(frame)

    # -- the result --------------------------------------------------------------------------
    def _result(self, context: RunContext, evaluations: list[Evaluation], best: list[Evaluation], keys: list[str],
                previous: list[Evaluation], ran: int, elapsed: float) -> SearchResult:
        run_dir = Path(context.run_dir)
        csv_path = outputs.write_evaluations(run_dir / outputs.EVALUATIONS_FILE, evaluations, keys)
        png = outputs.plot_search(run_dir / outputs.PLOT_FILE, evaluations, self.objective, self.maximize,
                                  f"{self.name} search: {len(evaluations)} evaluations")
        table = outputs.best_table(best[: self.top], keys, self.objective)
        table_path = run_dir / outputs.TABLE_FILE
        from molplat.files import atomic_write_text

        atomic_write_text(table_path, table + "\n")
        print(f"best configurations ({self.objective}, {'higher' if self.maximize else 'lower'} is better):")
        print(table)
        new = evaluations[len(previous):]
        trained = sum(e.metrics.get("seconds", 0.0) for e in new)
        overhead = (elapsed * min(self.workers, max(len(new), 1)) - trained) / len(new) if new else None
        trials = [{"settings": e.settings, "objective": e.objective, "trial": e.trial, "directory": e.directory,
                   "seconds": e.metrics.get("seconds"), "metrics": e.metrics} for e in best]
        metrics = {"best_objective": best[0].objective, "evaluations": len(evaluations),
                   "failed": sum(e.failed for e in evaluations), "resumed_from": len(previous),
                   "search_seconds": elapsed, "training_seconds": trained}
        if overhead is not None:
            metrics["overhead_per_evaluation_s"] = overhead
        return SearchResult(metrics=metrics, trials=trials, best=dict(best[0].settings), objective=self.objective,
                            maximize=self.maximize,
                            files=[context.relative(p) for p in (csv_path, png, table_path)])


class CBOSearcher(DeepHyperSearcher):
    """Centralized Bayesian optimisation: a random-forest surrogate proposes by its upper confidence bound."""

    name = "cbo"

    def __init__(self, space: dict[str, Any], initial_points: int = 5, kappa: float = 1.96, **settings: Any) -> None:
        super().__init__(space, **settings)
        self.initial_points, self.kappa = initial_points, kappa

    def make_search(self, problem: Any, log_dir: Path, seed: int, previous: list[Evaluation]) -> Any:
        from deephyper.hpo import CBO

        search = CBO(problem, random_state=seed, log_dir=str(log_dir), surrogate_model="RF", acq_func="UCB",
                     acq_func_kwargs={"kappa": self.kappa}, n_initial_points=self.initial_points, verbose=0)
        if previous:
            search.fit_surrogate(_frame(previous, self.maximize))
        return search


class RandomSearcher(DeepHyperSearcher):
    """Configurations drawn uniformly (log-uniformly where asked) from the space: the baseline."""

    name = "random"

    def make_search(self, problem: Any, log_dir: Path, seed: int, previous: list[Evaluation]) -> Any:
        from deephyper.hpo import RandomSearch

        return RandomSearch(problem, random_state=seed, log_dir=str(log_dir), verbose=0)


def _frame(evaluations: list[Evaluation], maximize: bool) -> Any:
    """Earlier evaluations as the DataFrame ``CBO.fit_surrogate`` reads (DeepHyper maximises; failures 'F')."""
    import pandas as pd

    rows = []
    for e in evaluations:
        row: dict[str, Any] = {f"p:{k}": v for k, v in e.settings.items()}
        row["objective"] = "F" if e.objective is None else (e.objective if maximize else -e.objective)
        rows.append(row)
    return pd.DataFrame(rows)
