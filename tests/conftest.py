"""Shared fixtures: small real structures built with ASE."""
from __future__ import annotations

import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk, molecule

from molplat.structure import Structure


@pytest.fixture
def water() -> Structure:
    return Structure.from_atoms(molecule("H2O"), id="water")


@pytest.fixture
def ethanol() -> Structure:
    return Structure.from_atoms(molecule("CH3CH2OH"), id="ethanol")


@pytest.fixture
def silicon() -> Structure:
    atoms = bulk("Si", "diamond", a=5.43)  # primitive cell: many periodic images within 5 Å
    atoms.rattle(0.05, seed=1)
    return Structure.from_atoms(atoms, id="si")


@pytest.fixture
def slab() -> Structure:
    """Periodic in x and y only, with a skewed cell."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.set_cell(atoms.cell.array + np.array([[0, 0, 0], [0.7, 0, 0], [0, 0, 6.0]]), scale_atoms=False)
    atoms.set_pbc([True, True, False])
    atoms.rattle(0.05, seed=2)
    return Structure.from_atoms(atoms, id="slab")


def _overlay_venv(folder: Path) -> Path:
    """A venv without pip whose site-packages also reads this interpreter's, .pth files included
    (so editable installs such as molplat's resolve); returns its python.

    Tests install into it, never into the project's own .venv.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    host = sysconfig.get_paths()["purelib"]
    Path(site, "molplat-host.pth").write_text(f"import site; site.addsitedir({host!r})\n")
    return python


@pytest.fixture(scope="session")
def overlay_venv() -> Callable[[Path], Path]:
    """Makes a throwaway venv that sees this environment's packages: ``overlay_venv(folder) -> python``."""
    return _overlay_venv


FIXTURES = Path(__file__).parent / "plugin_fixtures"


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """The fixture plugins under plugin_fixtures/, pip-installed into a private folder.

    A child process with that folder on PYTHONPATH discovers them through importlib
    metadata exactly as it would in site-packages; this process never sees them.
    """
    target = tmp_path_factory.mktemp("site")
    dists = sorted(str(p) for p in FIXTURES.iterdir() if (p / "pyproject.toml").exists())
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), *dists], check=True)
    return target


def run_molplat(*args: str, site: Path | None = None, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """``python -m molplat.cli ARGS`` in a child process, with the fixture plugins when ``site`` is given."""
    import os

    environment = dict(os.environ, **env)
    if site is not None:
        environment["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-m", "molplat.cli", *args], capture_output=True, text=True,
                          env=environment, cwd=cwd)


@pytest.fixture(scope="session")
def molplat_cli() -> Callable[..., subprocess.CompletedProcess]:
    """``molplat_cli(*args, site=None, cwd=None, **env)`` runs the CLI in a child process."""
    return run_molplat
