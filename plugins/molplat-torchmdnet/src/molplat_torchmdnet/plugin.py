"""Registers TorchMD-NET's equivariant transformer with molplat. Imports no torch, so listing plugins stays cheap."""
from __future__ import annotations

import molplat
from molplat.specs import MAX_CUTOFF, ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "P. Thölke, G. De Fabritiis, TorchMD-NET: Equivariant Transformers for Neural Network based "
    "Molecular Potentials, International Conference on Learning Representations (ICLR) 2022, arXiv:2202.02541"
)

#: widths beyond this only exhaust memory
MAX_WIDTH = 4096
#: the heaviest element (oganesson)
MAX_ATOMIC_NUMBER = 118

SETTINGS = (
    Setting("hidden_channels", "int", 128, "size of the scalar features and of each channel group of the vector "
            "features; a multiple of num_heads", minimum=1, maximum=MAX_WIDTH),
    Setting("num_layers", "int", 6, "number of equivariant attention layers", minimum=1, maximum=64),
    Setting("num_heads", "int", 8, "attention heads per layer; must divide hidden_channels", minimum=1,
            maximum=MAX_WIDTH),
    Setting("num_rbf", "int", 32, "exponential-normal radial basis functions over [0, cutoff]", minimum=1,
            maximum=MAX_WIDTH),
    Setting("trainable_rbf", "bool", False, "learn the centres and widths of the radial basis functions"),
    Setting("cutoff", "float", 5.0, "radius in Å of the smooth cosine cutoff; use the representation's cutoff",
            minimum=0.1, maximum=MAX_CUTOFF),
    Setting("readout", "str", "sum", "pool atom contributions: sum (extensive, energies) or mean (intensive)",
            choices=("sum", "mean")),
    Setting("output_head", "str", "scalar", "scalar: an MLP on the final scalar features; gated: gated equivariant "
            "blocks that also read the vector features", choices=("scalar", "gated")),
    Setting("max_atomic_number", "int", 100, "largest atomic number the element embeddings hold", minimum=1,
            maximum=MAX_ATOMIC_NUMBER),
)


@molplat.hookimpl
def molplat_models() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="torchmdnet",
            kind="model",
            factory="molplat_torchmdnet.model:EquivariantTransformer",
            summary="TorchMD-NET equivariant transformer: attention over neighbours with scalar and vector features",
            settings=SETTINGS,
            accepts=("adjacency_list",),
            outputs=("property", "energy", "forces", "atom_property"),
            citation=CITATION,
        )
    ]
