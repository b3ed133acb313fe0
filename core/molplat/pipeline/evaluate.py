"""The evaluate stage: metrics per target on val and test, predictions at full precision, parity plots."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from molplat.data.statistics import TrainingStatistics
from molplat.errors import RunError
from molplat.files import atomic_write_text
from molplat.metrics import classification_metrics, regression_metrics, vector_metrics
from molplat.models.heads import Head
from molplat.rundir import PREDICTIONS_FILE, RunDirectory
from molplat.structure import MAX_ATOMIC_NUMBER

ATOM_PREDICTIONS_FILE = "atom_predictions.csv"
FORCE_UNITS = "eV/Å"


@dataclass
class SplitOutputs:
    """Truth and predictions of one split, gathered batch by batch."""

    ids: list[str] = field(default_factory=list)
    numbers: list[np.ndarray] = field(default_factory=list)
    y_true: list[np.ndarray] = field(default_factory=list)
    y_pred: list[np.ndarray] = field(default_factory=list)
    atom_true: list[np.ndarray] = field(default_factory=list)
    atom_pred: list[np.ndarray] = field(default_factory=list)
    forces_true: list[np.ndarray] = field(default_factory=list)
    forces_pred: list[np.ndarray] = field(default_factory=list)
    #: an ensemble's spread (``KEY_std``) and its members' values (``KEY_members``), by output key
    spread: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def joined(self, name: str) -> np.ndarray:
        parts = getattr(self, name) if hasattr(self, name) else self.spread.get(name, [])
        if name.endswith("_members"):  # [members, rows, ...]: batches follow each other on axis 1
            return np.concatenate(parts, axis=1) if parts else np.zeros((0, 0))
        return np.concatenate(parts) if parts else np.zeros((0,))

    @property
    def is_ensemble(self) -> bool:
        return "y_std" in self.spread


def _gather(model: Any, samples: Any, num_workers: int) -> SplitOutputs:
    outputs = SplitOutputs()
    for items, batch, out in model.predict_batches(samples, num_workers=num_workers):
        outputs.ids += [s.id for s in items]
        outputs.numbers += [np.asarray(s.features["numbers"]) for s in items]
        outputs.y_true.append(np.stack([s.y for s in items]))
        outputs.y_pred.append(out["y"].double().numpy())
        if "atom_y" in out:
            outputs.atom_true.append(np.concatenate([s.atom_y for s in items]))
            outputs.atom_pred.append(out["atom_y"].double().numpy())
        known_forces = "forces" in out and all(s.forces is not None for s in items)
        if known_forces:
            outputs.forces_true.append(np.concatenate([s.forces for s in items]))
            outputs.forces_pred.append(out["forces"].double().numpy())
        for key, value in out.items():
            if key.endswith(("_std", "_members")) and (known_forces or not key.startswith("forces")):
                outputs.spread.setdefault(key, []).append(value.double().numpy())
    return outputs


def _reference_array(references: dict[str, float]) -> np.ndarray:
    table = np.zeros(MAX_ATOMIC_NUMBER + 1)
    for z, value in references.items():
        table[int(z)] = value
    return table


def _baseline(head: Head, stats: TrainingStatistics, numbers: list[np.ndarray], level: str) -> np.ndarray:
    """What predicting without a model gives: the training mean, or the per-element references."""
    target = stats.targets[head.name]
    if head.classification:
        value = 1.0 if (target.positive_fraction or 0.0) >= 0.5 else 0.0
        count = len(numbers) if level == "graph" else sum(len(n) for n in numbers)
        return np.full(count, value)
    if level == "graph":
        if head.extensive:
            table = _reference_array(target.references)
            return np.array([table[n].sum() for n in numbers])
        return np.full(len(numbers), target.mean)
    table = _reference_array(target.references)
    return table[np.concatenate(numbers)] if numbers else np.zeros(0)


def _metrics(head: Head, true: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    return classification_metrics(true, pred) if head.classification else regression_metrics(true, pred)


def evaluate(model: Any, samples: dict[str, Any], statistics: TrainingStatistics, run: RunDirectory,
             plots: bool = True, num_workers: int = 0) -> dict[str, Any]:
    """Metrics on val and test against the baseline of each target, predictions.csv and parity plots."""
    heads = model.heads
    splits = {name: _gather(model, samples[name], num_workers) for name in ("val", "test")}
    for name, outputs in splits.items():
        for array in ("y_pred", "atom_pred", "forces_pred"):
            values = outputs.joined(array)
            if values.size and not np.isfinite(values).all():
                raise RunError(f"the trained model predicts non-finite values on the {name} split; the run is not "
                               f"a success: lower [trainer] lr or check the data")
    tasks: dict[str, Any] = {}
    parity: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for level, group, true_name, pred_name in (("graph", heads.graph, "y_true", "y_pred"),
                                               ("atom", heads.atom, "atom_true", "atom_pred")):
        for k, head in enumerate(group):
            entry: dict[str, Any] = {"units": head.units, "level": level, "loss": head.loss}
            for name, outputs in splits.items():
                true, pred = outputs.joined(true_name)[:, k], outputs.joined(pred_name)[:, k]
                entry[name] = _metrics(head, true, pred)
                parity.setdefault(head.name, {})[name] = (true, pred)
            test = splits["test"]
            baseline = _baseline(head, statistics, test.numbers, level)
            true = test.joined(true_name)[:, k]
            if head.classification:
                entry["baseline_accuracy"] = float((baseline == (true > 0.5)).mean())
            else:
                entry["baseline_mae"] = float(np.abs(baseline - true).mean())
                entry["baseline"] = "per-element references" if (head.extensive or level == "atom") else "training mean"
            tasks[head.name] = entry
    summary: dict[str, Any] = {"tasks": tasks}
    if heads.forces and all(splits[s].forces_true for s in splits):
        summary["forces"] = {"units": FORCE_UNITS, **{name: vector_metrics(o.joined("forces_true"),
                                                                           o.joined("forces_pred"))
                                                      for name, o in splits.items()}}
        # A conservative model's forces sum to zero, so predicting no force at all is what a model that
        # learnt nothing about forces scores: the bar to beat, as the mean is for a property.
        summary["forces"]["baseline_mae"] = float(np.abs(splits["test"].joined("forces_true")).mean())
        summary["forces"]["baseline"] = "zero forces"
    if len(heads.heads) == 1:  # the top-level keys of a single-target run
        head = heads.heads[0]
        entry = tasks[head.name]
        summary.update({"target": head.name, "units": head.units, "val": dict(entry["val"]),
                        "test": dict(entry["test"])})
        summary["baseline_mae" if not head.classification else "baseline_accuracy"] = \
            entry.get("baseline_mae", entry.get("baseline_accuracy"))
        if "forces" in summary:
            for name in ("val", "test"):
                summary[name]["forces_mae"] = summary["forces"][name]["mae"]
                summary[name]["forces_rmse"] = summary["forces"][name]["rmse"]
    if splits["test"].is_ensemble:
        from molplat.pipeline.ensemble import evaluate_ensemble

        evaluate_ensemble(summary, heads, splits, run, plots)
    _write_predictions(run, heads, splits["test"])
    if plots:
        _plots(run, heads, parity, tasks, splits)
    return summary


def _write_predictions(run: RunDirectory, heads: Any, test: SplitOutputs) -> None:
    """predictions.csv (graph targets) and atom_predictions.csv (per-atom targets), with every digit.

    An ensemble's files have a ``predicted_std`` column after ``predicted`` (the members' spread)."""
    spread = test.is_ensemble
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["id", "split", "target", "units", "true", "predicted", *(["predicted_std"] * spread), "error"])
    y_true, y_pred = test.joined("y_true"), test.joined("y_pred")
    y_std = test.joined("y_std") if spread else None
    for i, sid in enumerate(test.ids):
        for k, head in enumerate(heads.graph):
            t, p = float(y_true[i, k]), float(y_pred[i, k])
            std = [repr(float(y_std[i, k]))] if spread else []
            writer.writerow([sid, "test", head.name, head.units, repr(t), repr(p), *std, repr(p - t)])
    atomic_write_text(run.file(PREDICTIONS_FILE), rows.getvalue())
    if not heads.atom:
        return
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["id", "split", "atom", "element", "target", "units", "true", "predicted",
                     *(["predicted_std"] * spread), "error"])
    a_true, a_pred = test.joined("atom_true"), test.joined("atom_pred")
    a_std = test.joined("atom_y_std") if spread else None
    row = 0
    for sid, numbers in zip(test.ids, test.numbers):
        for atom, z in enumerate(numbers):
            for k, head in enumerate(heads.atom):
                t, p = float(a_true[row, k]), float(a_pred[row, k])
                std = [repr(float(a_std[row, k]))] if spread else []
                writer.writerow([sid, "test", atom, int(z), head.name, head.units, repr(t), repr(p), *std,
                                 repr(p - t)])
            row += 1
    atomic_write_text(run.file(ATOM_PREDICTIONS_FILE), rows.getvalue())


def _plots(run: RunDirectory, heads: Any, parity: dict[str, Any], tasks: dict[str, Any],
           splits: dict[str, SplitOutputs]) -> None:
    from molplat.plots import parity_plot

    for position, head in enumerate(heads.graph + heads.atom):
        if head.classification:
            continue
        name = "parity.png" if position == 0 else f"parity-{head.name}.png"
        parity_plot(run.file(name), parity[head.name], head.name, head.units, tasks[head.name].get("baseline_mae"))
    if heads.forces and all(splits[s].forces_true for s in splits):
        forces = {s: (o.joined("forces_true").ravel(), o.joined("forces_pred").ravel()) for s, o in splits.items()}
        parity_plot(run.file("parity-forces.png"), forces, "force components", FORCE_UNITS)
