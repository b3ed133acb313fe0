"""Built-in representations and the batch type every model receives.

``Batch`` imports light; the representation classes, the differentiable geometry
helpers (``edge_vectors``, ``pair_vectors``) and ``to_pyg`` (a batch as a PyTorch Geometric
batch) load on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

from molplat.representations.batch import Batch

_LAZY = {
    "AdjacencyList": "molplat.representations.adjacency_list",
    "edge_vectors": "molplat.representations.adjacency_list",
    "AdjacencyMatrix": "molplat.representations.adjacency_matrix",
    "pair_vectors": "molplat.representations.adjacency_matrix",
    "PointCloud": "molplat.representations.point_cloud",
    "NeighborPairs": "molplat.representations.base",
    "Representation": "molplat.representations.base",
    "radius_neighbors": "molplat.representations.neighbors",
    "to_pyg": "molplat.representations.pyg",
}

__all__ = ["Batch", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'molplat.representations' has no attribute {name!r}")
