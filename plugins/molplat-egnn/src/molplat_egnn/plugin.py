"""Registers the E(n)-equivariant GNN with molplat. Imports no torch, so listing plugins stays cheap."""
from __future__ import annotations

import molplat
from molplat.specs import MAX_CUTOFF, ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "V. G. Satorras, E. Hoogeboom, M. Welling, E(n) Equivariant Graph Neural Networks, "
    "Proceedings of the 38th International Conference on Machine Learning (ICML), PMLR 139, 9323-9332 (2021), "
    "arXiv:2102.09844"
)

#: widths beyond this only exhaust memory
MAX_WIDTH = 4096
#: the heaviest element (oganesson)
MAX_ATOMIC_NUMBER = 118

SETTINGS = (
    Setting("hidden_channels", "int", 64, "size of the per-atom feature vectors h and of the messages m_ij",
            minimum=1, maximum=MAX_WIDTH),
    Setting("num_layers", "int", 4, "number of equivariant graph convolutional layers (EGCL)", minimum=1, maximum=64),
    Setting("num_radial", "int", 16, "Gaussians expanding the input distance, fed to every edge network as the "
            "paper's edge attribute a_ij (0: none, only ||x_i - x_j||^2 as in the paper)", minimum=0,
            maximum=MAX_WIDTH),
    Setting("cutoff", "float", 5.0, "radius in Å of the smooth cosine envelope on every edge; use the "
            "representation's cutoff", minimum=0.1, maximum=MAX_CUTOFF),
    Setting("update_coords", "bool", True, "update the coordinates in every layer but the last "
            "(x_i += C sum_j (x_i - x_j) phi_x(m_ij)), so later layers see equivariantly moved atoms; "
            "false: the E(n)-invariant variant the paper uses for QM9"),
    Setting("attention", "bool", False, "gate every message by a learnt sigmoid weight e_ij = sigmoid(W m_ij) "
            "(the paper's optional attention)"),
    Setting("readout", "str", "sum", "pool atom contributions: sum (extensive, energies) or mean (intensive)",
            choices=("sum", "mean")),
    Setting("max_atomic_number", "int", 100, "largest atomic number the element embedding holds", minimum=1,
            maximum=MAX_ATOMIC_NUMBER),
)


@molplat.hookimpl
def molplat_models() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="egnn",
            kind="model",
            factory="molplat_egnn.model:EGNN",
            summary="E(n)-equivariant GNN: messages from distances, equivariant coordinate updates "
                    "(molecules and crystals)",
            settings=SETTINGS,
            accepts=("adjacency_list",),
            outputs=("property", "energy", "forces", "atom_property"),
            citation=CITATION,
        )
    ]
