"""Registers MPNN and MPNN with attention with molplat. Imports no torch, so listing plugins stays cheap."""
from __future__ import annotations

import molplat
from molplat.specs import MAX_CUTOFF, ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "J. Gilmer, S. S. Schoenholz, P. F. Riley, O. Vinyals, G. E. Dahl, "
    "Neural Message Passing for Quantum Chemistry, Proceedings of the 34th International Conference on "
    "Machine Learning (ICML), PMLR 70, 1263-1272 (2017), arXiv:1704.01212"
)
ATTENTION_CITATION = (
    CITATION + "; attention as the message function: Y. Shi, Z. Huang, S. Feng, H. Zhong, W. Wang, Y. Sun, "
    "Masked Label Prediction: Unified Message Passing Model for Semi-Supervised Classification, IJCAI 2021, "
    "arXiv:2009.03509 (PyG's TransformerConv); MPNNs with attention in the message function: S. Jiang, "
    "P. Balaprakash, Graph Neural Network Architecture Search for Molecular Property Prediction, "
    "IEEE Big Data 2020, arXiv:2008.12187"
)

#: the edge network outputs hidden_channels^2 numbers per edge: beyond this only memory runs out
MAX_STATE = 512
#: widths beyond this only exhaust memory
MAX_WIDTH = 4096
#: the heaviest element (oganesson)
MAX_ATOMIC_NUMBER = 118


def _shared(state_help: str, max_state: int) -> tuple[Setting, ...]:
    return (
        Setting("hidden_channels", "int", 64, state_help, minimum=1, maximum=max_state),
        Setting("num_steps", "int", 3, "message-passing steps T; one message function and one GRU serve every step "
                "(weights tied across steps)", minimum=1, maximum=32),
        Setting("num_gaussians", "int", 50, "Gaussians expanding each distance over [0, cutoff] (the edge features)",
                minimum=2, maximum=MAX_WIDTH),
        Setting("cutoff", "float", 5.0, "radius in Å of the smooth cosine cutoff; use the representation's cutoff",
                minimum=0.1, maximum=MAX_CUTOFF),
        Setting("set2set_steps", "int", 3, "processing steps of the set2set readout (an LSTM attending over the atoms)",
                minimum=1, maximum=32),
        Setting("readout", "str", "mean", "mean: the paper's set2set readout alone (intensive: gaps, orbital "
                "energies); sum: set2set plus a sum of per-atom contributions (extensive: energies)",
                choices=("mean", "sum")),
        Setting("max_atomic_number", "int", 100, "largest atomic number the element embedding holds", minimum=1,
                maximum=MAX_ATOMIC_NUMBER),
    )


MPNN_SETTINGS = (
    *_shared("size d of the atom states; the edge network outputs a d x d matrix per edge", MAX_STATE),
    Setting("edge_hidden", "int", 128, "hidden width of the edge network (Gaussians -> hidden -> d x d)", minimum=1,
            maximum=MAX_WIDTH),
)
TRANSFORMER_SETTINGS = (
    *_shared("size d of the atom states (a multiple of attention_heads)", MAX_WIDTH),
    # not "heads": the core passes a model factory its prediction heads under that name
    Setting("attention_heads", "int", 4, "attention heads, each of width hidden_channels / attention_heads",
            minimum=1, maximum=64),
)
OUTPUTS = ("property", "energy", "forces", "atom_property")


@molplat.hookimpl
def molplat_models() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="mpnn",
            kind="model",
            factory="molplat_mpnn.model:MPNN",
            summary="MPNN (Gilmer et al.): edge-network messages, GRU updates, set2set readout; molecules, crystals",
            settings=MPNN_SETTINGS,
            accepts=("adjacency_list",),
            outputs=OUTPUTS,
            citation=CITATION,
        ),
        ComponentSpec(
            name="mpnn_transformer",
            kind="model",
            factory="molplat_mpnn.model:MPNNTransformer",
            summary="MPNN with multi-head attention over neighbours (TransformerConv messages), GRU, set2set",
            settings=TRANSFORMER_SETTINGS,
            accepts=("adjacency_list",),
            outputs=OUTPUTS,
            citation=ATTENTION_CITATION,
        ),
    ]
