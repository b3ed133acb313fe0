"""Both datasets pass the molplat-sdk conformance suite on a small cached EMT dev set."""
from pathlib import Path

import pytest

from molplat_sdk import PluginConformance


class TestOC20Conformance(PluginConformance):
    plugin = "molplat-oc20"

    @pytest.fixture
    def molplat_settings(self, oc20_cache: Path, small: dict) -> dict:
        settings = {"cache_dir": str(oc20_cache), **small}
        return {"oc20_s2ef": dict(settings), "oc20_is2re": dict(settings)}
