"""The hydronet dataset passes the molplat-sdk conformance suite on the tiny GFN2-xTB dev set."""
from pathlib import Path

import pytest
from hydronet_files import TINY

from molplat_sdk import PluginConformance


class TestHydroNetConformance(PluginConformance):
    plugin = "molplat-hydronet"

    @pytest.fixture
    def molplat_settings(self, hydronet_cache: Path) -> dict:
        return {"hydronet": {**TINY, "cache_dir": str(hydronet_cache)}}
