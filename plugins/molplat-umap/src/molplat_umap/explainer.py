"""The umap explainer: where a trained model puts each structure, in two dimensions.

Embeddings of the train, validation and test structures are mapped together by one
seeded UMAP, so the splits share the map; points are coloured by the target and the
split is the marker. Written: ``explain/umap/umap.png`` and ``umap.csv``.
"""
from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from molplat.errors import RunError
from molplat.files import atomic_write_bytes, atomic_write_text
from molplat.results import Explanation, RunContext
from molplat_umap.targets import graph_target

SPLITS = ("train", "val", "test")
MARKERS = {"train": "o", "val": "s", "test": "^"}


def umap_coordinates(embeddings: np.ndarray, n_neighbors: int, min_dist: float, metric: str,
                     seed: int) -> np.ndarray:
    """``[n, 2]`` UMAP coordinates; a fixed ``random_state`` makes umap-learn deterministic."""
    import umap

    n = embeddings.shape[0]
    if n < 4:
        raise RunError(f"umap: {n} structures are too few for a map (at least 4)")
    reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, n - 1), min_dist=min_dist, metric=metric,
                        random_state=seed, init="spectral" if n > 16 else "random", n_jobs=1)
    return np.asarray(reducer.fit_transform(embeddings), dtype=float)


class UMAPExplainer:
    """UMAP of ModelOutput["graph_embedding"] for the run's splits; see the module docstring."""

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "euclidean", seed: int = 0,
                 max_structures: int = 2000, target: str = "", batch_size: int = 64) -> None:
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.seed = seed
        self.max_structures = max_structures
        self.target = target
        self.batch_size = batch_size

    def run(self, context: RunContext) -> Explanation:
        model = context.model
        target = graph_target(model.heads, self.target, "[[explain]] umap")
        units = next(h.units for h in model.heads.graph if h.name == target)
        ids: list[str] = []
        splits: list[str] = []
        values: list[np.ndarray] = []
        embeddings: list[np.ndarray] = []
        for k, split in enumerate(SPLITS):
            chosen = context.sample((split,), self.max_structures, self.seed + k)
            if not chosen:
                continue
            embeddings.append(model.graph_embeddings(chosen, self.batch_size))
            values.append(model.target_values(chosen, target))
            ids += [s.id for s in chosen]
            splits += [split] * len(chosen)
        if not embeddings:
            raise RunError("[[explain]] umap: the run has no train, val or test structures to map")
        stacked = np.concatenate(embeddings)
        if not np.isfinite(stacked).all():
            raise RunError("[[explain]] umap: the model's graph embeddings are not finite (NaN or inf); "
                           "the model did not train to usable weights")
        coordinates = umap_coordinates(stacked, self.n_neighbors, self.min_dist, self.metric, self.seed)
        colours = np.concatenate(values)
        folder = context.directory("explain", "umap")
        table = write_table(folder / "umap.csv", ids, splits, target, colours, coordinates)
        figure = write_map(folder / "umap.png", np.array(splits), colours, coordinates, target, units)
        counts = {f"{split}_structures": float(splits.count(split)) for split in SPLITS}
        return Explanation(metrics=counts, files=[context.relative(table), context.relative(figure)])


def write_table(path: Any, ids: list[str], splits: list[str], target: str, values: np.ndarray,
                coordinates: np.ndarray) -> Any:
    """One row per structure: its id, split, target value and map coordinates (every digit)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["id", "split", target, "umap_1", "umap_2"])
    for row in zip(ids, splits, values, coordinates[:, 0], coordinates[:, 1]):
        writer.writerow([row[0], row[1], *(repr(float(v)) for v in row[2:])])
    return atomic_write_text(path, text.getvalue())


def write_map(path: Any, splits: np.ndarray, values: np.ndarray, coordinates: np.ndarray, target: str,
              units: str) -> Any:
    """The map as a PNG: colour = target value, marker = split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.2, 4.2), dpi=110)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scatter = None
    for split in SPLITS:
        mask = splits == split
        if not mask.any():
            continue
        scatter = axes.scatter(coordinates[mask, 0], coordinates[mask, 1], c=values[mask], cmap="viridis",
                               vmin=low, vmax=high, marker=MARKERS[split], s=14, linewidths=0.3,
                               edgecolors="black" if split != "train" else "none", label=f"{split} ({mask.sum()})")
    if scatter is not None:
        figure.colorbar(scatter, ax=axes, label=f"{target} [{units}]" if units else target)
    legend = axes.legend(loc="best", fontsize=7, frameon=False)
    for handle in legend.legend_handles:
        handle.set_facecolor("lightgrey")
    axes.set_xlabel("UMAP 1")
    axes.set_ylabel("UMAP 2")
    axes.set_title("learned structure embeddings", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
