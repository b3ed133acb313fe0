"""Both datasets pass the molplat-sdk conformance suite on a tiny cached EMT dev set.

Tiny on purpose: the suite's overlap check builds a 0.1 Å neighbour list per structure, and
vesin takes about a second for that on a slab periodic in x and y only (30 ms fully periodic;
the 4-5 Å lists of training take under a millisecond)."""
from pathlib import Path

import pytest

from molplat_sdk import PluginConformance


class TestOC20Conformance(PluginConformance):
    plugin = "molplat-oc20"

    @pytest.fixture
    def molplat_settings(self, oc20_cache: Path) -> dict:
        settings = {"cache_dir": str(oc20_cache), "systems": 2, "max_steps": 3}
        return {"oc20_s2ef": dict(settings), "oc20_is2re": dict(settings)}
