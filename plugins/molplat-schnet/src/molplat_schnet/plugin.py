"""Registers SchNet with molplat. Imports no torch, so listing plugins stays cheap."""
from __future__ import annotations

import molplat
from molplat.specs import MAX_CUTOFF, ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "K. T. Schütt, H. E. Sauceda, P.-J. Kindermans, A. Tkatchenko, K.-R. Müller, "
    "SchNet - A deep learning architecture for molecules and materials, "
    "J. Chem. Phys. 148, 241722 (2018), doi:10.1063/1.5019779"
)

#: widths beyond this only exhaust memory
MAX_WIDTH = 4096
#: the heaviest element (oganesson)
MAX_ATOMIC_NUMBER = 118

SETTINGS = (
    Setting("hidden_channels", "int", 64, "size of the per-atom feature vectors", minimum=1, maximum=MAX_WIDTH),
    Setting("num_filters", "int", 64, "size of the continuous filters (cfconv width)", minimum=1, maximum=MAX_WIDTH),
    Setting("num_interactions", "int", 3, "number of interaction blocks", minimum=1, maximum=64),
    Setting("num_gaussians", "int", 50, "Gaussians expanding each distance over [0, cutoff]", minimum=1,
            maximum=MAX_WIDTH),
    Setting("cutoff", "float", 5.0, "radius in Å of the smooth cosine cutoff; use the representation's cutoff",
            minimum=0.1, maximum=MAX_CUTOFF),
    Setting("readout", "str", "sum", "pool atom contributions: sum (extensive, energies) or mean (intensive)",
            choices=("sum", "mean")),
    Setting("max_atomic_number", "int", 100, "largest atomic number the element embedding holds", minimum=1,
            maximum=MAX_ATOMIC_NUMBER),
    Setting("static_shapes", "bool", False, "filters per directed edge instead of per atom pair: no shape depends "
            "on the data, so the model compiles (PopTorch, torch.compile); fixed-size padded batches always use it"),
)


@molplat.hookimpl
def molplat_models() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="schnet",
            kind="model",
            factory="molplat_schnet.model:SchNet",
            summary="SchNet: continuous-filter convolutions on a radius graph (molecules and crystals)",
            settings=SETTINGS,
            accepts=("adjacency_list",),
            outputs=("property", "energy", "forces", "atom_property"),
            citation=CITATION,
        )
    ]
