"""Registers the toy dataset and model in the SDK's own plugin manager, never in a user's.

The SDK hands this module to ``molplat.plugins.PluginManager(extra=...)`` so the toy
pipeline behind ``toy_run_context`` validates and runs like any other.
"""
from __future__ import annotations

import molplat
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"
PLUGIN_NAME = "molplat-sdk-toys"
TOY_DATASET = "sdk_toy_emt"
TOY_MODEL = "sdk_toy_pair"


@molplat.hookimpl
def molplat_datasets() -> list[ComponentSpec]:
    return [ComponentSpec(
        name=TOY_DATASET, kind="dataset", factory="molplat_sdk.toy_components:ToyEMTDataset",
        summary="SDK toy data: EMT energies and forces of rattled Cu/Ni clusters and cells",
        settings=(Setting("size", "int", 48, "number of structures", minimum=6, maximum=1000),
                  Setting("seed", "int", 0, "seed of the random structures", minimum=0, maximum=2**32 - 1)),
    )]


@molplat.hookimpl
def molplat_models() -> list[ComponentSpec]:
    return [ComponentSpec(
        name=TOY_MODEL, kind="model", factory="molplat_sdk.toy_components:ToyPairModel",
        summary="SDK toy model: one distance-filtered message round",
        settings=(Setting("hidden_channels", "int", 16, "feature size", minimum=1, maximum=1024),
                  Setting("num_rbf", "int", 16, "Gaussians per distance", minimum=1, maximum=256),
                  Setting("cutoff", "float", 4.0, "radius in Å", minimum=0.1, maximum=20.0),
                  Setting("max_atomic_number", "int", 100, "largest element", minimum=1, maximum=118)),
        accepts=("adjacency_list",), outputs=("property", "energy", "forces", "atom_property"),
    )]
