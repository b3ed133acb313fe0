"""The rogi plugin's figures (matplotlib, Agg): sigma(t) curves, and ROGI against test MAE across runs."""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from molplat.files import atomic_write_bytes


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    _pyplot().close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def write_curves(path: Path, curves: Sequence[tuple[str, Any]]) -> Path:
    """sigma(t) against the distance threshold t, one line per (target, space); ROGI in the legend."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.2, 3.8), dpi=110)
    for label, result in curves:
        axes.step(result.thresholds, result.sigmas, where="post", label=f"{label}: ROGI {result.rogi:.3f}")
    axes.set_xlabel("distance threshold t")
    axes.set_ylabel("σ(t): 2 × std of cluster means")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, None)
    axes.legend(fontsize=7, frameon=False)
    return _save(figure, path)


def write_rogi_vs_mae(path: Path, points: Sequence[dict[str, Any]]) -> Path:
    """ROGI (x) against test MAE (y), a panel per target; learned embeddings as labelled points,
    descriptor ROGI as a dashed vertical line per dataset (as in Park et al., Fig. 9)."""
    plt = _pyplot()
    targets = list(dict.fromkeys(p["target"] for p in points))
    figure, panels = plt.subplots(1, len(targets), figsize=(4.4 * len(targets), 3.8), dpi=110, squeeze=False)
    for axes, target in zip(panels[0], targets):
        mine = [p for p in points if p["target"] == target]
        for p in mine:
            if p["embedding"] is not None and p["mae"] is not None:
                axes.scatter(p["embedding"], p["mae"], s=28, zorder=3)
                axes.annotate(p["label"], (p["embedding"], p["mae"]), fontsize=7, xytext=(4, 3),
                              textcoords="offset points")
        for value in sorted({round(p["descriptor"], 6) for p in mine if p["descriptor"] is not None}):
            axes.axvline(value, color="grey", linestyle="--", linewidth=1)
            axes.annotate("descriptors", (value, 1), xycoords=("data", "axes fraction"), fontsize=7, rotation=90,
                          va="top", ha="right", color="grey")
        units = next((p["units"] for p in mine if p["units"]), "")
        axes.set_xlabel("ROGI of the learned embeddings")
        axes.set_ylabel(f"test MAE [{units}]" if units else "test MAE")
        axes.set_title(target, fontsize=10)
    return _save(figure, path)
