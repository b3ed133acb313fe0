"""Registers MEGNet with molplat. Imports no torch, so listing plugins stays cheap."""
from __future__ import annotations

import molplat
from molplat.specs import MAX_CUTOFF, ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "C. Chen, W. Ye, Y. Zuo, C. Zheng, S. P. Ong, Graph Networks as a Universal Machine Learning "
    "Framework for Molecules and Crystals, Chem. Mater. 31, 3564-3572 (2019), doi:10.1021/acs.chemmater.9b01294"
)

#: widths beyond this only exhaust memory
MAX_WIDTH = 4096
#: the heaviest element (oganesson)
MAX_ATOMIC_NUMBER = 118

SETTINGS = (
    Setting("atom_features", "int", 16, "width of the learned element embedding (16 in the paper)",
            minimum=1, maximum=MAX_WIDTH),
    Setting("hidden_channels", "int", 64, "width of the hidden dense layers: the pre-layers and the edge, atom and "
            "state update MLPs (n1 = 64 in the paper)", minimum=1, maximum=MAX_WIDTH),
    Setting("block_channels", "int", 32, "width of the atom, edge and state features passed between blocks "
            "(n2 = 32 in the paper)", minimum=1, maximum=MAX_WIDTH),
    Setting("set2set_channels", "int", 16, "width of the Set2Set memory and of the last hidden readout layer "
            "(n3 = 16 in the paper)", minimum=1, maximum=MAX_WIDTH),
    Setting("num_blocks", "int", 3, "number of MEGNet blocks", minimum=1, maximum=64),
    Setting("set2set_steps", "int", 3, "processing steps of each Set2Set readout", minimum=1, maximum=64),
    Setting("state_features", "int", 2, "size of the learned initial global state vector (the paper's crystal "
            "state is 2 numbers)", minimum=1, maximum=MAX_WIDTH),
    Setting("num_gaussians", "int", 100, "Gaussians expanding each distance over [0, cutoff]", minimum=1,
            maximum=MAX_WIDTH),
    Setting("gaussian_width", "float", 0.5, "width sigma in Å of each Gaussian, exp(-(d - mu)^2 / sigma^2)",
            minimum=0.01, maximum=MAX_CUTOFF),
    Setting("cutoff", "float", 5.0, "radius in Å of the smooth cosine envelope; use the representation's cutoff",
            minimum=0.1, maximum=MAX_CUTOFF),
    Setting("readout", "str", "set2set",
            "set2set: Set2Set over atoms and over edges with the state, then an MLP (the paper; intensive "
            "targets); sum: sum of per-atom contributions (extensive targets such as energies); mean: their average",
            choices=("set2set", "sum", "mean")),
    Setting("max_atomic_number", "int", 100, "largest atomic number the element embedding holds", minimum=1,
            maximum=MAX_ATOMIC_NUMBER),
)


@molplat.hookimpl
def molplat_models() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="megnet",
            kind="model",
            factory="molplat_megnet.model:MEGNet",
            summary="MEGNet: graph network blocks updating edges, atoms and a global state, Set2Set readout "
                    "(molecules and crystals)",
            settings=SETTINGS,
            accepts=("adjacency_list",),
            outputs=("property", "energy", "forces", "atom_property"),
            citation=CITATION,
        )
    ]
