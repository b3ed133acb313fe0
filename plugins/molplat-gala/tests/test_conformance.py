"""Gala passes the molplat-sdk conformance suite (shapes, symmetries, forces, persistence).

A cutoff is set so that the suite's two crystals run too (with cutoff = 0 Gala refuses them).
"""
from molplat_sdk import PluginConformance


class TestGalaConformance(PluginConformance):
    plugin = "molplat-gala"
    settings = {"gala": {"hidden_channels": 8, "num_layers": 1, "dilation": 1.0, "cutoff": 3.0}}
