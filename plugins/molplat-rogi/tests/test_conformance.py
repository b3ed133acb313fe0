"""molplat-rogi passes the molplat-sdk conformance suite (the explainer on the toy run, the command's laziness)."""
from molplat_sdk import PluginConformance


class TestRogiConformance(PluginConformance):
    plugin = "molplat-rogi"
    settings = {"rogi": {"split": "all", "max_structures": 30}}
