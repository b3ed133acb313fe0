"""Shared fixtures: one small EMT dev set per session, generated with sockets disabled (no network)."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

#: a small dev set: a few seconds to relax, enough for every check
SMALL = {"systems": 8, "max_steps": 12, "seed": 0}


@pytest.fixture(scope="session")
def small() -> dict:
    return dict(SMALL)


@pytest.fixture(scope="session")
def oc20_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from molplat_oc20.datasets import OC20S2EF

    folder = tmp_path_factory.mktemp("molplat-cache")

    def no_network(*_: object, **__: object) -> None:
        raise AssertionError("the OC20 dev set must be made without network access")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", no_network)
        mp.setattr(socket, "create_connection", no_network)
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
