"""PNG figures of a run (matplotlib without a display)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def parity_plot(path: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]], target: str, units: str,
                baseline_mae: float | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    lo = min(min(t.min(), p.min()) for t, p in splits.values())
    hi = max(max(t.max(), p.max()) for t, p in splits.values())
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls="--", label="ideal")
    for name, (true, pred) in splits.items():
        mae = np.abs(pred - true).mean()
        ax.scatter(true, pred, s=8, alpha=0.6, label=f"{name} (MAE {mae:.3g} {units})")
    label = f"{target} [{units}]" if units else target
    ax.set_xlabel(f"true {label}")
    ax.set_ylabel(f"predicted {label}")
    title = "parity"
    if baseline_mae is not None:
        title += f" (mean-baseline MAE {baseline_mae:.3g} {units})"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from molplat.files import atomic_write

    atomic_write(Path(path), lambda handle: fig.savefig(handle, format="png"))
    plt.close(fig)
    return Path(path)


def calibration_plot(path: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]], target: str, units: str) -> Path:
    """Binned RMSE against the binned root mean predicted variance of each split, with the y = x line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    values = np.concatenate([np.concatenate([rmv, rmse]) for rmv, rmse in splits.values()])
    hi = float(values.max()) * 1.05 if values.size and values.max() > 0 else 1.0
    ax.plot([0, hi], [0, hi], color="0.5", lw=1, ls="--", label="calibrated (y = x)")
    for name, (rmv, rmse) in splits.items():
        ax.plot(rmv, rmse, marker="o", ms=4, lw=1, label=name)
    suffix = f" [{units}]" if units else ""
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_xlabel(f"predicted spread of {target}, root mean variance per bin{suffix}")
    ax.set_ylabel(f"RMSE per bin{suffix}")
    ax.set_title("ensemble calibration (bins of equal size, sorted by spread)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from molplat.files import atomic_write

    atomic_write(Path(path), lambda handle: fig.savefig(handle, format="png"))
    plt.close(fig)
    return Path(path)
