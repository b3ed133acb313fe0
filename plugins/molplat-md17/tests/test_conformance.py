"""The md17 dataset passes the molplat-sdk conformance suite, on the session's generated ethanol set."""
from pathlib import Path

import pytest

from molplat_sdk import PluginConformance


class TestMD17Conformance(PluginConformance):
    plugin = "molplat-md17"

    @pytest.fixture
    def molplat_settings(self, md17_cache: Path, tiny: dict) -> dict:
        return {"md17": {"cache_dir": str(md17_cache), **tiny}}
