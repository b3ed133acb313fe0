"""One read of QM9's SMILES per test session, into a temporary cache the tests share."""
from __future__ import annotations

from pathlib import Path

import pytest

import torch

torch.set_num_threads(1)  # tiny tensors: a second thread only waits on a shared machine


@pytest.fixture(scope="session")
def smiles_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding QM9's parsed SMILES table and a 300-molecule graph-mode draw."""
    from molplat_smiles.dataset import SmilesCSV

    folder = tmp_path_factory.mktemp("molplat-cache")
    SmilesCSV(size=300, cache_dir=str(folder))
    return folder
