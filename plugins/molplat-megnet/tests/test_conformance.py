"""MEGNet passes the molplat-sdk conformance suite (shapes, symmetries, forces, persistence)."""
from molplat_sdk import PluginConformance


class TestMEGNetConformance(PluginConformance):
    plugin = "molplat-megnet"
    settings = {"megnet": {"atom_features": 8, "hidden_channels": 16, "block_channels": 8, "set2set_channels": 8,
                           "num_blocks": 2, "set2set_steps": 2, "num_gaussians": 12, "cutoff": 4.0}}


class TestMEGNetSumReadoutConformance(PluginConformance):
    """The energy readout (sum of per-atom contributions) passes the same checks."""

    plugin = "molplat-megnet"
    settings = {"megnet": {**TestMEGNetConformance.settings["megnet"], "readout": "sum"}}
