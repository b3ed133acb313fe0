"""PNA passes the molplat-sdk conformance suite (shapes, symmetries, forces, cutoff, persistence).

The suite builds the model as the core does, with ``statistics`` of its tiny structures, so
the degree histogram comes from the training data here too.
"""
from molplat_sdk import PluginConformance


class TestPNAConformance(PluginConformance):
    plugin = "molplat-pna"
    settings = {"pna": {"hidden_channels": 16, "num_layers": 2, "num_radial": 8, "head_channels": 16,
                        "cutoff": 4.0, "readout": "sum"}}
