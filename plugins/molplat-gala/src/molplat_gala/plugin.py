"""Registers Gala with molplat. Imports no torch, so listing plugins stays cheap."""
from __future__ import annotations

import molplat
from molplat.specs import MAX_CUTOFF, ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "M. Spellings, Geometric Algebra Attention Networks for Small Point Clouds, "
    "arXiv:2110.02393 (2021), doi:10.48550/arXiv.2110.02393"
)

#: widths beyond this only exhaust memory (a rank-2 layer holds [structures, atoms, neighbours^2, width])
MAX_WIDTH = 1024
#: the heaviest element (oganesson)
MAX_ATOMIC_NUMBER = 118

SETTINGS = (
    Setting("hidden_channels", "int", 32, "size of the per-atom (and per-tuple) feature vectors", minimum=1,
            maximum=MAX_WIDTH),
    Setting("num_layers", "int", 2, "invariant attention layers (each followed by a residual MLP and LayerNorm)",
            minimum=1, maximum=16),
    Setting("rank", "int", 2, "tuple size: 1 attends over single neighbours (distances only), 2 over pairs of "
            "neighbours (distances and angles; cost grows with neighbours squared)", choices=(1, 2)),
    Setting("dilation", "float", 2.0, "width of the score and value networks, as a multiple of hidden_channels",
            minimum=0.25, maximum=8.0),
    Setting("cutoff", "float", 0.0, "0: every atom attends to the whole molecule (the paper; no periodic "
            "structures); > 0: radius in Å of a smooth cosine envelope, periodic images included (crystals work)",
            minimum=0.0, maximum=MAX_CUTOFF),
    Setting("num_radial", "int", 16, "Gaussians expanding each neighbour distance over [0, cutoff] (or [0, 10 Å] "
            "with cutoff = 0) for the filter that scales its value", minimum=2, maximum=MAX_WIDTH),
    Setting("readout", "str", "auto", "pool atom contributions: sum (extensive, energies), mean (intensive), or "
            "auto (sum for the run's extensive targets, mean for the others)", choices=("auto", "sum", "mean")),
    Setting("max_atomic_number", "int", 100, "largest atomic number the element embedding holds", minimum=1,
            maximum=MAX_ATOMIC_NUMBER),
)


@molplat.hookimpl
def molplat_models() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="gala",
            kind="model",
            factory="molplat_gala.model:Gala",
            summary="Gala: geometric algebra attention over each atom's point cloud of neighbours",
            settings=SETTINGS,
            accepts=("point_cloud",),
            outputs=("property", "energy", "forces", "atom_property"),
            citation=CITATION,
        )
    ]
