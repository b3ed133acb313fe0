"""The core's own components, registered through the same hooks as any plugin."""
from __future__ import annotations

from molplat.hookspecs import hookimpl
from molplat.specs import MAX_CUTOFF, ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

_NEIGHBOR_SETTINGS = (
    Setting("cutoff", "float", 5.0, "radius in Å within which atoms are neighbours", minimum=0.1, maximum=MAX_CUTOFF),
    Setting("max_neighbors", "int", None, "keep only this many nearest neighbours per atom (none: all; refused "
            "with energy_forces, where it makes the energy jump)", minimum=1, maximum=1000),
)

TRAINER_SETTINGS = (
    Setting("task", "str", "property", "graph-level property regression, or energy with forces",
            choices=("property", "energy_forces")),
    Setting("batch_size", "int", 32, "structures per batch", minimum=1, maximum=65536),
    Setting("max_epochs", "int", 50, "upper bound on training epochs", minimum=1, maximum=100000),
    Setting("max_time", "float", None, "stop training after this many minutes of wall-clock time, at the end of "
            "the epoch that crosses it (none: no limit); the best model so far is the run's model. Equal budgets "
            "compare models fairly", minimum=0.0, maximum=1e6, exclusive_minimum=True),
    Setting("lr", "float", 1e-3, "learning rate", minimum=0.0, maximum=10.0, exclusive_minimum=True),
    Setting("optimizer", "str", "adamw", "optimiser", choices=("sgd", "adam", "adamw", "lamb")),
    Setting("weight_decay", "float", 0.0, "L2 penalty (decoupled for adamw and lamb)", minimum=0.0, maximum=10.0),
    Setting("accumulate_grad_batches", "int", 1, "batches whose gradients are summed per step", minimum=1,
            maximum=4096),
    Setting("gradient_clip_val", "float", 0.0, "clip gradient norm to this value (0: no clipping)", minimum=0.0,
            maximum=1e6),
    Setting("amp", "bool", False, "bf16 autocast on the CPU"),
    Setting("seed", "int", 0, "seed for weights, shuffling and dropout", minimum=0, maximum=2**32 - 1),
    Setting("patience", "int", 20, "stop after this many epochs without a better validation loss", minimum=1,
            maximum=100000),
    Setting("lr_patience", "int", 5, "multiply the lr by lr_factor after this many epochs without improvement",
            minimum=1, maximum=100000),
    Setting("lr_factor", "float", 0.5, "factor of the plateau lr scheduler (below 1, or it never lowers the lr)",
            minimum=0.0, maximum=1.0, exclusive_minimum=True, exclusive_maximum=True),
    Setting("standardize", "bool", True, "train on standardised targets: the training mean, or for extensive "
            "targets (total energies) per-element reference values fitted on the training split, are subtracted"),
    Setting("loss", "str", "mse", "training loss of every target ([targets.NAME] loss overrides it): mse, l1, "
            "huber, or bce for binary classification", choices=("mse", "l1", "huber", "bce")),
    Setting("forces_weight", "float", 10.0, "weight of the force loss against the energy loss", minimum=0.0,
            maximum=1e6),
    Setting("progress_bar", "bool", True, "show a progress bar while training"),
    Setting("num_threads", "int", 0, "torch threads (0: leave torch's default)", minimum=0, maximum=256),
    Setting("active_pool", "float", 0.0, "active sampling: the fraction of the training split held back in a "
            "reserve pool, from which the worst-predicted structures join training (0: off)", minimum=0.0,
            maximum=0.95),
    Setting("active_every", "int", 1, "active sampling: move structures from the pool after every this many "
            "epochs", minimum=1, maximum=100000),
    Setting("active_count", "int", 32, "active sampling: how many structures move per round (those with the "
            "largest force error; the first target's error when the run trains no forces)", minimum=1,
            maximum=10_000_000),
)

#: keys the core handles in ``[trainer]`` for every backend, beside the backend's own settings
#: (``molplat.pipeline.config`` takes them out before the backend is built)
MAX_ENSEMBLE = 32
TRAINER_COMMON = (
    Setting("ensemble", "int", 1, "train this many models that differ only in their seed (seed, seed + 1, ...); "
            "predictions report their mean and standard deviation", minimum=1, maximum=MAX_ENSEMBLE),
)

ATOMS_FILE_SETTINGS = (
    Setting("path", "path", None, "an ASE-readable file (extxyz, xyz, cif, an ASE database .db, ...) or a folder "
            "of such files, relative to the pipeline file", required=True),
    Setting("pattern", "str", "*", "for a folder: which files to read, sorted by name (a glob such as '*.cif' or "
            "'**/*.xyz'; hidden files are left out)"),
    Setting("format", "str", None, "ASE format name when the file extension does not tell (e.g. 'extxyz'); "
            "default: ASE guesses per file"),
    Setting("index", "str", ":", "which frames of each file to read (ASE index syntax: ':', '::10', '-1', '2:5')"),
    Setting("energy_key", "str", "energy", "where the energy (eV) is: an info key, or the calculator result a file "
            "stores (extxyz energy=..., ASE databases); offered as target 'energy'"),
    Setting("forces_key", "str", "forces", "the per-atom array (or stored calculator result) holding forces in "
            "eV/Å, shape [atoms, 3]"),
    Setting("stress_key", "str", "stress", "the info key or stored calculator result holding the stress in eV/Å³ "
            "([3, 3], 9 values or Voigt 6); offered as target 'pressure' = -trace/3"),
    Setting("targets", "list[str]", [], "more targets: info keys with one number per structure, or per-atom "
            "arrays of shape [atoms]"),
    Setting("units", "dict", {}, "units of the extra targets, e.g. {gap = \"eV\"} (default: unspecified)"),
    Setting("extensive", "list[str]", [], "extra targets that are totals growing with the structure (such as "
            "free energies): trained after subtracting per-element reference values"),
)


@hookimpl
def molplat_datasets() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="atoms_file",
            kind="dataset",
            factory="molplat.datasets.atoms_file:AtomsFile",
            summary="Any file or folder ASE reads (extxyz, ASE database, CIFs), with energy, forces, stress and "
                    "info keys as targets",
            settings=ATOMS_FILE_SETTINGS,
            citation="A. H. Larsen et al., The atomic simulation environment, J. Phys.: Condens. Matter 29, "
                     "273002 (2017)",
        )
    ]


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
            settings=(Setting("max_atomic_number", "int", 100, "length of the one-hot species vector", minimum=1,
                              maximum=118),),
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


@hookimpl
def molplat_store_backends() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="molplat", kind="store_backend", factory="molplat.data.store:SampleStoreBackend",
            summary="the core's preprocessed store: per-shard records and index files read with positioned reads, "
                    "SHA-256 checked; needs nothing beyond numpy"),
    ]
