"""One tiny GFN2-xTB dev set per session (W3 and W4, two clusters each, three frames), generated with
sockets disabled to prove it needs no network."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from molplat_sdk import no_network

# the test modules share helpers from hydronet_files.py; under --import-mode=importlib (the repository's
# setting) a test folder is not on sys.path by itself
sys.path.insert(0, str(Path(__file__).parent))
from hydronet_files import TINY  # noqa: E402


@pytest.fixture(scope="session")
def hydronet_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from molplat_hydronet.dataset import HydroNet

    folder = tmp_path_factory.mktemp("molplat-cache")

    with no_network("the hydronet dev set"):
        HydroNet(**TINY, cache_dir=str(folder), progress=False)
    return folder


@pytest.fixture(scope="session")
def dev(hydronet_cache: Path):
    from molplat_hydronet.dataset import HydroNet

    return HydroNet(**TINY, cache_dir=str(hydronet_cache))
