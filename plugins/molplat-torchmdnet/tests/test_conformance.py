"""The equivariant transformer passes the molplat-sdk conformance suite (shapes, symmetries, forces, persistence)."""
from molplat_sdk import PluginConformance


class TestTorchMDNetConformance(PluginConformance):
    plugin = "molplat-torchmdnet"
    settings = {"torchmdnet": {"hidden_channels": 16, "num_layers": 2, "num_heads": 2, "num_rbf": 8,
                               "cutoff": 4.0}}


class TestTorchMDNetGatedConformance(PluginConformance):
    """The gated equivariant head reads the vector features too: the same contracts hold."""

    plugin = "molplat-torchmdnet"
    settings = {"torchmdnet": {"hidden_channels": 16, "num_layers": 2, "num_heads": 2, "num_rbf": 8,
                               "cutoff": 4.0, "output_head": "gated", "trainable_rbf": True}}
