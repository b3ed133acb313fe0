"""Session fixtures: EMT copper frames and one small SchNet trained on their energies and forces.

Training happens once per session (about 10 s on one core); tests copy the run's context so
each writes into its own run directory.
"""
from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# the repository runs pytest with --import-mode=importlib: put this folder on sys.path for ase_test_helpers
sys.path.insert(0, str(Path(__file__).parent))

from ase_test_helpers import LATTICE, copper_pipeline, emt_copper_frames  # noqa: E402


@pytest.fixture(scope="session")
def copper_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import ase.io

    path = tmp_path_factory.mktemp("cu-data") / "cu.extxyz"
    ase.io.write(path, emt_copper_frames(), format="extxyz")
    return path


@pytest.fixture(scope="session")
def copper_context(copper_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The RunContext a simulator receives after a SchNet trained on EMT copper energies and forces."""
    import torch

    import molplat
    from molplat.predict import TrainedModel
    from molplat.results import RunContext

    torch.set_num_threads(1)
    pipeline = molplat.load_pipeline(copper_pipeline(copper_data, tmp_path_factory.mktemp("cu-runs")))
    summary = pipeline.run(echo=lambda message: None)
    run_dir = Path(summary["run_dir"])
    dataset = pipeline.components["dataset"].build()
    indices = dataset.splits(pipeline.dataset_common["split"], pipeline.dataset_common["split_seed"])
    splits = {name: [dataset[int(i)] for i in idx] for name, idx in indices.items()}
    return RunContext(pipeline, run_dir, TrainedModel.from_run(run_dir, pipeline=pipeline), splits, summary)


@pytest.fixture
def context(copper_context: Any, tmp_path: Path) -> Any:
    """The trained copper run, copied so a test writes into its own run directory."""
    run_dir = tmp_path / "run"
    shutil.copytree(copper_context.run_dir, run_dir)
    return dataclasses.replace(copper_context, run_dir=run_dir, summary=dict(copper_context.summary))


@pytest.fixture
def cu_cell_file(tmp_path: Path) -> Path:
    """A rattled 32-atom copper cell as extxyz (a structures_file)."""
    import ase.io
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.08, seed=3)
    path = tmp_path / "cu-rattled.extxyz"
    ase.io.write(path, atoms, format="extxyz")
    return path
