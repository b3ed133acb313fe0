"""Registers the umap explainer. Imports neither torch nor umap-learn, so listing plugins stays cheap."""
from __future__ import annotations

import molplat
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = ("L. McInnes, J. Healy, J. Melville, UMAP: Uniform Manifold Approximation and Projection for "
            "Dimension Reduction, arXiv:1802.03426 (2018)")

SETTINGS = (
    Setting("n_neighbors", "int", 15, "neighbours UMAP balances local against global structure with",
            minimum=2, maximum=200),
    Setting("min_dist", "float", 0.1, "how tightly UMAP packs points in the map", minimum=0.0, maximum=1.0),
    Setting("metric", "str", "euclidean", "distance between embeddings", choices=("euclidean", "cosine")),
    Setting("seed", "int", 0, "random seed: the same seed gives the same map", minimum=0, maximum=2**31 - 1),
    Setting("max_structures", "int", 2000, "at most this many structures per split (a seeded sample)",
            minimum=10, maximum=100_000),
    Setting("target", "str", "", "graph-level target the points are coloured by (default: the first)"),
    Setting("batch_size", "int", 64, "structures per forward pass when computing embeddings",
            minimum=1, maximum=4096),
)


@molplat.hookimpl
def molplat_explainers() -> list[ComponentSpec]:
    return [ComponentSpec(
        name="umap",
        kind="explainer",
        factory="molplat_umap.explainer:UMAPExplainer",
        summary="UMAP of per-structure embeddings (train, val, test), coloured by the target; PNG and CSV",
        settings=SETTINGS,
        citation=CITATION,
    )]
