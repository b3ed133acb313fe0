"""The core's own components, registered through the same hooks as any plugin."""
from __future__ import annotations

from molplat.hookspecs import hookimpl
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

_NEIGHBOR_SETTINGS = (
    Setting("cutoff", "float", 5.0, "radius in Å within which atoms are neighbours", minimum=0.1),
    Setting("max_neighbors", "int", None, "keep only this many nearest neighbours per atom (none: all)", minimum=1),
)

TRAINER_SETTINGS = (
    Setting("task", "str", "property", "graph-level property regression, or energy with forces",
            choices=("property", "energy_forces")),
    Setting("batch_size", "int", 32, "structures per batch", minimum=1),
    Setting("max_epochs", "int", 50, "upper bound on training epochs", minimum=1),
    Setting("lr", "float", 1e-3, "learning rate", minimum=0.0),
    Setting("optimizer", "str", "adamw", "optimiser", choices=("sgd", "adam", "adamw", "lamb")),
    Setting("weight_decay", "float", 0.0, "L2 penalty (decoupled for adamw and lamb)", minimum=0.0),
    Setting("accumulate_grad_batches", "int", 1, "batches whose gradients are summed per step", minimum=1),
    Setting("gradient_clip_val", "float", 0.0, "clip gradient norm to this value (0: no clipping)", minimum=0.0),
    Setting("amp", "bool", False, "bf16 autocast on the CPU"),
    Setting("seed", "int", 0, "seed for weights, shuffling and dropout"),
    Setting("patience", "int", 20, "stop after this many epochs without a better validation loss", minimum=1),
    Setting("lr_patience", "int", 5, "multiply the lr by lr_factor after this many epochs without improvement", minimum=1),
    Setting("lr_factor", "float", 0.5, "factor of the plateau lr scheduler", minimum=0.0, maximum=1.0),
    Setting("standardize", "bool", True, "train on standardised targets (per-atom mean for energies)"),
    Setting("loss", "str", "mse", "training loss", choices=("mse", "l1")),
    Setting("forces_weight", "float", 10.0, "weight of the force loss against the energy loss", minimum=0.0),
    Setting("progress_bar", "bool", True, "show a progress bar while training"),
    Setting("num_threads", "int", 0, "torch threads (0: leave torch's default)", minimum=0),
)


@hookimpl
def molplat_representations() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="adjacency_list",
            kind="representation",
            factory="molplat.representations.adjacency_list:AdjacencyList",
            summary="Sparse radius graph: edge index, periodic shifts and cell offsets, built with vesin",
            settings=_NEIGHBOR_SETTINGS,
        ),
        ComponentSpec(
            name="adjacency_matrix",
            kind="representation",
            factory="molplat.representations.adjacency_matrix:AdjacencyMatrix",
            summary="Dense padded pair tensors with atom and pair masks (an image axis for periodic cells)",
            settings=_NEIGHBOR_SETTINGS,
        ),
        ComponentSpec(
            name="point_cloud",
            kind="representation",
            factory="molplat.representations.point_cloud:PointCloud",
            summary="Padded coordinates with one-hot species and an atom mask, no edges",
            settings=(Setting("max_atomic_number", "int", 100, "length of the one-hot species vector", minimum=1),),
        ),
    ]


@hookimpl
def molplat_trainer_backends() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="cpu",
            kind="trainer_backend",
            factory="molplat.training.cpu:CPUBackend",
            summary="PyTorch Lightning on the CPU: property or energy+forces regression",
            settings=TRAINER_SETTINGS,
        )
    ]
