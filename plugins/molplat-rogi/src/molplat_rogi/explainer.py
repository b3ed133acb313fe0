"""The rogi explainer: how rough each target's landscape is, seen by the model and by descriptors.

For every graph-level target, ROGI on the model's per-structure embeddings
(ModelOutput["graph_embedding"], Euclidean) and on input descriptors (see
descriptors.py). A smooth landscape (low ROGI) on the embeddings means the model
has placed structures with similar values near each other. Written under
``explain/rogi/``: ``rogi.csv`` (the table) and ``rogi.png`` (sigma(t) curves).
"""
from __future__ import annotations

import csv
import io

import numpy as np

from molplat.errors import RunError
from molplat.files import atomic_write_text
from molplat.results import Explanation, RunContext
from molplat_rogi.descriptors import choose_descriptor, composition_vectors, descriptor_label, morgan_fingerprints
from molplat_rogi.plots import write_curves
from molplat_rogi.roughness import Roughness, roughness_index

TABLE = "rogi.csv"
COLUMNS = ("target", "space", "rogi", "structures", "distance")


class RogiExplainer:
    """ROGI of every graph-level target on embeddings and descriptors; see the module docstring."""

    def __init__(self, split: str = "test", max_structures: int = 1000, seed: int = 0, descriptor: str = "auto",
                 radius: int = 2, n_bits: int = 2048, min_dt: float = 0.01, batch_size: int = 64) -> None:
        self.split = split
        self.max_structures = max_structures
        self.seed = seed
        self.descriptor = descriptor
        self.radius = radius
        self.n_bits = n_bits
        self.min_dt = min_dt
        self.batch_size = batch_size

    def structures(self, context: RunContext) -> list:
        names = ("train", "val", "test") if self.split == "all" else (self.split,)
        return context.sample(names, self.max_structures, self.seed)

    def run(self, context: RunContext) -> Explanation:
        model = context.model
        targets = [h.name for h in model.heads.graph]
        if not targets:
            raise RunError("[[explain]] rogi: the run predicts no graph-level target, so there is no landscape")
        structures = self.structures(context)
        if len(structures) < 3:
            raise RunError(f"[[explain]] rogi: split {self.split!r} has {len(structures)} structures; ROGI needs at "
                           f"least 3 (set split = \"all\" or a larger split)")
        embeddings = model.graph_embeddings(structures, self.batch_size)
        if not np.isfinite(embeddings).all():
            raise RunError("[[explain]] rogi: the model's graph embeddings are not finite (NaN or inf)")
        kind = choose_descriptor(structures, self.descriptor)
        if kind == "morgan":
            space: dict = {"fingerprints": morgan_fingerprints(structures, self.radius, self.n_bits)}
        else:
            space = {"features": composition_vectors(structures)}
        rows: list[tuple[str, str, Roughness, str]] = []
        metrics: dict[str, float] = {}
        for target in targets:
            values = model.target_values(structures, target)
            known = np.isfinite(values)
            if known.sum() < 3:
                continue
            picked = np.flatnonzero(known)
            learned = roughness_index(values[known], features=embeddings[known], min_dt=self.min_dt)
            chosen = {k: ([v[i] for i in picked] if isinstance(v, list) else v[known]) for k, v in space.items()}
            descriptor = roughness_index(values[known], min_dt=self.min_dt, **chosen)
            rows.append((target, "embedding", learned, "graph_embedding, Euclidean distance"))
            rows.append((target, "descriptor", descriptor, descriptor_label(kind, self.radius, self.n_bits)))
            metrics[f"{target}/embedding"] = learned.rogi
            metrics[f"{target}/descriptor"] = descriptor.rogi
        if not rows:
            raise RunError(f"[[explain]] rogi: fewer than 3 structures of split {self.split!r} have target values")
        metrics["structures"] = float(len(structures))
        folder = context.directory("explain", "rogi")
        table = atomic_write_text(folder / TABLE, table_text(rows))
        figure = write_curves(folder / "rogi.png", [(f"{t}, {s}", r) for t, s, r, _ in rows])
        return Explanation(metrics=metrics, files=[context.relative(table), context.relative(figure)])


def table_text(rows: list[tuple[str, str, Roughness, str]]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    for target, space, result, distance in rows:
        writer.writerow([target, space, repr(result.rogi), result.n, distance])
    return text.getvalue()
