"""Trainer backends, searchers, explainers and simulators, run end to end on the toy pipeline."""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from molplat.errors import ValidationError
from molplat.results import RESULT_TYPES, Explanation, SearchResult, SimulationResult, run_stage_component
from molplat.rundir import METRICS_FILE, FitResult, TrainingJob, read_checkpoint
from molplat.specs import ComponentSpec

from molplat_sdk.checks.common import label
from molplat_sdk.errors import ConformanceError


def toy_job(run_dir: Path) -> TrainingJob:
    """A real TrainingJob, built as the core builds one: the SDK's toy EMT data featurised with
    adjacency_list, energy and forces heads, training statistics, and the toy model's factory."""
    from molplat.data import SampleCollator, compute_statistics, make_sample
    from molplat.models import Heads, build_model
    from molplat.representations import AdjacencyList
    from molplat_sdk.toy_components import ToyEMTDataset, ToyPairModel

    dataset = ToyEMTDataset(size=24)
    representation = AdjacencyList(cutoff=4.0)
    heads = Heads.single("energy", units="eV", forces=True)
    splits = dataset.splits((0.75, 0.25, 0.0), seed=0)
    samples = {name: [make_sample(dataset[int(i)], representation, heads) for i in indices]
               for name, indices in splits.items()}
    statistics = compute_statistics(samples["train"], heads)
    settings = {"hidden_channels": 8, "num_rbf": 8, "cutoff": 4.0}
    return TrainingJob(train=samples["train"], val=samples["val"], collator=SampleCollator(representation),
                       build_model=partial(build_model, ToyPairModel, settings, heads, statistics), run_dir=run_dir,
                       heads=heads, statistics=statistics)


def check_trainer_backend(spec: ComponentSpec, settings: dict[str, Any], run_dir: Path) -> None:
    """fit(job) trains the toy job and returns a FitResult whose checkpoints molplat can read
    (``molplat.rundir.read_checkpoint``, weights only) and rebuild the trained task from."""
    from molplat.training import AtomisticTask

    where = label(spec)
    job = toy_job(run_dir)
    reported: list[tuple[int, dict[str, float]]] = []
    job.epoch_listener = lambda epoch, metrics: reported.append((epoch, metrics))
    backend = spec.build(**settings)
    processes = check_processes_hook(where, backend, run_dir)
    try:
        result = backend.fit(job)
    except Exception as exc:
        raise ConformanceError(where, f"fit(job) on the toy job fails: {type(exc).__name__}: {exc}",
                               "make fit(job: TrainingJob) train job.build_model() on job.train and job.val") from None
    finally:
        if processes is not None:
            processes.close()
    if not isinstance(result, FitResult):
        raise ConformanceError(where, f"fit returned {type(result).__name__}", "return molplat.training.FitResult")
    for name in ("best_checkpoint", "last_checkpoint"):
        path = Path(getattr(result, name))
        if not path.is_file():
            raise ConformanceError(where, f"FitResult.{name} {path} does not exist",
                                   "write checkpoints under job.run_dir/checkpoints (see fit_with_lightning)")
        try:
            checkpoint = read_checkpoint(path)
        except ValidationError as exc:
            raise ConformanceError(where, f"molplat cannot read FitResult.{name}: {exc}",
                                   "write checkpoints with molplat.rundir.write_checkpoint (state_dict plus the "
                                   "'molplat' section), or train with molplat.training.fit_with_lightning") from None
        if checkpoint.heads != job.heads:
            raise ConformanceError(where, f"FitResult.{name} records heads {checkpoint.heads.names}, the job had "
                                   f"{job.heads.names}", "store job.heads in the checkpoint (write_checkpoint does)")
        task = AtomisticTask(job.build_model(), job.heads)
        try:
            task.load_state_dict(checkpoint.state_dict)
        except (RuntimeError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConformanceError(where, f"the state_dict of FitResult.{name} does not load into a fresh task: "
                                   f"{first[:300]}", "save the state_dict of molplat.training.AtomisticTask "
                                   "(keys model.* and scaler.*)") from None
    if not (run_dir / METRICS_FILE).is_file():
        raise ConformanceError(where, f"no {METRICS_FILE} in the run directory",
                               "write one row per epoch (fit_with_lightning does)")
    if result.epochs < 1:
        raise ConformanceError(where, f"FitResult.epochs is {result.epochs}", "train at least one epoch")
    _check_epoch_reports(where, reported, result.epochs)


def _check_epoch_reports(where: str, reported: list[tuple[int, dict[str, float]]], epochs: int) -> None:
    """Loggers see every epoch: the backend calls job.epoch_finished once per epoch, in order, with val_loss."""
    fix = ("call job.epoch_finished(epoch, row) after writing each epoch's metrics.csv row, on rank 0 only "
           "(fit_with_lightning does)")
    numbers = [epoch for epoch, _ in reported]
    if numbers != list(range(epochs)):
        raise ConformanceError(where, f"job.epoch_finished was called for epochs {numbers}, the fit ran "
                               f"{epochs} (0 to {epochs - 1})", fix)
    for epoch, metrics in reported:
        if "val_loss" not in metrics or not all(isinstance(v, (int, float)) for v in metrics.values()):
            raise ConformanceError(where, f"job.epoch_finished for epoch {epoch} got {sorted(metrics)}, not a row of "
                                   f"numbers with val_loss", fix)


def check_processes_hook(where: str, backend: Any, run_dir: Path) -> Any:
    """A backend with the optional ``processes(request)`` hook (``molplat.processes``) returns, for the suite's
    one-process settings, a ``RunProcesses`` of rank 0 in a world of 1 whose ``share`` hands the value back."""
    from molplat.processes import RunProcesses, RunRequest

    hook = getattr(backend, "processes", None)
    if hook is None:
        return None
    fix = ("return a molplat.processes.RunProcesses (rank, world_size, share, close); with settings for one "
           "process: rank 0, world_size 1")
    try:
        processes = hook(RunRequest({}, str(run_dir)))
    except Exception as exc:
        raise ConformanceError(where, f"processes(request) fails: {type(exc).__name__}: {exc}", fix) from None
    if not isinstance(processes, RunProcesses):
        raise ConformanceError(where, f"processes(request) returned {type(processes).__name__}", fix)
    if (processes.rank, processes.world_size) != (0, 1) or processes.share("run-dir") != "run-dir":
        processes.close()
        raise ConformanceError(where, f"processes(request) in one process gave rank {processes.rank} of "
                               f"{processes.world_size}, or share() changed the value", fix)
    return processes


def _check_files(where: str, result: Any, run_dir: Path) -> None:
    try:
        json.dumps(result.as_dict())
    except (TypeError, ValueError) as exc:
        raise ConformanceError(where, f"the result is not JSON-serialisable: {exc}",
                               "keep metrics numeric and settings plain (str, int, float, lists, dicts)") from None
    for name in result.files:
        path = Path(name)
        if path.is_absolute():
            raise ConformanceError(where, f"file {name} is recorded with an absolute path",
                                   "record files relative to the run directory (context.relative(path))")
        if not (run_dir / path).is_file():
            raise ConformanceError(where, f"file {name} is listed but {run_dir / path} does not exist",
                                   "list only files the stage wrote, relative to context.run_dir")


def check_stage(spec: ComponentSpec, settings: dict[str, Any], context: Any) -> Any:
    """run(context) returns the kind's documented result, with real files and sensible numbers."""
    where = label(spec)
    component = spec.build(**settings)
    if not callable(getattr(component, "run", None)):
        raise ConformanceError(where, "the built component has no run(context) method",
                               f"implement run(self, context: RunContext) -> {RESULT_TYPES[spec.kind].__name__}")
    check_pipeline_hook(spec, component, context.pipeline)
    try:
        result = run_stage_component(component, spec.kind, spec.name, context)
    except ConformanceError:
        raise
    except Exception as exc:
        raise ConformanceError(where, f"run(context) on the toy run fails: {type(exc).__name__}: {exc}",
                               "run it against molplat_sdk's toy_run_context fixture and fix the error") from None
    _check_files(where, result, context.run_dir)
    if isinstance(result, SearchResult):
        _check_search(where, result, context)
    elif isinstance(result, Explanation):
        _check_explanation(where, result, context)
    elif isinstance(result, SimulationResult):
        _check_simulation(where, result, context.run_dir)
    return result


def check_pipeline_hook(spec: ComponentSpec, component: Any, pipeline: Any) -> None:
    """The optional ``check_pipeline(pipeline)`` returns a list of one-line problem strings, and a
    simulator accepts the toy pipeline, which trains a model on energies and forces."""
    hook = getattr(component, "check_pipeline", None)
    if hook is None:
        return
    where = label(spec)
    fix = "return a list of problems, each one line naming the table, the key and the fix ([] when all is well)"
    if not callable(hook):
        raise ConformanceError(where, "check_pipeline is not a method", fix)
    try:
        problems = hook(pipeline)
    except Exception as exc:
        raise ConformanceError(where, f"check_pipeline(pipeline) on the toy pipeline raises {type(exc).__name__}: "
                               f"{exc}", fix) from None
    if not isinstance(problems, list) or not all(isinstance(p, str) and p.strip() and "\n" not in p
                                                  for p in problems):
        raise ConformanceError(where, f"check_pipeline returned {problems!r:.200}", fix)
    if spec.kind == "simulator" and problems:
        raise ConformanceError(where, f"check_pipeline refuses the toy pipeline (energy and forces): {problems[0]}",
                               "accept a model trained with [trainer] task = \"energy_forces\"")


def _check_search(where: str, result: SearchResult, context: Any) -> None:
    if not result.trials:
        raise ConformanceError(where, "the search returned no trials", "evaluate at least one trial")
    objectives = [t.get("objective") for t in result.trials]
    if any(not isinstance(o, (int, float)) for o in objectives):
        raise ConformanceError(where, f"trial objectives {objectives} are not all numbers",
                               "give every trial an 'objective' number (failed trials: float('inf'))")
    if objectives != sorted(objectives, reverse=result.maximize):
        raise ConformanceError(where, f"trials are not ranked best first: {objectives}",
                               "sort trials by objective (largest first when maximize is True)")
    if any("settings" not in t for t in result.trials) or result.best != result.trials[0]["settings"]:
        raise ConformanceError(where, "trials lack 'settings' or best is not the first trial's settings",
                               "give each trial its settings and set best = trials[0]['settings']")
    _check_best_is_runnable(where, result, context)


def _check_best_is_runnable(where: str, result: SearchResult, context: Any) -> None:
    """The runner trains ``best`` as the run's model, so it must be changes the run's pipeline accepts."""
    bad = [key for key in result.best if not isinstance(key, str) or key.count(".") != 1]
    if bad:
        raise ConformanceError(where, f"best holds {bad[0]!r}, not a pipeline key 'table.setting'",
                               "give best as {'trainer.lr': 0.001, ...}, the changes of the best trial")
    try:
        context.pipeline.variant(dict(result.best))
    except ValidationError as exc:
        raise ConformanceError(where, f"the pipeline does not accept best = {result.best}: {exc}",
                               "return the changes the best trial ran with (context.run_trial's changes)") from None
    trial_dirs = [t.get("directory") for t in result.trials if t.get("directory")]
    for name in trial_dirs:
        if Path(name).is_absolute() or not (context.run_dir / name / "summary.json").is_file():
            raise ConformanceError(where, f"trial directory {name} is absolute or holds no summary.json",
                                   "record each trial's directory relative to the run directory, as given to "
                                   "context.run_trial")


def _check_explanation(where: str, result: Explanation, context: Any) -> None:
    sizes = {s.id: len(s) for items in context.splits.values() for s in items}
    if not result.per_atom and not result.metrics:
        raise ConformanceError(where, "the explanation holds no numbers", "return per-atom attributions or metrics")
    for sid, values in result.per_atom.items():
        if sid not in sizes:
            raise ConformanceError(where, f"attributions for unknown structure {sid!r}", "key them by Structure.id")
        if len(values) != sizes[sid] or not np.isfinite(values).all():
            raise ConformanceError(where, f"structure {sid!r}: {len(values)} attributions for {sizes[sid]} atoms, "
                                   "or non-finite ones", "give one finite number per atom, in the structure's order")


def _check_simulation(where: str, result: SimulationResult, run_dir: Path) -> None:
    import ase.io

    if not result.trajectories:
        raise ConformanceError(where, "the simulation wrote no trajectories", "write at least one ASE trajectory")
    for name in result.trajectories:
        path = run_dir / name
        try:
            frames = ase.io.read(path, index=":")
        except Exception as exc:
            raise ConformanceError(where, f"trajectory {name} is not ASE-readable: {exc}",
                                   "write it with ase.io.Trajectory or ase.io.write") from None
        if len(frames) < 2:
            raise ConformanceError(where, f"trajectory {name} has {len(frames)} frame(s)", "record the steps it took")
