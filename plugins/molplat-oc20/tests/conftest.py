"""Shared fixtures: one small EMT dev set per session, generated with sockets disabled (no network)."""
from __future__ import annotations

from pathlib import Path

import pytest
from molplat_sdk import no_network

#: a small dev set: a few seconds to relax, enough for every check
SMALL = {"systems": 8, "max_steps": 12, "seed": 0}


@pytest.fixture(scope="session")
def small() -> dict:
    return dict(SMALL)


@pytest.fixture(scope="session")
def oc20_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from molplat_oc20.datasets import OC20S2EF

    folder = tmp_path_factory.mktemp("molplat-cache")

    with no_network("the OC20 dev set"):
        OC20S2EF(cache_dir=str(folder), **SMALL)
    return folder


@pytest.fixture(scope="session")
def s2ef(oc20_cache: Path):
    from molplat_oc20.datasets import OC20S2EF

    return OC20S2EF(cache_dir=str(oc20_cache), **SMALL)


@pytest.fixture(scope="session")
def is2re(oc20_cache: Path):
    from molplat_oc20.datasets import OC20IS2RE

    return OC20IS2RE(cache_dir=str(oc20_cache), **SMALL)
