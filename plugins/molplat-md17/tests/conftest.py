"""One small generated trajectory per test session, in a temporary cache shared by the tests."""
from __future__ import annotations

from pathlib import Path

import pytest

#: generation settings small enough for tests (~100 GFN2-xTB steps of ethanol, about a second)
TINY = {"frames": 40, "interval": 2, "equilibration": 10, "progress": False}


@pytest.fixture(scope="session")
def tiny() -> dict:
    return dict(TINY)


@pytest.fixture(scope="session")
def md17_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from molplat_md17.dataset import MD17

    folder = tmp_path_factory.mktemp("molplat-cache")
    MD17(cache_dir=str(folder), **TINY)
    return folder


@pytest.fixture(scope="session")
def dev(md17_cache: Path):
    from molplat_md17.dataset import MD17

    return MD17(cache_dir=str(md17_cache), **TINY)
