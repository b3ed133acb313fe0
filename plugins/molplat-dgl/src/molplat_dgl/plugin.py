"""Registers the DGL graph representation and the DGL E(n)-GNN with molplat.

Imports neither torch nor DGL, so listing plugins stays cheap; the factories import DGL
through ``molplat_dgl._dgl`` when a pipeline uses them.
"""
from __future__ import annotations

import molplat
from molplat.specs import MAX_CUTOFF, ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

DGL_CITATION = (
    "M. Wang, D. Zheng, Z. Ye, Q. Gan, M. Li, X. Song, J. Zhou, C. Ma, L. Yu, Y. Gai, T. Xiao, T. He, G. Karypis, "
    "J. Li, Z. Zhang, Deep Graph Library: A Graph-Centric, Highly-Performant Package for Graph Neural Networks, "
    "arXiv:1909.01315 (2019)"
)
EGNN_CITATION = (
    "V. G. Satorras, E. Hoogeboom, M. Welling, E(n) Equivariant Graph Neural Networks, "
    "Proceedings of the 38th International Conference on Machine Learning (ICML), PMLR 139, 9323-9332 (2021), "
    "arXiv:2102.09844"
)

#: widths beyond this only exhaust memory
MAX_WIDTH = 4096
#: the heaviest element (oganesson)
MAX_ATOMIC_NUMBER = 118

REPRESENTATION_SETTINGS = (
    Setting("cutoff", "float", 5.0, "radius in Å within which atoms are neighbours (periodic images included)",
            minimum=0.1, maximum=MAX_CUTOFF),
    Setting("max_neighbors", "int", None, "keep only this many nearest neighbours per atom (none: all; refused "
            "with energy_forces, where it makes the energy jump)", minimum=1, maximum=1000),
)

MODEL_SETTINGS = (
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
def molplat_representations() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="dgl_graph",
            kind="representation",
            factory="molplat_dgl.representation:DGLGraphRepresentation",
            summary="Radius graph (the adjacency_list's neighbours, periodic images included) as a batched "
                    "dgl.DGLGraph, edges neighbour -> centre",
            settings=REPRESENTATION_SETTINGS,
            citation=DGL_CITATION,
        )
    ]


@molplat.hookimpl
def molplat_models() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="egnn_dgl",
            kind="model",
            factory="molplat_dgl.model:EGNNDGL",
            summary="E(n)-equivariant GNN written with DGL message passing (dgl_graph or adjacency_list)",
            settings=MODEL_SETTINGS,
            accepts=("dgl_graph", "adjacency_list"),
            outputs=("property", "energy", "forces", "atom_property"),
            citation=EGNN_CITATION,
        )
    ]
