"""Registers PNA with molplat. Imports no torch, so listing plugins stays cheap."""
from __future__ import annotations

import molplat
from molplat.specs import MAX_CUTOFF, ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "G. Corso, L. Cavalleri, D. Beaini, P. Liò, P. Veličković, "
    "Principal Neighbourhood Aggregation for Graph Nets, NeurIPS 2020, arXiv:2004.05718; "
    "multi-task heads after HydraGNN: M. Lupo Pasini, P. Zhang, S. T. Reeve, J. Y. Choi, "
    "Multi-task graph neural networks for simultaneous prediction of global and atomic properties in "
    "ferromagnetic systems, arXiv:2202.01954 (2022)"
)

#: widths beyond this only exhaust memory
MAX_WIDTH = 4096
#: the heaviest element (oganesson)
MAX_ATOMIC_NUMBER = 118
#: what PyG's PNAConv aggregates with (and the smooth variant reproduces)
AGGREGATORS = ("mean", "min", "max", "std", "var", "sum")
#: the degree scalers: S(d, alpha) = (log(d + 1) / delta)^alpha, and linear ones d / mean degree
SCALERS = ("identity", "amplification", "attenuation", "linear", "inverse_linear")

SETTINGS = (
    Setting("hidden_channels", "int", 64, "size of the per-atom feature vectors (a multiple of towers)",
            minimum=1, maximum=MAX_WIDTH),
    Setting("num_layers", "int", 3, "number of PNA convolutions shared by every head", minimum=1, maximum=64),
    Setting("num_radial", "int", 16, "Gaussians expanding each distance over [0, cutoff] (the edge features)",
            minimum=2, maximum=MAX_WIDTH),
    Setting("cutoff", "float", 5.0, "radius in Å of the smooth cosine cutoff; use the representation's cutoff",
            minimum=0.1, maximum=MAX_CUTOFF),
    Setting("aggregators", "list[str]", ["mean", "min", "max", "std"], "PNA aggregators, each used once",
            choices=AGGREGATORS),
    Setting("scalers", "list[str]", ["identity", "amplification", "attenuation"],
            "degree scalers, normalised by the training set's in-degree histogram", choices=SCALERS),
    Setting("towers", "int", 1, "PNA towers: the features are processed in this many independent groups",
            minimum=1, maximum=64),
    Setting("pre_layers", "int", 1, "dense layers of the message network of each tower", minimum=1, maximum=8),
    Setting("post_layers", "int", 1, "dense layers of the update network of each tower", minimum=1, maximum=8),
    Setting("shared_layers", "int", 1, "dense layers shared by the graph heads, after pooling", minimum=0,
            maximum=8),
    Setting("head_layers", "int", 1, "hidden layers of each head's own MLP (graph and atom heads)", minimum=0,
            maximum=8),
    Setting("head_channels", "int", 64, "width of the shared dense layers and of the heads' MLPs", minimum=1,
            maximum=MAX_WIDTH),
    Setting("readout", "str", "mean", "graph heads: mean (HydraGNN's global mean pool, then the MLPs; intensive "
            "targets) or sum (the MLPs per atom, then a sum; extensive targets such as energies)",
            choices=("mean", "sum")),
    Setting("smooth", "bool", True, "a smooth function of the positions: messages weighted by the squared cosine "
            "envelope, degrees counted softly, max and min as sharp softmaxes, so the energy is continuous at the "
            "cutoff and forces are defined everywhere; false: PyG's counting aggregation exactly as in the paper"),
    Setting("sharpness", "float", 10.0, "beta of the smooth max and min (a softmax weighting e^(beta m)); larger "
            "is closer to the hard max; used with smooth", minimum=0.1, maximum=1000.0),
    Setting("max_atomic_number", "int", 100, "largest atomic number the element embedding holds", minimum=1,
            maximum=MAX_ATOMIC_NUMBER),
)


@molplat.hookimpl
def molplat_models() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="pna",
            kind="model",
            factory="molplat_pna.model:PNA",
            summary="PNA: multiple aggregators and degree scalers on a radius graph, with one MLP per target "
                    "(HydraGNN-style multi-task heads)",
            settings=SETTINGS,
            accepts=("adjacency_list",),
            outputs=("property", "energy", "forces", "atom_property"),
            citation=CITATION,
        )
    ]
