"""oc20_is2re on converted files: extxyz or an ASE database of initial structures with the relaxed
energy in info (what the README's conversion of the published LMDB writes); LMDBs are refused
unopened."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from ase.build import add_adsorbate, fcc100
from ase.constraints import FixAtoms

from molplat.errors import ValidationError
from molplat_oc20.datasets import OC20IS2RE


def initial(sid: int, metal: str, relaxed: float, key: str = "y_relaxed"):
    """An initial structure as the README's conversion script writes it."""
    atoms = fcc100(metal, size=(2, 2, 3), vacuum=6.0)
    fixed = atoms.get_tags() == 3
    atoms.set_tags(np.where(fixed, 0, 1))
    add_adsorbate(atoms, "O", 1.6, "hollow")
    atoms.set_tags(np.r_[atoms.get_tags()[:-1], 2])
    atoms.pbc = True
    atoms.set_constraint(FixAtoms(mask=np.r_[fixed, False]))
    atoms.info.clear()  # ase.build's adsorbate_info is no label
    atoms.info.update({"sid": sid, key: relaxed})
    return atoms


def test_extxyz_with_y_relaxed(tmp_path: Path) -> None:
    from ase.io import write

    write(tmp_path / "train.extxyz", [initial(2181546, "Cu", -1.25), initial(77, "Pt", 0.5)], format="extxyz")
    ds = OC20IS2RE(path=str(tmp_path / "train.extxyz"), cache_dir=str(tmp_path / "cache"))
    assert ds.ids == ["random2181546", "random77"]
    assert [ds[i].targets["relaxed_energy"] for i in range(2)] == pytest.approx([-1.25, 0.5])
    assert ds[0].forces is None and ds[0].pbc.all()
    written = initial(2181546, "Cu", -1.25)
    assert ds.tags(0).tolist() == written.get_tags().tolist() and sorted(set(ds.tags(0))) == [0, 1, 2]
    assert ds.fixed(0).tolist() == (written.get_tags() == 0).tolist() and ds.fixed(0).sum() == 4


def test_ase_database_with_relaxed_energy_and_a_custom_key(tmp_path: Path) -> None:
    import ase.db

    with ase.db.connect(tmp_path / "val.db") as db:
        for k, metal in enumerate(("Cu", "Au", "Ni")):
            atoms = initial(k, metal, 0.1 * k, key="unused")
            relaxed = atoms.info.pop("unused")
            atoms.info.pop("sid")
            db.write(atoms, relaxed_energy=relaxed, e_ads=relaxed - 1)
    ds = OC20IS2RE(path=str(tmp_path), pattern="*.db", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 3 and ds.ids[0] == "val.db:0"
    assert ds[2].targets["relaxed_energy"] == pytest.approx(0.2)
    assert ds.fixed(1).sum() == 4 and ds.tags(1)[-1] == 2
    custom = OC20IS2RE(path=str(tmp_path), pattern="*.db", energy_key="e_ads", cache_dir=str(tmp_path / "c2"))
    assert custom[2].targets["relaxed_energy"] == pytest.approx(-0.8)


def test_missing_energy_key(tmp_path: Path) -> None:
    from ase.io import write

    write(tmp_path / "a.extxyz", [initial(1, "Cu", -1.0, key="y_init")], format="extxyz")
    with pytest.raises(ValidationError, match=r"energy_key: frame 0 of .*a\.extxyz has no 'y_relaxed' or "
                                              r"'relaxed_energy' in info \(info keys: sid, y_init\)"):
        OC20IS2RE(path=str(tmp_path / "a.extxyz"), cache_dir=str(tmp_path / "cache"))


class _Payload:
    """Unpickling this would create a file: proof that the LMDB was never read."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_an_lmdb_is_refused_without_being_opened(tmp_path: Path) -> None:
    witness = tmp_path / "unpickled"
    lmdb = tmp_path / "data.lmdb"
    lmdb.write_bytes(pickle.dumps(_Payload(witness)))
    for path in (lmdb, tmp_path):
        with pytest.raises(ValidationError, match=r"LMDB.* pickled objects, which molplat never loads; convert the "
                                                  r"LMDB to extxyz with the short fairchem script in the molplat-oc20 "
                                                  r"README"):
            OC20IS2RE(path=str(path), cache_dir=str(tmp_path / "cache"))
    assert not witness.exists()


def test_relative_path_in_a_pipeline(tmp_path: Path) -> None:
    """path is a path setting: resolved against the pipeline file's folder."""
    pytest.importorskip("molplat_schnet")
    from ase.io import write

    import molplat

    data = tmp_path / "data"
    data.mkdir()
    write(data / "is2re.extxyz", [initial(k, "Cu", -0.1 * k) for k in range(6)], format="extxyz")
    (tmp_path / "p.toml").write_text("""
[dataset]
name = "oc20_is2re"
path = "data/is2re.extxyz"
cache_dir = "cache"
[representation]
name = "adjacency_list"
cutoff = 4.0
[model]
name = "schnet"
cutoff = 4.0
""")
    pipeline = molplat.load_pipeline(tmp_path / "p.toml")
    dataset = pipeline.components["dataset"].build()
    assert len(dataset) == 6 and (tmp_path / "cache" / "oc20").is_dir()
