"""The ddp backend passes the molplat-sdk conformance suite (in one process: fit(job) alone trains in one)."""
from molplat_sdk import PluginConformance


class TestDDPConformance(PluginConformance):
    plugin = "molplat-ddp"
    settings = {"ddp": {"devices": 1, "num_threads": 1}}
