"""molplat-sdk: what plugin authors use to test a molplat plugin.

Turn the conformance suite on in a plugin's tests::

    from molplat_sdk import PluginConformance

    class TestConformance(PluginConformance):
        plugin = "molplat-my-model"

The fixtures ``tiny_structures``, ``toy_run_context`` and ``molplat_manager`` come with
the pytest plugin this distribution registers.
"""
from __future__ import annotations

from molplat_sdk.checks.dataset import no_network
from molplat_sdk.errors import ConformanceError
from molplat_sdk.suite import PluginConformance, applies_to

__version__ = "0.1.0"
__all__ = ["ConformanceError", "PluginConformance", "applies_to", "no_network"]
