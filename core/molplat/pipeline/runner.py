"""Running a validated pipeline, stage by stage, into one run directory."""
from __future__ import annotations

import csv
import io
from functools import partial
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from molplat.errors import RunError, ValidationError
from molplat.results import RESULT_TYPES, StageResult
from molplat.pipeline.config import Pipeline
from molplat.pipeline.rundir import SUMMARY_FILE, new_run_dir, read_pipeline, write_json, write_pipeline
from molplat.files import atomic_write_text

DATA_FILE = "data.json"
Echo = Callable[[str], None]


@dataclass
class RunContext:
    """What the optional stages (search, explain, simulate) receive."""

    pipeline: Pipeline
    run_dir: Path
    model: Any  # molplat.predict.TrainedModel
    splits: dict[str, list[Any]] = field(default_factory=dict)  # split name -> list[Structure]
    summary: dict[str, Any] = field(default_factory=dict)

    def directory(self, stage: str, name: str) -> Path:
        """A folder of the run directory for one component's files, such as ``explain/saliency``."""
        path = self.run_dir / stage / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def relative(self, path: Path) -> str:
        """``path`` relative to the run directory, as results record it."""
        return str(Path(path).resolve().relative_to(self.run_dir.resolve()))


def _comparable(resolved: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resolved.items() if k not in ("output", "plugins")}


def _check_resume(pipeline: Pipeline, run_dir: Path) -> None:
    stored = _comparable(read_pipeline(run_dir))
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
        raise ValidationError([f"cannot resume {run_dir}: it was made by a different pipeline ({d})" for d in diffs]
                              or [f"cannot resume {run_dir}: the pipeline differs"], source=pipeline.source)


def featurize(representation: Any, structures: list[Any], target: str, with_forces: bool, label: str,
              show_progress: bool) -> list[Any]:
    from tqdm.auto import tqdm

    from molplat.training.data import Sample

    samples = []
    for s in tqdm(structures, desc=f"featurize {label}", disable=not show_progress or len(structures) < 200,
                  leave=False):
        forces = s.forces if with_forces else None
        samples.append(Sample(s.id, representation.featurize(s), np.array([s.targets[target]], dtype=np.float64), forces))
    return samples


def run_pipeline(pipeline: Pipeline, resume: str | Path | None = None, echo: Echo = print) -> dict[str, Any]:
    """Run every stage and return the summary (also written to ``summary.json``)."""
    if resume is not None:
        _check_resume(pipeline, Path(resume))
    # The dataset is built before the run directory: a dataset that rejects its settings (a
    # missing folder, a target its files lack) is invalid input and leaves nothing behind.
    dataset = pipeline.components["dataset"].build()
    target, units = _target_of(pipeline, dataset)
    structures = _labelled_splits(pipeline, dataset, target, echo)
    trainer_settings = pipeline.components["trainer"].settings
    with_forces = trainer_settings.get("task") == "energy_forces"
    if with_forces:
        _require_forces(pipeline, structures)
    if resume is not None:
        run_dir = Path(resume)
        echo(f"resuming {run_dir}")
    else:
        run_dir = new_run_dir(pipeline.output["dir"], pipeline.output["name"])
        echo(f"run directory: {run_dir}")
    resolved = pipeline.resolved()
    write_pipeline(run_dir, resolved)
    manager = pipeline.manager
    manager.run_started(str(run_dir), resolved)

    representation = pipeline.components["representation"].build()
    progress = bool(trainer_settings.get("progress_bar", True))
    samples = {name: featurize(representation, items, target, with_forces, name, progress)
               for name, items in structures.items()}
    data_info = {"dataset": pipeline.components["dataset"].spec.name, "target": target, "units": units,
                 "task": trainer_settings.get("task"), "sizes": {k: len(v) for k, v in samples.items()}}
    write_json(run_dir / DATA_FILE, data_info)
    manager.stage_finished(str(run_dir), "data", data_info)

    from molplat.predict import TrainedModel
    from molplat.training.data import SampleCollator
    from molplat.training.lightning import TrainingJob

    job = TrainingJob(train=samples["train"], val=samples["val"], collator=SampleCollator(representation),
                      build_model=partial(pipeline.components["model"].build, n_outputs=1), n_outputs=1,
                      run_dir=run_dir, resume=resume is not None)
    fit = pipeline.components["trainer"].build().fit(job)
    manager.stage_finished(str(run_dir), "train", {"epochs": fit.epochs, "best_val_loss": fit.best_val_loss})

    model = TrainedModel.from_run(run_dir, pipeline=pipeline)
    summary = evaluate(model, samples, target, units, run_dir, plots=pipeline.output["plots"])
    summary["plugins"] = pipeline.plugin_versions()
    summary["training"] = {"epochs": fit.epochs, "best_val_loss": fit.best_val_loss,
                           "checkpoint": str(fit.best_checkpoint.relative_to(run_dir))}
    write_json(run_dir / SUMMARY_FILE, summary)
    manager.stage_finished(str(run_dir), "evaluate", summary)

    context = RunContext(pipeline, run_dir, model, structures, summary)
    if "search" in pipeline.components:
        summary["search"] = _run_stage(pipeline.components["search"], context, "search", echo)
    for choice in pipeline.explainers:
        summary.setdefault("explain", {})[choice.spec.name] = _run_stage(choice, context, "explain", echo)
    if "simulate" in pipeline.components:
        summary["simulate"] = _run_stage(pipeline.components["simulate"], context, "simulate", echo)
    write_json(run_dir / SUMMARY_FILE, summary)
    summary["run_dir"] = str(run_dir)
    manager.run_finished(str(run_dir), summary)
    return summary


def _target_of(pipeline: Pipeline, dataset: Any) -> tuple[str, str]:
    """The target to learn and its units; datasets whose targets depend on their files are checked here."""
    target = pipeline.dataset_common["target"] or dataset.default_target
    targets = getattr(dataset, "targets", {})
    if target not in targets:
        raise ValidationError(f"[dataset] target: {target!r} is not a target of dataset "
                              f"{pipeline.components['dataset'].spec.name!r} (targets: {', '.join(targets)})",
                              source=pipeline.source)
    return target, targets[target].units


def _require_forces(pipeline: Pipeline, structures: dict[str, list[Any]]) -> None:
    missing = [s.id for items in structures.values() for s in items if s.forces is None]
    if missing:
        raise ValidationError(f"[trainer] task: 'energy_forces' needs forces, but {len(missing)} structures of dataset "
                              f"{pipeline.components['dataset'].spec.name!r} have none (first: {missing[0]!r}); "
                              f"use task = 'property' or a dataset with forces", source=pipeline.source)


def _labelled_splits(pipeline: Pipeline, dataset: Any, target: str, echo: Echo) -> dict[str, list[Any]]:
    """Structures of each split, leaving out (and saying so) those without a finite target value."""
    indices = dataset.splits(pipeline.dataset_common["split"], pipeline.dataset_common["split_seed"])
    splits = {name: [dataset[int(i)] for i in idx] for name, idx in indices.items()}
    labelled = {name: [s for s in items if np.isfinite(s.targets.get(target, np.nan))]
                for name, items in splits.items()}
    dropped = {name: len(splits[name]) - len(labelled[name]) for name in splits}
    if any(dropped.values()):
        echo(f"leaving out {sum(dropped.values())} structures with no finite {target!r} value "
             f"({', '.join(f'{k}: {v}' for k, v in dropped.items())})")
    empty = [name for name, items in labelled.items() if not items]
    if empty:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in labelled.items())
        raise ValidationError(f"[dataset] split: {pipeline.dataset_common['split']} leaves the {' and '.join(empty)} "
                              f"split empty ({sizes} structures); give every split a larger fraction or use more data",
                              source=pipeline.source)
    return labelled


def run_stage_component(component: Any, kind: str, name: str, context: RunContext) -> StageResult:
    """Call ``component.run(context)`` and insist on the documented result class of its kind."""
    result = component.run(context)
    expected = RESULT_TYPES[kind]
    if not isinstance(result, expected):
        raise RunError(f"{kind} {name!r} returned {type(result).__name__}, not molplat.results.{expected.__name__}; "
                       f"return a {expected.__name__} from its run(context)")
    return result


def _run_stage(choice: Any, context: RunContext, stage: str, echo: Echo) -> dict[str, Any]:
    echo(f"{stage}: {choice.spec.name}")
    result = run_stage_component(choice.build(), choice.spec.kind, choice.spec.name, context).as_dict()
    context.pipeline.manager.stage_finished(str(context.run_dir), stage, result)
    return result


def evaluate(model: Any, samples: dict[str, list[Any]], target: str, units: str, run_dir: Path,
             plots: bool = True) -> dict[str, Any]:
    """Metrics on val and test against the mean-of-train baseline, predictions.csv and the parity plot."""
    from molplat.metrics import regression_metrics

    train_mean = float(np.mean([s.y[0] for s in samples["train"]]))
    results: dict[str, Any] = {"target": target, "units": units}
    parity: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["id", "split", "target", "units", "true", "predicted", "error"])
    for split in ("val", "test"):
        out = model.predict_samples(samples[split])
        true = np.array([s.y[0] for s in samples[split]])
        pred = out["y"][:, 0]
        results[split] = regression_metrics(true, pred)
        if "forces" in out and all(s.forces is not None for s in samples[split]):
            ref = np.concatenate([s.forces for s in samples[split]])
            results[split]["forces_mae"] = float(np.abs(out["forces"] - ref).mean())
        parity[split] = (true, pred)
        if split == "test":
            for s, t, p in zip(samples[split], true, pred):
                writer.writerow([s.id, split, target, units, f"{t:.8g}", f"{p:.8g}", f"{p - t:.8g}"])
    results["baseline_mae"] = float(np.abs(parity["test"][0] - train_mean).mean())
    atomic_write_text(run_dir / "predictions.csv", rows.getvalue())
    if plots:
        from molplat.plots import parity_plot

        parity_plot(run_dir / "parity.png", parity, target, units, results["baseline_mae"])
    return results
