"""Both datasets pass the molplat-sdk conformance suite: the CoRE MOF dev set, and hmof on a
small folder laid out like an hMOF download."""
from pathlib import Path

import pytest
from ase.build import bulk

from molplat_sdk import PluginConformance


@pytest.fixture(scope="module")
def hmof_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hmof")
    crystals = {"hMOF-1": bulk("Cu", "fcc", a=3.6, cubic=True), "hMOF-2": bulk("NaCl", "rocksalt", a=5.64),
                "hMOF-3": bulk("Si", "diamond", a=5.43, cubic=True), "hMOF-4": bulk("Mg", "hcp", a=3.21, c=5.21)}
    rows = ["id,co2_working_capacity,void_fraction"]
    for i, (name, atoms) in enumerate(crystals.items(), start=1):
        atoms.write(root / f"{name}.cif", format="cif")
        rows.append(f"{name},{0.5 * i:.2f},{0.1 * i:.2f}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


class TestCoreMOFConformance(PluginConformance):
    plugin = "molplat-coremof"

    @pytest.fixture
    def molplat_settings(self, coremof_cache: Path, hmof_root: Path) -> dict:
        return {"coremof": {"cache_dir": str(coremof_cache)}, "hmof": {"root": str(hmof_root)}}
