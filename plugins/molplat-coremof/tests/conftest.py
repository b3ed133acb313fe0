"""Shared fixtures: one dev-set build per session, with sockets disabled to prove it needs no network."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def coremof_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from molplat_coremof.coremof import CoREMOF

    folder = tmp_path_factory.mktemp("molplat-cache")

    def no_network(*_: object, **__: object) -> None:
        raise AssertionError("the coremof dev set must load without network access")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", no_network)
        mp.setattr(socket, "create_connection", no_network)
        CoREMOF(cache_dir=str(folder))
    return folder


@pytest.fixture(scope="session")
def dev(coremof_cache: Path):
    from molplat_coremof.coremof import CoREMOF

    return CoREMOF(cache_dir=str(coremof_cache))
