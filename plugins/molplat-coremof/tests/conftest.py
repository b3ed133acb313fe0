"""Shared fixtures: one dev-set build per session, with sockets disabled to prove it needs no network."""
from __future__ import annotations

from pathlib import Path

import pytest
from molplat_sdk import no_network


@pytest.fixture(scope="session")
def coremof_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from molplat_coremof.coremof import CoREMOF

    folder = tmp_path_factory.mktemp("molplat-cache")

    with no_network("the coremof dev set"):
        CoREMOF(cache_dir=str(folder))
    return folder


@pytest.fixture(scope="session")
def dev(coremof_cache: Path):
    from molplat_coremof.coremof import CoREMOF

    return CoREMOF(cache_dir=str(coremof_cache))
