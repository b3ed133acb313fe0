"""molplat-umap passes the molplat-sdk conformance suite (the explainer on the toy run)."""
from molplat_sdk import PluginConformance


class TestUMAPConformance(PluginConformance):
    plugin = "molplat-umap"
    settings = {"umap": {"n_neighbors": 5}}
