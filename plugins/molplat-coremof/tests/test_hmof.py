"""The hmof dataset on a small folder laid out like an hMOF download."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

import molplat
from molplat.errors import MolplatError, ValidationError
from molplat_coremof import plugin
from molplat_coremof.hmof import HMOF

CRYSTALS = {
    "hMOF-1": bulk("Cu", "fcc", a=3.6, cubic=True),
    "hMOF-2": bulk("NaCl", "rocksalt", a=5.64),
    "hMOF-3": bulk("Si", "diamond", a=5.43, cubic=True),
    "hMOF-4": bulk("Mg", "hcp", a=3.21, c=5.21),
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "cifs").mkdir()
    for name, atoms in CRYSTALS.items():
        atoms.write(tmp_path / "cifs" / f"{name}.cif", format="cif")
    rows = ["id,co2_working_capacity,void_fraction,topology"]
    rows += [f"{name},{0.5 * i:.2f},{0.1 * i:.2f},pcu" for i, name in enumerate(CRYSTALS, start=1)]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_reads_cifs_and_numeric_label_columns(root: Path) -> None:
    ds = HMOF(root=str(root), cif_dir="cifs")
    assert len(ds) == 4 and ds.ids == list(CRYSTALS)
    assert HMOF.targets == {}  # the class knows nothing; the instance knows the CSV's columns
    assert list(ds.targets) == ["co2_working_capacity", "void_fraction"]  # 'topology' is not numeric
    assert ds.targets["co2_working_capacity"].units == "mol/kg"
    assert ds.targets["void_fraction"].units == "unspecified"
    assert ds.default_target == "co2_working_capacity"
    for i, (name, atoms) in enumerate(CRYSTALS.items()):
        s = ds[i]
        assert s.id == name and s.periodic and len(s) == len(atoms)
        np.testing.assert_allclose(s.to_atoms().cell.cellpar(), atoms.cell.cellpar(), atol=1e-4)
        assert sorted(s.numbers.tolist()) == sorted(atoms.numbers.tolist())
        assert s.targets == pytest.approx({"co2_working_capacity": 0.5 * (i + 1), "void_fraction": 0.1 * (i + 1)})
        assert all(np.isfinite(v) for v in s.targets.values())
    assert ds[-1].id == "hMOF-4" and ds[1] is ds[1]  # parsed once, then kept
    assert "Wilmer" in ds.citation


def test_units_setting_and_the_spec_factory(root: Path) -> None:
    (spec,) = [s for s in plugin.molplat_datasets() if s.name == "hmof"]
    ds = spec.build(root=str(root), cif_dir="cifs", units="mmol/g")
    assert {t.units for t in ds.targets.values()} == {"mmol/g"}
    assert len(ds.splits(seed=0)["train"]) == 3


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"root: folder .*nowhere.* does not exist; set root"):
        HMOF(root=str(tmp_path / "nowhere"))
    with pytest.raises(ValidationError, match="root: not set"):
        HMOF(root="")


def test_missing_labels_file(root: Path) -> None:
    with pytest.raises(ValidationError, match=r"labels: .*targets\.csv.* not found; .*'id' column"):
        HMOF(root=str(root), labels="targets.csv", cif_dir="cifs")


def test_missing_id_column(root: Path) -> None:
    with pytest.raises(ValidationError, match=r"id_column: .*labels\.csv has no column 'name' \(columns: id, "):
        HMOF(root=str(root), cif_dir="cifs", id_column="name")


def test_missing_cif_names_the_file_and_the_fix(root: Path) -> None:
    (root / "cifs" / "hMOF-3.cif").unlink()
    with pytest.raises(ValidationError, match=r"cif_dir: 1 CIF file.*missing from .*cifs: hMOF-3\.cif; download"):
        HMOF(root=str(root), cif_dir="cifs")
    with pytest.raises(ValidationError, match=r"cif_dir: 4 CIF file"):
        HMOF(root=str(root))  # CIFs are not in root itself
    with pytest.raises(ValidationError, match=r"cif_dir: folder .*elsewhere.* does not exist"):
        HMOF(root=str(root), cif_dir="elsewhere")


def test_repeated_ids_and_no_numeric_column(root: Path) -> None:
    (root / "dup.csv").write_text("id,y\nhMOF-1,1\nhMOF-1,2\n")
    with pytest.raises(ValidationError, match="repeated ids"):
        HMOF(root=str(root), labels="dup.csv", cif_dir="cifs")
    (root / "text.csv").write_text("id,topology\nhMOF-1,pcu\n")
    with pytest.raises(ValidationError, match="no numeric label column"):
        HMOF(root=str(root), labels="text.csv", cif_dir="cifs")


def test_broken_cif_fails_on_access_naming_the_file(root: Path) -> None:
    (root / "cifs" / "hMOF-2.cif").write_text("data_broken\nnothing here\n")
    ds = HMOF(root=str(root), cif_dir="cifs")
    assert len(ds[0]) == 4
    with pytest.raises(MolplatError, match=r"hMOF-2\.cif: no atom-site table; fix the CIF or remove row"):
        ds[1]


# -- root is a path setting: resolved against the pipeline file, checked by `molplat validate` ----------
def _pipeline(folder: Path, root: str) -> Path:
    path = folder / "hmof.toml"
    path.write_text(f"""
[dataset]
name = "hmof"
root = "{root}"
cif_dir = "cifs"
target = "co2_working_capacity"

[representation]
name = "adjacency_list"
cutoff = 4.0

[model]
name = "schnet"
cutoff = 4.0
""")
    return path


def _validate(pipeline: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "molplat.cli", "validate", str(pipeline)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_validate_refuses_a_missing_root_naming_the_resolved_folder(tmp_path: Path) -> None:
    pytest.importorskip("molplat_schnet")
    proc = _validate(_pipeline(tmp_path, "not-downloaded"), cwd=Path("/"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"[dataset] root: {tmp_path / 'not-downloaded'} does not exist" in proc.stderr, proc.stderr


def test_a_relative_root_is_read_from_the_pipeline_files_folder(root: Path) -> None:
    pytest.importorskip("molplat_schnet")
    configs = root / "configs"
    configs.mkdir()
    pipeline = _pipeline(configs, "..")
    proc = _validate(pipeline, cwd=Path("/"))  # anywhere but the pipeline's folder
    assert proc.returncode == 0, proc.stderr
    loaded = molplat.load_pipeline(pipeline)
    settings = loaded.components["dataset"].settings
    assert settings["root"] == str(root.resolve())
    dataset = loaded.components["dataset"].build()
    assert len(dataset) == 4 and dataset[0].id == "hMOF-1"
