"""Both models pass the molplat-sdk conformance suite (shapes, symmetries, forces, cutoff,
batch independence in training mode, persistence)."""
from molplat_sdk import PluginConformance

TINY = {"hidden_channels": 8, "num_steps": 2, "num_gaussians": 8, "cutoff": 4.0, "set2set_steps": 2}


class TestMPNNConformance(PluginConformance):
    plugin = "molplat-mpnn"
    settings = {"mpnn": {**TINY, "edge_hidden": 8, "readout": "sum"},
                "mpnn_transformer": {**TINY, "attention_heads": 2, "readout": "sum"}}
