"""PNG figures of a simulation (matplotlib, Agg backend), each written atomically."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def _figure(rows: int = 1, cols: int = 1, size: tuple[float, float] = (6.0, 4.0)) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    return fig, axes


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    part = path.with_name(path.name + ".part")
    fig.savefig(part, dpi=110, format="png")
    plt.close(fig)
    os.replace(part, path)
    return path


def energies(path: Path, arrays: dict[str, np.ndarray], title: str, drift: float | None = None) -> Path:
    """Potential, kinetic and total energy (eV) against time, with the fitted drift."""
    fig, axes = _figure(2, 1, (6.5, 5.5))
    t = arrays["time_fs"] / 1000.0
    total = arrays["potential"] + arrays["kinetic"]
    top, bottom = axes[0, 0], axes[1, 0]
    top.plot(t, arrays["potential"] - arrays["potential"][0], label="potential")
    top.plot(t, arrays["kinetic"] - arrays["kinetic"][0], label="kinetic")
    top.plot(t, total - total[0], label="total", color="black")
    top.set_ylabel("energy - start (eV)")
    top.legend(fontsize=8)
    top.set_title(title)
    bottom.plot(t, (total - total[0]) * 1000.0, color="black")
    bottom.set_xlabel("time (ps)")
    bottom.set_ylabel("total - start (meV)")
    if drift is not None and np.isfinite(drift):
        bottom.set_title(f"drift {drift * 1000:.3g} meV/atom/ps", fontsize=9)
    return _save(fig, path)


def series(path: Path, x: np.ndarray, y: np.ndarray, xlabel: str, ylabel: str, title: str,
           target: float | None = None) -> Path:
    """One quantity against time or step (temperature, volume, energy in a relaxation)."""
    fig, axes = _figure()
    ax = axes[0, 0]
    ax.plot(x, y)
    if target is not None:
        ax.axhline(target, color="gray", linestyle="--", label=f"target {target:g}")
        ax.legend(fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _save(fig, path)


def distributions(path: Path, simulated: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None,
                  distances: dict[str, float], unit: str, title: str, max_panels: int = 12) -> Path:
    """One histogram panel per bond (or angle) type: the simulation against the reference."""
    names = sorted(simulated, key=lambda n: -len(simulated[n]))[:max_panels]
    cols = min(3, max(1, len(names)))
    rows = max(1, int(np.ceil(len(names) / cols)))
    fig, axes = _figure(rows, cols, (4.0 * cols, 3.0 * rows))
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names):
        values = simulated[name]
        ref = None if reference is None else reference.get(name)
        pooled = values if ref is None else np.concatenate([values, ref])
        low, high = float(pooled.min()), float(pooled.max())
        edges = np.linspace(low, high if high > low else low + 1e-3, 41)
        ax.hist(values, bins=edges, density=True, alpha=0.6, label="model MD")
        if ref is not None:
            ax.hist(ref, bins=edges, density=True, histtype="step", color="black", label="reference")
        label = f"{name}" + (f"  W1 = {distances[name]:.3g} {unit}" if name in distances else "")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel(unit)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def rdf(path: Path, r: np.ndarray, g: np.ndarray, reference: tuple[np.ndarray, np.ndarray] | None,
        title: str) -> Path:
    fig, axes = _figure()
    ax = axes[0, 0]
    ax.plot(r, g, label="model MD")
    if reference is not None:
        ax.plot(reference[0], reference[1], color="black", linestyle="--", label="reference")
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("g(r)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)
