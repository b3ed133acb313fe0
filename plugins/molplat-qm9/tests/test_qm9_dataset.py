"""Behaviour of the qm9 dataset: selection, units, cache, structures, splits."""
from __future__ import annotations

import csv
import hashlib
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from molplat.errors import MolplatError, ValidationError
from molplat_qm9 import cache, selection, source
from molplat_qm9.dataset import DEV_SIZE, QM9

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


def test_bad_settings_and_a_corrupt_cache(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="subset"):
        QM9(subset="tiny")
    with pytest.raises(ValidationError, match="size"):
        QM9(size=0)
    broken = tmp_path / "dev-x.npz"
    broken.write_bytes(b"not a zip file")
    assert cache.load(broken, ["gap"]) is None  # rebuilt, not crashed on


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


