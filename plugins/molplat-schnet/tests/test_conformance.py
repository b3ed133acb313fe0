"""SchNet passes the molplat-sdk conformance suite (shapes, symmetries, forces, persistence)."""
from molplat_sdk import PluginConformance


class TestSchNetConformance(PluginConformance):
    plugin = "molplat-schnet"
    settings = {"schnet": {"hidden_channels": 16, "num_filters": 16, "num_interactions": 2, "num_gaussians": 16,
                           "cutoff": 4.0}}
