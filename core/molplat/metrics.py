"""Regression metrics, in the units of the target."""
from __future__ import annotations

import numpy as np


def regression_metrics(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    true, pred = np.asarray(true, dtype=np.float64).ravel(), np.asarray(pred, dtype=np.float64).ravel()
    error = pred - true
    variance = float(((true - true.mean()) ** 2).sum())
    r2 = 1.0 - float((error**2).sum()) / variance if variance > 0 else float("nan")
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean())), "r2": r2}
