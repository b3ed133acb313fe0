"""The ADIOS store backend passes the molplat-sdk conformance suite (round trip, rank shards, damage)."""
from molplat_sdk import PluginConformance


class TestAdiosConformance(PluginConformance):
    plugin = "molplat-adios"
    settings = {"adios": {"part_size": 4}}  # 15 samples in 4 parts: shards cross part boundaries
