"""molplat-ase passes the molplat-sdk conformance suite: each simulator runs on the SDK's toy run."""
from pathlib import Path

import pytest
from molplat_sdk import PluginConformance

QUICK = {"steps": 6, "interval": 2, "progress": False}


class TestASEConformance(PluginConformance):
    plugin = "molplat-ase"
    settings = {"nve": QUICK, "nvt_berendsen": QUICK, "nvt_langevin": QUICK,
                "relax": {"steps": 4, "fmax": 1e-4, "progress": False}}

    @pytest.fixture
    def molplat_settings(self, tmp_path: Path) -> dict:
        """npt needs a periodic cell: a small copper crystal written for the test."""
        import ase.io
        from ase.build import bulk

        path = tmp_path / "cu.extxyz"
        ase.io.write(path, bulk("Cu", "fcc", a=3.6, cubic=True), format="extxyz")
        return {**self.settings, "npt": {**QUICK, "structures_file": str(path)}}
