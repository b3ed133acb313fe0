"""PaiNN passes the molplat-sdk conformance suite (shapes, symmetries, forces, persistence),
with both output heads."""
from molplat_sdk import PluginConformance

SMALL = {"hidden_channels": 8, "num_interactions": 2, "num_radial": 6, "cutoff": 4.0}


class TestPaiNNConformance(PluginConformance):
    plugin = "molplat-painn"
    settings = {"painn": SMALL}


class TestPaiNNGatedConformance(PluginConformance):
    plugin = "molplat-painn"
    settings = {"painn": {**SMALL, "output_head": "gated", "readout": "mean"}}
