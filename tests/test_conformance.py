"""The core's own components (representations, CPU trainer) pass the SDK conformance suite."""
from molplat_sdk import PluginConformance


class TestCoreConformance(PluginConformance):
    plugin = "molplat"
