"""Metrics in the units of the target: regression (MAE, RMSE, R²) and classification (accuracy, ROC-AUC)."""
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
