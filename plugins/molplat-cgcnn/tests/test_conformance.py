"""CGCNN passes the molplat-sdk conformance suite on both adjacency forms."""
from molplat_sdk import PluginConformance


class TestCGCNNConformance(PluginConformance):
    plugin = "molplat-cgcnn"
    settings = {"cgcnn": {"atom_features": 16, "num_convs": 2, "num_gaussians": 16, "hidden": 16, "cutoff": 4.0}}
