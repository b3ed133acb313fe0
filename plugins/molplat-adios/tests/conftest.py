"""One parse of QM9 per test session, into a temporary cache shared by the tests."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def qm9_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from molplat_qm9.dataset import QM9

    folder = tmp_path_factory.mktemp("molplat-cache")
    QM9(cache_dir=str(folder))
    return folder
