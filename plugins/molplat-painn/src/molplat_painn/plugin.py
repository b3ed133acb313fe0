"""Registers PaiNN with molplat. Imports no torch, so listing plugins stays cheap."""
from __future__ import annotations

import molplat
from molplat.specs import MAX_CUTOFF, ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "K. T. Schütt, O. T. Unke, M. Gastegger, Equivariant message passing for the prediction of tensorial "
    "properties and molecular spectra, Proceedings of the 38th International Conference on Machine Learning "
    "(ICML 2021), PMLR 139, 9377-9388, arXiv:2102.03150"
)

#: widths beyond this only exhaust memory
MAX_WIDTH = 4096
#: the heaviest element (oganesson)
MAX_ATOMIC_NUMBER = 118

SETTINGS = (
    Setting("hidden_channels", "int", 128, "size F of the scalar features [atoms, F] and of the vector features "
            "[atoms, 3, F]", minimum=1, maximum=MAX_WIDTH),
    Setting("num_interactions", "int", 3, "message + update block pairs", minimum=1, maximum=64),
    Setting("num_radial", "int", 20, "sinc radial basis functions sin(n pi r / cutoff) / r, n = 1..num_radial",
            minimum=1, maximum=MAX_WIDTH),
    Setting("cutoff", "float", 5.0, "radius in Å of the cosine cutoff; at most the representation's cutoff",
            minimum=0.1, maximum=MAX_CUTOFF),
    Setting("readout", "str", "sum", "pool atom contributions: sum (extensive, energies), mean (intensive), or "
            "auto (sum for the run's extensive targets, mean for the others)", choices=("sum", "mean", "auto")),
    Setting("output_head", "str", "mlp", "per-atom output network: mlp (Dense, SiLU, Dense on the scalars) or "
            "gated (the paper's gated equivariant blocks, which also read the vectors)", choices=("mlp", "gated")),
    Setting("shared_filters", "bool", False, "one radial filter network for every message block instead of one "
            "per block (fewer parameters)"),
    Setting("max_atomic_number", "int", 100, "largest atomic number the element embedding holds", minimum=1,
            maximum=MAX_ATOMIC_NUMBER),
)


@molplat.hookimpl
def molplat_models() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="painn",
            kind="model",
            factory="molplat_painn.model:PaiNN",
            summary="PaiNN: rotationally equivariant message passing with scalar and vector features "
                    "(molecules and crystals)",
            settings=SETTINGS,
            accepts=("adjacency_list",),
            outputs=("property", "energy", "forces", "atom_property"),
            citation=CITATION,
        )
    ]
