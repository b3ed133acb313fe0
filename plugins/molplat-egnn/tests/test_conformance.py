"""EGNN passes the molplat-sdk conformance suite (shapes, symmetries, forces, persistence),
with and without coordinate updates."""
from molplat_sdk import PluginConformance

TINY = {"hidden_channels": 16, "num_layers": 2, "num_radial": 8, "cutoff": 4.0}


class TestEGNNConformance(PluginConformance):
    plugin = "molplat-egnn"
    settings = {"egnn": {**TINY, "update_coords": True, "attention": True}}


class TestInvariantEGNNConformance(PluginConformance):
    """The variant the paper uses on QM9: no coordinate updates, no radial basis."""

    plugin = "molplat-egnn"
    settings = {"egnn": {**TINY, "update_coords": False, "num_radial": 0}}
