"""Training and evaluating an ensemble (``[trainer] ensemble = N``); the layout is ``molplat.ensemble``'s.

Members train one after the other through the one backend's own ``fit(job)``, each with
``job.seed`` the trainer's seed plus its index and ``job.run_dir`` set to its folder. ``--resume``
skips members the manifest records as finished and resumes the one in progress from
its ``last.ckpt``, as a single-model run would.
"""
from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from molplat.ensemble import EnsembleManifest, member_dir
from molplat.errors import ValidationError
from molplat.metrics import binned_calibration, calibration_metrics, classification_metrics, regression_metrics
from molplat.rundir import FitResult, RunDirectory, TrainingJob

Echo = Callable[[str], None]


def _seed_globals(seed: int) -> None:
    """For backends without a ``seed`` setting: each member still starts from its own random state."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _member_listener(listener: Any, member: int) -> Any:
    """Loggers see each member's epochs under its own names (``member_1/val_loss``), since every
    member counts its epochs from 0 again."""
    if listener is None:
        return None
    return lambda epoch, metrics: listener(epoch, {f"member_{member}/{k}": v for k, v in metrics.items()
                                                  if k != "epoch"} | {"epoch": epoch})


def train_ensemble(pipeline: Any, backend: Any, run: RunDirectory, job: TrainingJob, echo: Echo = print,
                   writes: bool = True) -> FitResult:
    """Fit every member not yet finished with the one ``backend``; returns the last member's FitResult with the
    manifest in ``extra``. ``writes=False`` (ranks > 0 of a multi-process run) trains without writing the manifest."""
    from molplat.pipeline.runner import fit_checked

    trainer = pipeline.components["trainer"]
    size = pipeline.ensemble
    manifest = EnsembleManifest.read(run.path) if job.resume else None
    if manifest is not None and manifest.size != size:
        raise ValidationError(f"cannot resume {run.path}: it is an ensemble of {manifest.size}, the pipeline asks "
                              f"for {size}")
    if manifest is None:
        manifest = EnsembleManifest.new(size, int(trainer.settings.get("seed") or 0))
        if writes:
            manifest.write(run.path)
    fit: FitResult | None = None
    for record in manifest.members:
        number = f"ensemble member {record.member + 1} of {size}"
        if record.finished:
            echo(f"{number}: trained already ({record.epochs} epochs)")
            continue
        folder = member_dir(run.path, record.member)
        folder.mkdir(parents=True, exist_ok=True)
        echo(f"{number} (seed {record.seed}) in {folder.relative_to(run.path)}")
        _seed_globals(record.seed)
        member_job = dataclasses.replace(job, run_dir=folder, seed=record.seed,
                                         epoch_listener=_member_listener(job.epoch_listener, record.member))
        fit = fit_checked(trainer, backend, member_job, writes)
        record.finished, record.epochs, record.best_val_loss = True, int(fit.epochs), fit.best_val_loss
        record.checkpoint = str(Path(fit.best_checkpoint).resolve().relative_to(run.path.resolve()))
        if writes:
            manifest.write(run.path)
    if fit is None:  # every member had finished before this resume
        last = manifest.members[-1]
        folder = member_dir(run.path, last.member)
        fit = FitResult(run.path / str(last.checkpoint), RunDirectory(folder).checkpoint("last"), int(last.epochs or 0),
                        last.best_val_loss)
    return dataclasses.replace(fit, extra={**fit.extra, "ensemble": manifest.as_dict()})


def training_summary(fit: FitResult) -> dict[str, Any]:
    """summary.json's ``training`` of an ensemble: the longest member's epochs, the members' mean best loss, each member."""
    members = fit.extra["ensemble"]["members"]
    losses = [m["best_val_loss"] for m in members if m["best_val_loss"] is not None]
    return {"ensemble": len(members), "epochs": max(int(m["epochs"] or 0) for m in members),
            "best_val_loss": float(np.mean(losses)) if losses else None,
            "members": [{k: m[k] for k in ("member", "seed", "epochs", "best_val_loss", "checkpoint")}
                        for m in members]}


def _spread_entry(head: Any, splits: dict[str, Any], true_name: str, pred_name: str, key: str,
                  k: int) -> tuple[dict, dict]:
    """Calibration of one head's spread and its members' metrics, per split."""
    calibration: dict[str, Any] = {}
    members: dict[str, Any] = {}
    for name, outputs in splits.items():
        true = outputs.joined(true_name)[:, k]
        mean, std = outputs.joined(pred_name)[:, k], outputs.joined(key + "_std")[:, k]
        each = outputs.joined(key + "_members")[:, :, k]
        if head.classification:
            members[name] = [classification_metrics(true, m)["accuracy"] for m in each]
            continue
        calibration[name] = calibration_metrics(true, mean, std)
        members[name] = [regression_metrics(true, m)["mae"] for m in each]
    return calibration, members


def evaluate_ensemble(summary: dict[str, Any], heads: Any, splits: dict[str, Any], run: RunDirectory,
                      plots: bool) -> None:
    """Adds calibration numbers and each member's test metric to ``summary``; writes calibration plots."""
    curves: dict[str, tuple[str, str, dict[str, tuple[np.ndarray, np.ndarray]]]] = {}
    for group, true_name, pred_name, key in ((heads.graph, "y_true", "y_pred", "y"),
                                             (heads.atom, "atom_true", "atom_pred", "atom_y")):
        for k, head in enumerate(group):
            entry = summary["tasks"][head.name]
            calibration, members = _spread_entry(head, splits, true_name, pred_name, key, k)
            entry["members"] = {f"{split}_{'accuracy' if head.classification else 'mae'}": values
                                for split, values in members.items()}
            if calibration:
                entry["calibration"] = calibration
                curves[head.name] = (head.name, head.units, {
                    name: binned_calibration(o.joined(true_name)[:, k], o.joined(pred_name)[:, k],
                                             o.joined(key + "_std")[:, k]) for name, o in splits.items()})
    if "forces" in summary and all(o.spread.get("forces_std") for o in splits.values()):
        forces = summary["forces"]
        forces["calibration"] = {name: calibration_metrics(o.joined("forces_true"), o.joined("forces_pred"),
                                                           o.joined("forces_std")) for name, o in splits.items()}
        forces["members"] = {f"{name}_mae": [regression_metrics(o.joined("forces_true"), m)["mae"]
                                             for m in o.joined("forces_members")] for name, o in splits.items()}
        curves["forces"] = ("force components", forces["units"], {
            name: binned_calibration(o.joined("forces_true"), o.joined("forces_pred"), o.joined("forces_std"))
            for name, o in splits.items()})
    summary["ensemble"] = {"size": int(splits["test"].joined("y_members").shape[0])}
    if len(heads.heads) == 1 and "calibration" in summary["tasks"][heads.heads[0].name]:
        summary["calibration"] = summary["tasks"][heads.heads[0].name]["calibration"]
        summary["members"] = summary["tasks"][heads.heads[0].name]["members"]
    if plots:
        from molplat.plots import calibration_plot

        for position, (name, (label, units, data)) in enumerate(curves.items()):
            filename = "calibration.png" if position == 0 else f"calibration-{name}.png"
            calibration_plot(run.file(filename), data, label, units)
