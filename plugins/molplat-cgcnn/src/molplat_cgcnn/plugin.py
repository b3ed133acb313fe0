"""molplat hook implementations of molplat-cgcnn; imports no torch so listing stays cheap."""
from __future__ import annotations

import molplat
from molplat import ComponentSpec, Setting
from molplat.specs import MAX_CUTOFF

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "T. Xie and J. C. Grossman, Crystal Graph Convolutional Neural Networks for an Accurate and "
    "Interpretable Prediction of Material Properties, Phys. Rev. Lett. 120, 145301 (2018), "
    "doi:10.1103/PhysRevLett.120.145301"
)

#: widths beyond this only exhaust memory
MAX_WIDTH = 4096
#: the heaviest element (oganesson)
MAX_ATOMIC_NUMBER = 118

SETTINGS = (
    Setting("atom_features", "int", 64, "width F of the atom feature vectors", minimum=1, maximum=MAX_WIDTH),
    Setting("num_convs", "int", 3, "number of gated graph convolutions", minimum=0, maximum=64),
    Setting("num_gaussians", "int", 40, "Gaussians in the bond-distance expansion", minimum=1, maximum=MAX_WIDTH),
    Setting("cutoff", "float", 6.0,
            "radius in Å of the smooth cosine envelope; set the representation cutoff to the same value",
            minimum=0.1, maximum=MAX_CUTOFF),
    Setting("hidden", "int", 128, "width of the hidden layer of the output MLPs", minimum=1, maximum=MAX_WIDTH),
    Setting("readout", "str", "mean",
            "mean: MLP on the mean atom features (original CGCNN, intensive targets); "
            "sum: sum of per-atom MLP outputs (extensive targets such as energies)",
            choices=("mean", "sum")),
    Setting("max_atomic_number", "int", 100, "largest atomic number the embedding table holds", minimum=1,
            maximum=MAX_ATOMIC_NUMBER),
)


@molplat.hookimpl
def molplat_models() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="cgcnn",
            kind="model",
            factory="molplat_cgcnn.model:CGCNN",
            summary="Crystal graph convolutional network (Xie & Grossman 2018): gated edge-conditioned "
                    "convolutions on Gaussian-expanded distances, for crystals, MOFs and molecules",
            settings=SETTINGS,
            accepts=("adjacency_list", "adjacency_matrix"),
            outputs=("property", "energy", "forces", "atom_property"),
            citation=CITATION,
        )
    ]
