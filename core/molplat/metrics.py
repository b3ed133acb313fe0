"""Metrics in the units of the target: regression (MAE, RMSE, R²), classification (accuracy, ROC-AUC) and the
calibration of a predicted spread."""
from __future__ import annotations

import numpy as np


def regression_metrics(true: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    """MAE, RMSE and R² (None when the true values do not vary, where R² is undefined)."""
    true, pred = np.asarray(true, dtype=np.float64).ravel(), np.asarray(pred, dtype=np.float64).ravel()
    error = pred - true
    variance = float(((true - true.mean()) ** 2).sum())
    r2 = 1.0 - float((error**2).sum()) / variance if variance > 0 else None
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean())), "r2": r2}


def classification_metrics(true: np.ndarray, probability: np.ndarray) -> dict[str, float | None]:
    """Accuracy at 0.5 and ROC-AUC (None when only one class is present), from torchmetrics."""
    import torch
    from torchmetrics.functional.classification import binary_accuracy, binary_auroc

    target = torch.as_tensor(np.asarray(true).ravel() > 0.5, dtype=torch.long)
    preds = torch.as_tensor(np.asarray(probability, dtype=np.float64).ravel())
    accuracy = float(binary_accuracy(preds, target))
    both = bool(target.min() != target.max()) if target.numel() else False
    auc = float(binary_auroc(preds, target)) if both else None
    return {"accuracy": accuracy, "roc_auc": auc}


def vector_metrics(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MAE and RMSE over every component (forces, in eV/Å)."""
    error = np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean()))}


#: fractions of errors a Gaussian spread keeps within 1, 2 and 3 standard deviations
GAUSSIAN_WITHIN = {1: 0.6827, 2: 0.9545, 3: 0.9973}


def calibration_metrics(true: np.ndarray, pred: np.ndarray, std: np.ndarray) -> dict[str, float | None]:
    """How well a predicted spread ``std`` (an ensemble's) tells the size of the error ``pred - true``.

    ``spearman``: rank correlation between the absolute error and ``std`` (torchmetrics;
    None when either is constant). ``within_K_std``: the fraction of errors within K
    standard deviations (a Gaussian keeps 0.683, 0.954 and 0.997). ``miscalibration_area``:
    the mean gap between the observed and the expected fraction of errors inside the
    central Gaussian interval, over 99 levels from 1% to 99% (0 is perfect, 0.5 the worst;
    uncertainty-toolbox's miscalibration area, on a grid). ``rmse``/``rmv``: the root mean squared error
    against the root mean predicted variance, whose ratio is 1 on average when the spread
    is calibrated (above 1: overconfident).
    """
    from statistics import NormalDist

    true, pred = np.asarray(true, dtype=np.float64).ravel(), np.asarray(pred, dtype=np.float64).ravel()
    std = np.asarray(std, dtype=np.float64).ravel()
    error = np.abs(pred - true)
    if error.size == 0:
        return {"spearman": None, "miscalibration_area": None, "rmse": None, "rmv": None,
                **{f"within_{k}_std": None for k in GAUSSIAN_WITHIN}}
    levels = np.linspace(0.01, 0.99, 99)
    normal = NormalDist()
    observed = np.array([(error <= normal.inv_cdf(0.5 + p / 2) * std).mean() for p in levels])
    result: dict[str, float | None] = {"spearman": _spearman(error, std),
                                       "miscalibration_area": float(np.abs(observed - levels).mean())}
    result.update({f"within_{k}_std": float((error <= k * std).mean()) for k in GAUSSIAN_WITHIN})
    result["rmse"] = float(np.sqrt((error**2).mean()))
    result["rmv"] = float(np.sqrt((std**2).mean()))
    return result


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    import torch
    from torchmetrics.functional import spearman_corrcoef

    return float(spearman_corrcoef(torch.as_tensor(a), torch.as_tensor(b)))


def binned_calibration(true: np.ndarray, pred: np.ndarray, std: np.ndarray,
                       bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Root mean predicted variance and RMSE in ``bins`` groups of equal size, sorted by ``std``.

    Where the spread is calibrated the two agree bin by bin (the y = x line of
    ``calibration.png``; Levi et al., Sensors 22, 5540 (2022)).
    """
    true, pred = np.asarray(true, dtype=np.float64).ravel(), np.asarray(pred, dtype=np.float64).ravel()
    std = np.asarray(std, dtype=np.float64).ravel()
    order = np.argsort(std, kind="stable")
    groups = [g for g in np.array_split(order, min(bins, max(order.size, 1))) if g.size]
    rmv = np.array([np.sqrt((std[g] ** 2).mean()) for g in groups])
    rmse = np.array([np.sqrt(((pred[g] - true[g]) ** 2).mean()) for g in groups])
    return rmv, rmse


def summary_metrics(summary: dict, splits: tuple[str, ...] = ("val", "test")) -> dict[str, float]:
    """A run summary's final numbers under flat names, ``"test/gap/mae"``, ``"test/forces/rmse"``,
    ``"gap/baseline_mae"``: what loggers record, which keep one number per name (finite only)."""
    import math

    flat: dict[str, float] = {}

    def put(name: str, value: object) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            flat[name] = float(value)

    for target, entry in (summary.get("tasks") or {}).items():
        for split in splits:
            for metric, value in (entry.get(split) or {}).items():
                put(f"{split}/{target}/{metric}", value)
        for key in ("baseline_mae", "baseline_accuracy"):
            put(f"{target}/{key}", entry.get(key))
    forces = summary.get("forces") or {}
    for split in splits:
        for metric, value in (forces.get(split) or {}).items():
            put(f"{split}/forces/{metric}", value)
    put("forces/baseline_mae", forces.get("baseline_mae"))
    training = summary.get("training") or {}
    put("training/epochs", training.get("epochs"))
    put("training/best_val_loss", training.get("best_val_loss"))
    return flat
