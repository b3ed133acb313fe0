"""The QM9 dataset passes the molplat-sdk conformance suite, on the session's cached dev set."""
from pathlib import Path

import pytest

from molplat_sdk import PluginConformance


class TestQM9Conformance(PluginConformance):
    plugin = "molplat-qm9"

    @pytest.fixture
    def molplat_settings(self, qm9_cache: Path) -> dict:
        return {"qm9": {"cache_dir": str(qm9_cache)}}
