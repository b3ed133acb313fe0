"""Running a validated pipeline, stage by stage, into one run directory.

Order: the trainer backend's processes start (``molplat.processes``; one process for
most backends), the output folder is checked, the data stage runs (so invalid data leaves
nothing behind), the run directory is created and locked, then the search (when there is
one: its best configuration becomes ``best.toml`` and the run's model), train, evaluate,
and explain and simulate once, on that model. Plugins' event hooks run isolated (``molplat.plugins.RunEvents``).
In a run of several processes only rank 0 does all that; the other ranks prepare their
data, open rank 0's run directory without locking or writing, train and return.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from molplat import interrupts
from molplat.errors import MolplatError, RunError, ValidationError
from molplat.pipeline.config import RESUMABLE_DIFFERENCES, Pipeline
from molplat.pipeline.prepare import PreparedData, prepare
from molplat.processes import RunProcesses, RunRequest, processes_of
from molplat.results import RunContext, StageResult, run_stage_component
from molplat.files import atomic_write_text
from molplat.rundir import (DATA_FILE, LAST, PIPELINE_FILE, SUMMARY_FILE, FitResult, RunDirectory, TrainingJob,
                            read_checkpoint)

Echo = Callable[[str], None]
#: a search run's own pipeline (with [search]), kept for --resume: its pipeline.toml becomes the best configuration
SEARCH_PIPELINE_FILE = "search.toml"
#: the best configuration a search found, as a pipeline file `molplat run` takes
BEST_PIPELINE_FILE = "best.toml"

__all__ = ["RunContext", "run_pipeline", "run_stage_component"]


def _comparable(resolved: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resolved.items() if k not in RESUMABLE_DIFFERENCES}


def _check_resume(pipeline: Pipeline, run: RunDirectory) -> None:
    searched = run.file(SEARCH_PIPELINE_FILE)  # a search run's pipeline.toml is its best configuration
    stored = _comparable(_read_toml_file(searched) if searched.is_file() else run.read_pipeline())
    current = _comparable(pipeline.resolved())
    if stored != current:
        diffs = []
        for table in sorted(set(stored) | set(current)):
            a, b = stored.get(table, {}), current.get(table, {})
            if isinstance(a, dict) and isinstance(b, dict):
                diffs += [f"[{table}] {k}: run has {a.get(k)!r}, pipeline has {b.get(k)!r}"
                          for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            elif a != b:
                diffs.append(f"[{table}] differs")
        raise ValidationError([f"cannot resume {run.path}: it was made by a different pipeline ({d})" for d in diffs]
                              or [f"cannot resume {run.path}: the pipeline differs"], source=pipeline.source)
    last = run.checkpoint("last")
    if last.exists():
        read_checkpoint(last, resume="this run cannot continue from it; start a new run")


def _read_toml_file(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValidationError(f"{path}: the run's pipeline cannot be read ({type(exc).__name__}); "
                              f"the run directory is damaged") from None


def check_output_dir(pipeline: Pipeline) -> None:
    """A run folder that cannot be created is a failure (exit 1) found before any work."""
    folder = Path(pipeline.output["dir"])
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise RunError(f"[output] dir: {probe} is a file, not a folder; set [output] dir to a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RunError(f"[output] dir: {probe} is not writable; set [output] dir to a folder you can write")


def _create_run_dir(pipeline: Pipeline) -> RunDirectory:
    try:
        return RunDirectory.create(pipeline.output["dir"], pipeline.output["name"])
    except OSError as exc:
        raise RunError(f"[output] dir: cannot create a run directory in {pipeline.output['dir']} "
                       f"({exc.strerror or type(exc).__name__}); set [output] dir to a folder you can write") from None


def run_pipeline(pipeline: Pipeline, resume: str | Path | None = None, echo: Echo = print,
                 show_progress: bool | None = None) -> dict[str, Any]:
    """Run every stage and return the summary (also written to ``summary.json``).

    On a rank other than 0 of a multi-process backend: train only, and return
    ``{"run_dir": ..., "rank": ...}``.
    """
    backend = pipeline.components["trainer"].build()
    request = RunRequest(pipeline.raw, str(pipeline.base_dir), None if resume is None else str(resume),
                         pipeline.source)
    processes = processes_of(backend, request)
    if "search" in pipeline.components and processes.world_size > 1:
        processes.close()
        raise ValidationError(f"[search] runs its trials from one process, and trainer "
                              f"{pipeline.components['trainer'].spec.name!r} starts {processes.world_size}; search "
                              f"with a one-process trainer, then train best.toml with this one", source=pipeline.source)
    try:
        with interrupts.watched():
            if processes.rank != 0:
                return _run_other_rank(pipeline, backend, processes, resume is not None)
            return _run_rank_zero(pipeline, backend, processes, resume, echo, show_progress)
    finally:
        processes.close()


def _run_rank_zero(pipeline: Pipeline, backend: Any, processes: RunProcesses, resume: str | Path | None,
                   echo: Echo, show_progress: bool | None) -> dict[str, Any]:
    trainer_settings = pipeline.components["trainer"].settings
    progress = bool(trainer_settings.get("progress_bar", True)) if show_progress is None else show_progress
    if resume is not None:
        run = RunDirectory.open(resume)
        _check_resume(pipeline, run)
        run.acquire()
    else:
        check_output_dir(pipeline)
        run = None
    created = False
    try:
        data = prepare(pipeline, echo, progress)
        if run is None:
            run = _create_run_dir(pipeline)
            created = True
            run.acquire()
            echo(f"run directory: {run.path}")
        else:
            echo(f"resuming {run.path}")
        processes.share(str(run.path))
        return _run_stages(pipeline, backend, run, data, resume is not None, echo)
    except ValidationError:
        if created and run is not None:
            _discard_if_untrained(run)
        raise
    finally:
        if run is not None:
            run.release()


def _discard_if_untrained(run: RunDirectory) -> None:
    """Bad input a trainer backend finds only in the data (a structure too large for its fixed batch
    sizes) is still bad input: the fresh run directory goes, unless a checkpoint shows training began."""
    if any(run.path.rglob("*.ckpt")):
        return
    run.release()
    shutil.rmtree(run.path, ignore_errors=True)


def _run_other_rank(pipeline: Pipeline, backend: Any, processes: RunProcesses, resuming: bool) -> dict[str, Any]:
    """Train as rank > 0: rank 0 owns the run directory; a store is built by rank 0 before the others read it."""
    quiet: Echo = lambda message: None  # noqa: E731
    after_rank_zero = bool(pipeline.data.get("store"))
    data = None if after_rank_zero else prepare(pipeline, quiet, False)
    path = processes.share("")
    if data is None:
        data = prepare(pipeline, quiet, False)
    run = RunDirectory(path)
    _train(pipeline, backend, run, data, resuming, writes=False)
    return {"run_dir": path, "rank": processes.rank}


def _run_stages(pipeline: Pipeline, backend: Any, run: RunDirectory, data: PreparedData, resuming: bool,
                echo: Echo) -> dict[str, Any]:
    events = pipeline.manager.events(echo, loggers=pipeline.output.get("loggers") or ())
    resolved = pipeline.resolved()
    run.write_pipeline(resolved)
    events.run_started(str(run.path), resolved)
    try:
        return _stages_after_start(pipeline, backend, run, data, resuming, echo, events)
    except BaseException as exc:  # Ctrl+C included: observers close their records as failed
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        events.run_failed(str(run.path), message[:500])
        raise


def _stages_after_start(pipeline: Pipeline, backend: Any, run: RunDirectory, data: PreparedData, resuming: bool,
                        echo: Echo, events: Any) -> dict[str, Any]:
    info = data.info(pipeline)
    run.write_json(DATA_FILE, info)
    events.stage_finished(str(run.path), "data", info)

    searched, searching = None, pipeline
    if "search" in pipeline.components:  # the best configuration found becomes the run's model
        searched = _search(pipeline, run, data, info, events, echo)
        pipeline, data = _best_pipeline(pipeline, run, searched, echo)
        backend = pipeline.components["trainer"].build()
    fit = _train(pipeline, backend, run, data, resuming, echo=echo,
                 epoch_listener=partial(events.epoch_finished, str(run.path)))
    events.stage_finished(str(run.path), "train", {"epochs": fit.epochs, "best_val_loss": fit.best_val_loss})

    from molplat.pipeline.evaluate import evaluate
    from molplat.predict import TrainedModel

    model = TrainedModel.from_run(run.path, pipeline=pipeline)
    workers = int(pipeline.data.get("num_workers") or 0)
    summary = evaluate(model, data.samples, data.statistics, run, plots=pipeline.output["plots"], num_workers=workers)
    summary["plugins"] = {**searching.plugin_versions(), **pipeline.plugin_versions()}
    summary["training"] = {"epochs": fit.epochs, "best_val_loss": fit.best_val_loss,
                           "checkpoint": str(Path(fit.best_checkpoint).relative_to(run.path)), **fit.extra}
    if pipeline.ensemble > 1:
        from molplat.pipeline.ensemble import training_summary

        summary["training"] = training_summary(fit)
    summary["warnings"] = list(events.warnings)
    run.write_json(SUMMARY_FILE, summary)
    events.stage_finished(str(run.path), "evaluate", summary)

    context = RunContext(pipeline, run.path, model, dict(data.structures), summary)
    if searched is not None:
        summary["search"] = searched
    for choice in pipeline.explainers:
        summary.setdefault("explain", {})[choice.spec.name] = _run_stage(choice, context, "explain", events, echo)
    for choice in pipeline.simulators:
        summary.setdefault("simulate", {})[choice.spec.name] = _run_stage(choice, context, "simulate", events, echo)
    summary["warnings"] = list(events.warnings)
    run.write_json(SUMMARY_FILE, summary)
    events.run_finished(str(run.path), {**summary, "run_dir": str(run.path)})
    if summary["warnings"] != events.warnings:  # a run_finished hook failed: the summary says so
        summary["warnings"] = list(events.warnings)
        run.write_json(SUMMARY_FILE, summary)
    summary["run_dir"] = str(run.path)
    return summary


def _search(pipeline: Pipeline, run: RunDirectory, data: PreparedData, info: dict[str, Any], events: Any,
            echo: Echo) -> dict[str, Any]:
    """The search stage, before any training of the run's own: trials reuse ``data`` (see molplat.pipeline.trials)."""
    from molplat.pipeline.trials import TrialRunner, remember

    atomic_write_text(run.file(SEARCH_PIPELINE_FILE), run.file(PIPELINE_FILE).read_text(encoding="utf-8"))
    remember(pipeline, data)
    context = RunContext(pipeline, run.path, None, dict(data.structures), {"data": info},
                         trials=TrialRunner(pipeline, run.path))
    return _run_stage(pipeline.components["search"], context, "search", events, echo)


def _best_pipeline(pipeline: Pipeline, run: RunDirectory, searched: dict[str, Any],
                   echo: Echo) -> tuple[Pipeline, PreparedData]:
    """The searched pipeline with the best trial's settings (no [search]); written out as ``best.toml``, a
    pipeline `molplat run` takes, and as the run's pipeline.toml, the configuration of the run's model."""
    import tomli_w

    from molplat.pipeline.trials import data_for

    best = searched.get("best") or {}
    try:
        final = pipeline.variant(dict(best))
    except ValidationError as exc:
        raise RunError(f"search {pipeline.components['search'].spec.name!r}: its best configuration {best} is not "
                       f"a valid pipeline: {exc}") from None
    resolved = final.resolved()
    runnable = {**resolved, "output": {**resolved["output"], "name": f"{final.output['name']}-best"}}
    atomic_write_text(run.file(BEST_PIPELINE_FILE), f"# the best configuration of {run.path.name}'s search: "
                      f"{', '.join(f'{k} = {v!r}' for k, v in best.items()) or 'the pipeline as written'}\n"
                      + tomli_w.dumps(runnable))
    run.write_pipeline(resolved)
    echo(f"best configuration: {BEST_PIPELINE_FILE} ({', '.join(f'{k} = {v!r}' for k, v in best.items())})")
    return final, data_for(final, echo)


def _train(pipeline: Pipeline, backend: Any, run: RunDirectory, data: PreparedData, resuming: bool,
           writes: bool = True, echo: Echo = print,
           epoch_listener: Callable[[int, dict[str, float]], None] | None = None) -> FitResult:
    from molplat.pipeline.trials import training_job

    job = training_job(pipeline, data, run, resuming, epoch_listener)
    trainer = pipeline.components["trainer"]
    if pipeline.ensemble > 1:
        from molplat.pipeline.ensemble import train_ensemble

        return train_ensemble(pipeline, backend, run, job, echo, writes=writes)
    return fit_checked(trainer, backend, job, writes)


def fit_checked(trainer: Any, backend: Any, job: TrainingJob, writes: bool = True) -> FitResult:
    """``backend.fit(job)``, its result checked (``trainer``: the pipeline's choice, for messages; ``writes``:
    False on ranks > 0, which write no checkpoints)."""
    fit = backend.fit(job)
    if interrupts.requested():  # a backend that swallowed the Ctrl+C and returned: not a finished training
        raise RunError(f"training interrupted; continue it with `molplat run PIPELINE --resume {job.run_dir}`")
    if not isinstance(fit, FitResult):
        raise RunError(f"trainer backend {trainer.spec.name!r} returned {type(fit).__name__}, not "
                       f"molplat.training.FitResult")
    if writes and not Path(fit.best_checkpoint).is_file():
        last = RunDirectory(job.run_dir).checkpoint(LAST)
        raise RunError(f"trainer backend {trainer.spec.name!r} wrote no best checkpoint "
                       f"({'only ' + str(last) if last.exists() else 'no checkpoint at all'})")
    return fit


def _run_stage(choice: Any, context: RunContext, stage: str, events: Any, echo: Echo) -> dict[str, Any]:
    echo(f"{stage}: {choice.spec.name}")
    try:
        result: StageResult = run_stage_component(choice.build(), choice.spec.kind, choice.spec.name, context)
    except MolplatError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RunError(f"{stage} {choice.spec.name!r} of plugin {choice.spec.plugin!r} failed: "
                       f"{type(exc).__name__}: {first[:300]}") from exc
    as_dict = result.as_dict()
    events.stage_finished(str(context.run_dir), stage, as_dict)
    return as_dict
