"""Per-structure embeddings of a trained model: ModelOutput["graph_embedding"], the second-to-last layer."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from molplat.data import labels_of, make_sample
from molplat.errors import RunError


def structure_embeddings(model: Any, structures: Sequence[Any], batch_size: int = 64) -> np.ndarray:
    """``[n, F]`` graph embeddings of ``structures`` from ``model`` (a molplat.predict.TrainedModel).

    An ensemble's first member embeds: members' embedding spaces are unrelated, so they
    cannot be averaged.
    """
    import torch

    network = model.model.eval()
    rows: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, len(structures), batch_size):
            chunk = structures[start:start + batch_size]
            batch = model.collator([make_sample(s, model.representation, model.heads) for s in chunk])
            out = network(batch)
            if "graph_embedding" not in out:
                raise RunError(f"model {type(network).__name__} returns no graph_embedding; explainers need it "
                               "(molplat.models.ModelOutput)")
            rows.append(out["graph_embedding"].detach().double().cpu().numpy())
    found = np.concatenate(rows) if rows else np.zeros((0, 0))
    if found.shape[0] != len(structures):
        raise RunError(f"model {type(network).__name__} returned {found.shape[0]} graph embeddings for "
                       f"{len(structures)} structures")
    return found


def target_values(structures: Sequence[Any], heads: Any, target: str) -> np.ndarray:
    """The labelled value of graph-level ``target`` for each structure (NaN where it has none)."""
    column = [h.name for h in heads.graph].index(target)
    return np.array([labels_of(s, heads)[0][column] for s in structures], dtype=float)


def graph_target(heads: Any, requested: str, where: str) -> str:
    """The target to colour or score by: ``requested``, or the first graph-level target."""
    names = [h.name for h in heads.graph]
    if not names:
        raise RunError(f"{where}: the run predicts no graph-level target, so there is nothing to colour by")
    if not requested:
        return names[0]
    if requested not in names:
        raise RunError(f"{where}: target {requested!r} is not one the run predicts; use one of {names}")
    return requested


def sample_indices(n: int, limit: int, seed: int) -> np.ndarray:
    """All of ``range(n)``, or a seeded sorted sample of ``limit`` of them."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
