"""Behaviour of the qm9 dataset: selection, units, targets, per-atom charges, cache, structures."""
from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from molplat.errors import MolplatError, ValidationError
from molplat_qm9 import cache, selection, source
from molplat_qm9.dataset import DEV_SIZE, QM9
from molplat_qm9.targets import ATOM_COLUMNS, COLUMNS
from molplat_sdk.damage import CACHE_DAMAGE, CACHE_DAMAGE_IDS

HARTREE_EV = 27.211386245988
# The dev set is fixed forever: a change here means users' dev results stop being comparable.
DEV_FIRST_IDS = ["dsgdb9nsd_000343", "dsgdb9nsd_000582", "dsgdb9nsd_000765", "dsgdb9nsd_000953", "dsgdb9nsd_000990"]
DEV_IDS_SHA256 = "a60621a954bcac410a44e0bab8ff607c5e4b84b8bf6a697933f92278f3c158c5"


def _raw_row(xyz_file: str) -> dict[str, str]:
    """The untouched CSV row of one molecule, found by a plain text scan of the qm9pack files."""
    folder = source.data_dir()
    for name in source.MAIN_FILES:
        with open(folder / name, newline="") as handle:
            header = next(csv.reader([handle.readline()]))
            for line in handle:
                if line.startswith(f'"{xyz_file}"'):
                    return dict(zip(header, next(csv.reader([line]))))
    raise AssertionError(f"{xyz_file} not found in the qm9pack files")


def test_dev_set_size_and_fixed_ids(dev: QM9) -> None:
    assert len(dev) == DEV_SIZE == 1000
    assert dev.ids[:5] == DEV_FIRST_IDS
    assert hashlib.sha256(",".join(dev.ids).encode()).hexdigest() == DEV_IDS_SHA256
    assert len(set(dev.ids)) == len(dev)


def test_draw_is_deterministic_nested_and_seeded() -> None:
    ids = np.array([f"dsgdb9nsd_{i:06d}" for i in range(1, 5001)])
    a, b = selection.draw(ids, 300), selection.draw(ids, 300)
    np.testing.assert_array_equal(a, b)
    assert set(selection.draw(ids, 30)) <= set(a)  # smaller draws are subsets of larger ones
    assert not np.array_equal(selection.draw(ids, 300, seed="another"), a)
    np.testing.assert_array_equal(selection.draw(ids, 10_000), np.arange(5000))


def test_dev_set_is_a_random_draw_across_the_whole_file(dev: QM9) -> None:
    index = np.array([int(i.split("_")[1]) for i in dev.ids])
    assert not np.array_equal(index, np.arange(1, DEV_SIZE + 1))
    assert (np.diff(index) > 0).all()  # kept in file order
    # The files are sorted by molecule size: a fair draw takes about a third from each third.
    thirds = np.histogram(index, bins=3, range=(1, 133886))[0]
    assert (thirds > 250).all(), thirds
    sizes = [len(dev[i]) for i in range(len(dev))]
    assert np.mean(sizes) > 15  # the first rows are tiny molecules (CH4 has 5 atoms)


def test_energies_are_converted_from_hartree(dev: QM9) -> None:
    s = dev[3]
    raw = _raw_row(f"{s.id}.xyz")
    for name, column in [("gap", "HOMO_LUMO_gap_au"), ("homo", "HOMO_au"), ("u0", "InternalEnergy_0K_au"),
                         ("zpve", "ZPVE_au"), ("g", "GibbsFreeEnergy_298K_au")]:
        assert s.targets[name] == pytest.approx(float(raw[column]) * HARTREE_EV, rel=1e-10), name
    assert s.targets["mu"] == pytest.approx(float(raw["Dipole_debye"]))  # not an energy: unchanged
    assert s.targets["cv"] == pytest.approx(float(raw["Heatcapacity_Cv_cal_mol_K"]))
    assert 3.0 < s.targets["gap"] < 20.0  # a QM9 gap in eV, not Hartree
    coords = np.array(eval(raw["XYZ_Ang"]), dtype=float)  # noqa: S307 - test-only literal list
    np.testing.assert_allclose(s.positions, coords)
    assert len(s) == int(raw["N_atoms"])


def test_second_load_reads_the_cache_without_parsing(qm9_cache: Path, dev: QM9,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted((qm9_cache / "qm9").glob("*.npz"))
    assert [f.name.split("-")[0] for f in files] == ["dev", "full"]
    mtimes = [f.stat().st_mtime_ns for f in files]

    def boom(*_: object) -> None:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(source, "parse", boom)
    again = QM9(cache_dir=str(qm9_cache))
    assert again.ids == dev.ids
    np.testing.assert_array_equal(again[7].positions, dev[7].positions)
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    assert not list((qm9_cache / "qm9").glob("*.tmp"))  # atomic writes leave no temporaries


def test_size_draws_from_the_cached_full_set(qm9_cache: Path, dev: QM9, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "parse", lambda *_: pytest.fail("size= should reuse the full cache"))
    small = QM9(size=50, subset="full", cache_dir=str(qm9_cache))
    assert len(small) == 50
    assert set(small.ids) <= set(dev.ids)  # the same seeded ranking as the dev set
    assert (qm9_cache / "qm9").glob("size50-*.npz")


def test_settings_are_bounded_by_the_data() -> None:
    from molplat_qm9 import plugin

    (spec,) = plugin.molplat_datasets()
    assert all(s.bounded for s in spec.settings)
    assert spec.setting("size").maximum == source.N_MOLECULES
    assert spec.setting("cache_dir").type == "path" and not spec.setting("cache_dir").must_exist


def test_bad_settings() -> None:
    with pytest.raises(ValidationError, match="subset"):
        QM9(subset="tiny")
    with pytest.raises(ValidationError, match="size"):
        QM9(size=0)


def test_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MOLPLAT_CACHE", str(tmp_path))
    assert cache.cache_root(None) == tmp_path / "qm9"
    assert cache.cache_root(str(tmp_path / "x")) == tmp_path / "x" / "qm9"
    monkeypatch.delenv("MOLPLAT_CACHE")
    assert cache.cache_root(None) == Path.home() / ".cache" / "molplat" / "qm9"


def test_missing_qm9pack_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(source.metadata, "distribution", missing)
    with pytest.raises(MolplatError, match="pip install qm9pack"):
        source.data_dir()


def test_damaged_coordinates_are_reported() -> None:
    with pytest.raises(MolplatError, match="expected 6 numbers"):
        source._parse_floats(np.array(["[[0.,1.,2.],[3.,x,5.]]"]), 6, "coordinates")




# -- targets ------------------------------------------------------------------------------------
def test_total_energies_and_zpve_are_extensive_and_tensor_components_unusable() -> None:
    targets = QM9.targets
    assert {n for n, t in targets.items() if t.extensive} == {"u0", "u", "h", "g", "zpve"}
    assert {n for n, t in targets.items() if not t.usable} == {f"alpha_{ij}" for ij in
                                                                ("xx", "xy", "yy", "xz", "yz", "zz")}
    assert targets["alpha"].usable and not targets["alpha"].extensive  # the isotropic one stays
    assert targets["mulliken_charge"].level == "atom" and targets["mulliken_charge"].units == "e"
    assert all(t.level == "graph" for n, t in targets.items() if n != "mulliken_charge")
    for name, target in targets.items():
        assert target.units and len(target.description) > 15, name


def test_tensor_components_are_not_in_the_frame_of_the_stored_geometry() -> None:
    """Why alpha_xz and friends are unusable: NH3's tensor is diagonal with its unique axis along z,
    while the stored NH3 has its C3 axis far from z."""
    raw = _raw_row("dsgdb9nsd_000002.xyz")
    positions = np.array(eval(raw["XYZ_Ang"]), dtype=float)  # noqa: S307 - test-only literal list
    axis = positions[0] - positions[1:].mean(axis=0)
    axis /= np.linalg.norm(axis)
    assert abs(axis[2]) < 0.9  # tilted by more than 25 degrees from z
    with open(source.data_dir() / source.TENSOR_FILE) as handle:
        row = next(line for line in handle if line.startswith('"dsgdb9nsd_000002.xyz"'))
    xx, xy, yy, xz, yz, zz = map(float, row.strip().split(",")[1:])
    assert xy == xz == yz == 0.0 and abs(zz - xx) > 2.0  # anisotropic, principal axis exactly along z


def test_mulliken_charges_are_per_atom_and_neutral(dev: QM9) -> None:
    s = dev[3]
    raw = _raw_row(f"{s.id}.xyz")
    charges = s.atom_targets["mulliken_charge"]
    np.testing.assert_array_equal(charges, np.array(eval(raw["Mulliken_pop"]), dtype=float))  # noqa: S307
    assert charges.shape == (len(s),)
    for i in range(0, len(dev), 50):  # every QM9 molecule is neutral (six decimals in the file)
        molecule = dev[i]
        assert abs(molecule.atom_targets["mulliken_charge"].sum()) < 1e-5 * len(molecule), molecule.id
    values = dev.values("mulliken_charge")
    assert values.shape == (sum(len(dev[i]) for i in range(len(dev))),)
    numbers = np.concatenate([dev[i].numbers for i in range(len(dev))])
    assert values[numbers == 1].mean() > 0.05 and values[numbers == 8].mean() < -0.2  # H positive, O negative


def test_an_invalid_target_is_refused_by_validate_naming_why(tmp_path: Path, qm9_cache: Path) -> None:
    pytest.importorskip("molplat_schnet")
    pipeline = tmp_path / "alpha.toml"
    pipeline.write_text(f"""
[dataset]
name = "qm9"
target = "alpha_xz"
cache_dir = "{qm9_cache}"

[representation]
name = "adjacency_list"
cutoff = 4.0

[model]
name = "schnet"
cutoff = 4.0
""")
    proc = subprocess.run([sys.executable, "-m", "molplat.cli", "validate", str(pipeline)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "'alpha_xz'" in proc.stderr and "cannot be learnt" in proc.stderr
    assert "frame other than that of the stored geometry" in proc.stderr and "isotropic alpha" in proc.stderr


# -- checked caches -------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", CACHE_DAMAGE, ids=CACHE_DAMAGE_IDS)
def test_a_damaged_selection_cache_is_rebuilt_with_one_notice(damage, qm9_cache: Path, dev: QM9, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "qm9"
    folder.mkdir()
    (full,) = (qm9_cache / "qm9").glob("full-*.npz")
    try:
        os.link(full, folder / full.name)  # the parsed full set, without copying 90 MB
    except OSError:
        shutil.copy(full, folder / full.name)
    QM9(cache_dir=str(tmp_path))
    (selection_file,) = folder.glob("dev-*.npz")
    damage(selection_file)
    capsys.readouterr()

    rebuilt = QM9(cache_dir=str(tmp_path))
    err = capsys.readouterr().err
    assert err.count("notice:") == 1 and str(selection_file) in err and "rebuilding" in err, err
    assert rebuilt.ids == dev.ids
    for i in (0, 7, 999):
        np.testing.assert_array_equal(rebuilt[i].positions, dev[i].positions)
        charges = rebuilt[i].atom_targets["mulliken_charge"]
        np.testing.assert_array_equal(charges, dev[i].atom_targets["mulliken_charge"])
        assert rebuilt[i].targets == dev[i].targets
    graph_names, atom_names = [c.name for c in COLUMNS], [c.name for c in ATOM_COLUMNS]
    assert cache.load(selection_file, graph_names, atom_names) is not None  # sound again
    assert capsys.readouterr().err == ""


def test_a_damaged_full_cache_is_parsed_again(qm9_cache: Path, dev: QM9, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "qm9"
    folder.mkdir()
    (full,) = (qm9_cache / "qm9").glob("full-*.npz")
    (folder / full.name).write_bytes(full.read_bytes()[:1_000_000])
    capsys.readouterr()
    rebuilt = QM9(size=20, cache_dir=str(tmp_path))
    err = capsys.readouterr().err
    assert err.count("notice:") == 1 and full.name in err, err
    assert set(rebuilt.ids) <= set(dev.ids)
    position = dev.ids.index(rebuilt.ids[0])
    np.testing.assert_array_equal(rebuilt[0].positions, dev[position].positions)
    assert (folder / full.name).stat().st_size == full.stat().st_size  # written again, whole
