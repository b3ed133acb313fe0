"""Reading the published layouts: tiny files written exactly as MD17 (sgdml.org) and rMD17 (figshare) are.

MD17 (md17_ethanol.npz): z uint8 [atoms], R float64 [frames, atoms, 3] Å, E float64 [frames, 1]
kcal/mol, F float64 [frames, atoms, 3] kcal/mol/Å, and 0-d unicode strings name, theory, type, md5.
rMD17 (rmd17/npz_data/rmd17_ethanol.npz): nuclear_charges int64 [atoms], coords, energies
[frames], forces, old_indices int64, old_energies, old_forces, in the same units.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from ase import units as ase_units

import molplat
from molplat.errors import ValidationError
from molplat_md17 import units
from molplat_md17.dataset import MD17
from molplat_md17.layout import read_npz

ETHANOL_Z = np.array([6, 6, 8, 1, 1, 1, 1, 1, 1], dtype=np.uint8)
ETHANOL_R = np.array([[0.0072, -0.5687, 0.0], [-1.2854, 0.2499, 0.0], [1.1304, 0.3147, 0.0],
                      [0.0392, -1.1972, 0.8900], [0.0392, -1.1972, -0.8900], [-1.3175, 0.8784, 0.8875],
                      [-1.3175, 0.8784, -0.8875], [-2.1422, -0.4239, 0.0], [1.9857, -0.1365, 0.0]])
FRAMES = 5


def _frames(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    R = ETHANOL_R + rng.normal(0.0, 0.03, (FRAMES, 9, 3))
    E = -97000.0 + rng.normal(0.0, 3.0, FRAMES)  # kcal/mol, MD17 ethanol's scale
    F = rng.normal(0.0, 30.0, (FRAMES, 9, 3))  # kcal/mol/Å
    return R, E, F


def write_md17(path: Path, **override) -> dict[str, np.ndarray]:
    R, E, F = _frames()
    arrays = {"E": E.reshape(-1, 1), "name": np.array("ethanol"), "F": F, "theory": np.array("unknown"), "R": R,
              "z": ETHANOL_Z, "type": np.array("d"), "md5": np.array("3ba8cf6e2d9f5e4a0e6e1c4f3b2f0c1d")}
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez_compressed(path, **arrays)
    return arrays


def write_rmd17(path: Path, **override) -> dict[str, np.ndarray]:
    R, E, F = _frames(1)
    arrays = {"nuclear_charges": ETHANOL_Z.astype(np.int64), "coords": R, "energies": E, "forces": F,
              "old_indices": np.array([17, 4, 99, 1203, 5], dtype=np.int64), "old_energies": E + 0.5,
              "old_forces": F + 1.0}
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return arrays


# -- units ---------------------------------------------------------------------------------------
def test_unit_constants() -> None:
    assert units.KCAL_PER_MOL_EV == pytest.approx(0.0433641, abs=1e-7)
    assert units.KCAL_PER_MOL_EV == pytest.approx(ase_units.kcal / ase_units.mol, rel=1e-6)
    assert units.HARTREE_EV == pytest.approx(27.211386, abs=1e-6)
    assert units.BOHR_ANGSTROM == pytest.approx(0.529177, abs=1e-6)
    assert units.KJ_PER_MOL_EV * 4.184 == pytest.approx(units.KCAL_PER_MOL_EV, rel=1e-12)


# -- the published layouts -----------------------------------------------------------------------
def test_md17_layout_is_read_and_converted_from_kcal_per_mol(tmp_path: Path) -> None:
    path = tmp_path / "md17_ethanol.npz"
    raw = write_md17(path)
    t = read_npz(path)
    assert t.layout == "md17" and t.name == "ethanol" and t.theory == "unknown"
    np.testing.assert_array_equal(t.numbers, [6, 6, 8, 1, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(t.positions, raw["R"])  # already Å
    np.testing.assert_allclose(t.energies, raw["E"][:, 0] * 0.0433641, rtol=1e-6)
    np.testing.assert_allclose(t.forces, raw["F"] * 0.0433641, rtol=1e-6)
    assert -4300 < t.energies.min() < t.energies.max() < -4100  # eV, not kcal/mol


def test_md17_energies_may_be_one_dimensional(tmp_path: Path) -> None:
    path = tmp_path / "md17_ethanol.npz"
    raw = write_md17(path, E=_frames()[1])
    np.testing.assert_allclose(read_npz(path).energies, raw["E"] * units.KCAL_PER_MOL_EV)


def test_rmd17_layout_is_read_and_converted(tmp_path: Path) -> None:
    path = tmp_path / "rmd17_ethanol.npz"
    raw = write_rmd17(path)
    t = read_npz(path)
    assert t.layout == "rmd17" and t.name == "rmd17_ethanol" and "PBE/def2-SVP" in t.theory
    np.testing.assert_allclose(t.positions, raw["coords"])
    np.testing.assert_allclose(t.energies, raw["energies"] * units.KCAL_PER_MOL_EV)  # not old_energies
    np.testing.assert_allclose(t.forces, raw["forces"] * units.KCAL_PER_MOL_EV)


def test_sgdml_unit_keys_are_honoured(tmp_path: Path) -> None:
    path = tmp_path / "hartree.npz"
    raw = write_md17(path, e_unit=np.array("Ha"), r_unit=np.array("bohr"))
    t = read_npz(path)
    np.testing.assert_allclose(t.positions, raw["R"] * units.BOHR_ANGSTROM)
    np.testing.assert_allclose(t.energies, raw["E"][:, 0] * units.HARTREE_EV)
    np.testing.assert_allclose(t.forces, raw["F"] * units.HARTREE_EV / units.BOHR_ANGSTROM)
    write_md17(path, e_unit=np.array("eV"), r_unit=np.array("Ang"))
    np.testing.assert_allclose(read_npz(path).energies, raw["E"][:, 0])


def test_the_dataset_gives_frames_with_energy_and_forces(tmp_path: Path) -> None:
    path = tmp_path / "md17_ethanol.npz"
    raw = write_md17(path)
    ds = MD17(path=str(path))
    assert len(ds) == FRAMES and ds.layout == "md17"
    assert ds.ids == [f"ethanol:{i}" for i in range(FRAMES)]
    s = ds[2]
    assert s.targets == {"energy": pytest.approx(raw["E"][2, 0] * units.KCAL_PER_MOL_EV)}
    np.testing.assert_allclose(s.forces, raw["F"][2] * units.KCAL_PER_MOL_EV)
    np.testing.assert_allclose(s.positions, raw["R"][2])
    assert not s.periodic and s.cell is None
    assert MD17.targets["energy"].extensive and MD17.targets["energy"].units == "eV"
    assert ds.fingerprint().startswith("md17_ethanol.npz:")


def test_size_draws_frames_with_the_seed(tmp_path: Path) -> None:
    path = tmp_path / "rmd17_ethanol.npz"
    write_rmd17(path)
    a, b = MD17(path=str(path), size=3), MD17(path=str(path), size=3)
    assert len(a) == 3 and a.ids == b.ids
    frames = [int(i.split(":")[1]) for i in a.ids]
    assert frames == sorted(frames) and len(set(frames)) == 3  # ids keep the file's frame numbers
    full = MD17(path=str(path))
    np.testing.assert_array_equal(a[1].positions, full[frames[1]].positions)
    with pytest.raises(ValidationError, match="size"):
        MD17(path=str(path), size=0)


def test_a_relative_path_is_read_from_the_pipeline_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    write_md17(tmp_path / "data" / "md17_ethanol.npz")
    (tmp_path / "p.toml").write_text('[dataset]\nname = "md17"\npath = "data/md17_ethanol.npz"\n'
                                     '[representation]\nname = "adjacency_list"\n[model]\nname = "schnet"\n'
                                     '[trainer]\ntask = "energy_forces"\n')
    pytest.importorskip("molplat_schnet")
    pipeline = molplat.load_pipeline(tmp_path / "p.toml")
    assert pipeline.components["dataset"].settings["path"] == str(tmp_path / "data" / "md17_ethanol.npz")
    assert len(pipeline.components["dataset"].build()) == FRAMES


# -- bad input: one clear line each --------------------------------------------------------------
def _refused(path: Path, *fragments: str) -> str:
    with pytest.raises(ValidationError) as caught:
        read_npz(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_file(tmp_path: Path) -> None:
    _refused(tmp_path / "md17_ethanol.npz", "does not exist", "set path")


def test_not_an_npz_file(tmp_path: Path) -> None:
    path = tmp_path / "md17_ethanol.npz"
    path.write_bytes("énergie\n".encode("latin-1") + b"\xff\xfe\x00 not numpy")  # text, and not UTF-8 either
    _refused(path, "is not a NumPy .npz archive")
    path.write_bytes(b"")
    _refused(path, "cannot be opened", "download it again")
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(path)
    _refused(path, "single array (.npy)")


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "md17_ethanol.npz"
    write_md17(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _refused(path, "truncated or damaged", "download it again")


def test_damaged_member(tmp_path: Path) -> None:
    path = tmp_path / "md17_ethanol.npz"
    write_md17(path)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("F.npy")
    data = bytearray(path.read_bytes())
    data[info.header_offset + 100] ^= 0xFF  # inside F's compressed bytes
    path.write_bytes(bytes(data))
    _refused(path, "'F'", "download it again")


def test_missing_key_names_the_key_and_the_layout(tmp_path: Path) -> None:
    path = tmp_path / "md17_ethanol.npz"
    write_md17(path, E=None)
    _refused(path, "MD17 (sgdml.org)", "lacks key(s) 'E'", "sgdml.org")
    path = tmp_path / "rmd17_ethanol.npz"
    write_rmd17(path, forces=None)
    _refused(path, "rMD17", "lacks key(s) 'forces'", "figshare")
    np.savez(path, positions=np.zeros((2, 3, 3)))
    _refused(path, "neither an MD17 file", "its keys: positions")


def test_wrong_shapes(tmp_path: Path) -> None:
    path = tmp_path / "md17_ethanol.npz"
    write_md17(path, F=np.zeros((FRAMES, 8, 3)))
    _refused(path, "key 'F'", "[5, 8, 3]", "[5, 9, 3]")
    write_md17(path, E=np.zeros((FRAMES + 1, 1)))
    _refused(path, "key 'E'", "energies are [5]")
    write_md17(path, z=np.array([6.0, 6.0, 8.0]))
    _refused(path, "key 'z'", "atomic numbers")
    write_md17(path, z=np.array([6, 6, 0, 1, 1, 1, 1, 1, 1]))
    _refused(path, "key 'z'", "[0]")
    write_md17(path, R=np.zeros((0, 9, 3)), E=np.zeros((0, 1)), F=np.zeros((0, 9, 3)))
    _refused(path, "no frames")


def test_nan_values_name_the_frame(tmp_path: Path) -> None:
    path = tmp_path / "rmd17_ethanol.npz"
    E = _frames(1)[1]
    E[3] = np.nan
    write_rmd17(path, energies=E)
    _refused(path, "key 'energies'", "NaN or infinite", "frame 3")
    R = _frames(1)[0]
    R[1, 4, 2] = np.inf
    write_rmd17(path, coords=R)
    _refused(path, "key 'coords'", "first: frame 1")


def test_pickled_objects_are_refused_never_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    path = tmp_path / "md17_ethanol.npz"
    write_md17(path, name=np.array([{"evil": 1}], dtype=object))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("a data file was unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("a data file was unpickled"))
    _refused(path, "key 'name'", "Python objects", "never unpickles")


def test_text_keys_must_be_utf8_and_units_known(tmp_path: Path) -> None:
    path = tmp_path / "md17_ethanol.npz"
    write_md17(path, name=np.array(b"\xe9thanol"))
    _refused(path, "key 'name'", "not UTF-8")
    write_md17(path, name=np.array("éthanol".encode()))
    assert read_npz(path).name == "éthanol"
    write_md17(path, e_unit=np.array("furlongs"))
    _refused(path, "key 'e_unit'", "'furlongs'", "kcal/mol")
    write_md17(path, lattice=np.eye(3) * 10)
    _refused(path, "'lattice'", "atoms_file")
