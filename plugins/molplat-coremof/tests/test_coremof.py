"""Behaviour of the coremof dataset: dev set, structures, labels, skipping, cache."""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.data import atomic_masses

from molplat.errors import ValidationError
from molplat_coremof import coremof, plugin, source
from molplat_coremof.cif import BadCIF, count_sites, parse_cif
from molplat_coremof.coremof import DEV_SIZE, CoREMOF
from molplat_coremof.targets import TARGETS
from molplat_sdk.damage import CACHE_DAMAGE, CACHE_DAMAGE_IDS

DEV_FIRST_IDS = ["AMUFOF_clean", "ASOHUL_clean", "ATIBIO_clean"]
DEV_IDS_SHA256 = "8c56cdb720a8a1e2e6afceb5b77cfbcf1f82468b0724bf1eb7f0d0d963f45753"
AMU_G_CM3 = 1.66053906660  # g/cm^3 per (amu/Å^3)


def _cif_text(atoms) -> str:
    handle = io.BytesIO()
    atoms.write(handle, format="cif")
    return handle.getvalue().decode()


def test_dev_set_is_fixed_and_small(dev: CoREMOF) -> None:
    assert len(dev) == DEV_SIZE == 100
    assert dev.ids[:3] == DEV_FIRST_IDS
    assert hashlib.sha256(",".join(dev.ids).encode()).hexdigest() == DEV_IDS_SHA256
    assert dev.ids == sorted(set(dev.ids))


def test_structures_are_periodic_crystals_within_the_atom_limit(dev: CoREMOF) -> None:
    for s in dev:
        assert s.periodic and s.pbc.all() and s.cell is not None
        assert abs(np.linalg.det(s.cell)) > 10.0
        assert 1 <= len(s) <= 150 and (s.numbers > 0).all() and np.isfinite(s.positions).all()
        fractional = np.linalg.solve(s.cell.T, s.positions.T).T
        assert (fractional > -1e-6).all() and (fractional < 1 + 1e-6).all()  # wrapped into the cell
        assert s.numbers.max() <= 94  # real elements
    assert np.mean([6 in s.numbers for s in dev]) > 0.7  # mostly organic linkers


def test_labels_have_units_and_match_the_structures(dev: CoREMOF) -> None:
    assert CoREMOF.default_target == "lcd" and set(CoREMOF.targets) == set(TARGETS)
    assert CoREMOF.targets["lcd"].units == "Å" and CoREMOF.targets["asa_gravimetric"].units == "m^2/g"
    assert CoREMOF.targets["void_fraction"].units == "dimensionless"
    for name, target in CoREMOF.targets.items():
        assert target.units and np.isfinite(dev.values(name)).all(), name
    assert (dev.values("pld") <= dev.values("lcd") + 1e-6).all()  # a pore's window is no wider than the pore
    for s in dev:  # the published density agrees with the parsed cell: labels belong to these structures
        density = atomic_masses[s.numbers].sum() * AMU_G_CM3 / abs(np.linalg.det(s.cell))
        assert density == pytest.approx(s.targets["density"], rel=1e-3), s.id
    assert "Chung" in CoREMOF.citation and "5985" in CoREMOF.citation


def test_cached_load_does_not_parse(coremof_cache: Path, dev: CoREMOF, monkeypatch: pytest.MonkeyPatch) -> None:
    files = list((coremof_cache / "coremof").glob("2019-ASR-dev-max150-*.npz"))
    assert len(files) == 1 and not list((coremof_cache / "coremof").glob("*.tmp"))
    mtime = files[0].stat().st_mtime_ns
    monkeypatch.setattr(coremof, "build", lambda *_: pytest.fail("the cache should have been used"))
    again = CoREMOF(cache_dir=str(coremof_cache))
    assert again.ids == dev.ids and again.skipped == dev.skipped
    np.testing.assert_array_equal(again[5].cell, dev[5].cell)
    assert files[0].stat().st_mtime_ns == mtime


@pytest.fixture
def fake_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A release of six names: two good crystals, a garbage file, overlapping atoms, a big cell, a missing CIF."""
    good = {"CU_clean": bulk("Cu", cubic=True), "NACL_clean": bulk("NaCl", "rocksalt", a=5.64)}
    overlap = bulk("Cu", cubic=True)
    overlap.positions[1] = overlap.positions[0] + 0.1
    texts = {**{k: _cif_text(v) for k, v in good.items()}, "JUNK_clean": "data_junk\n_cell_length_a ???\n",
             "OVER_clean": _cif_text(overlap), "BIG_clean": _cif_text(bulk("Cu", cubic=True) * (4, 4, 4))}
    archive = tmp_path / "2019-ASR.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        for name, text in texts.items():
            data = text.encode()
            info = tarfile.TarInfo(f"2019-ASR/{name}.cif")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    csv = tmp_path / "2019-ASR.csv"
    names = [*texts, "GONE_clean"]
    csv.write_text("filename," + ",".join(coremof.COLUMNS) + "\n"
                   + "".join(f"{n}," + ",".join([f"{1.5 + i}"] * len(coremof.COLUMNS)) + "\n"
                             for i, n in enumerate(names)))
    monkeypatch.setattr(source, "data_files", lambda release: (csv, archive))
    return {name: text for name, text in texts.items() if name in good}


def test_bad_cifs_are_skipped_and_counted(fake_release: dict[str, str], tmp_path: Path) -> None:
    structures, skipped = coremof.build("2019-ASR", None, 150)
    assert [s.id for s in structures] == sorted(fake_release)
    assert skipped == {"no atom-site table": 1, "overlapping atoms": 1, "larger than max_atoms": 1,
                       "CIF missing from the archive": 1}
    structures, _ = coremof.build("2019-ASR", 1, 150)
    assert len(structures) == 1 and structures[0].id in fake_release
    ds = CoREMOF(subset="full", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 2 and ds[0].targets["lcd"] == 1.5 and sum(ds.skipped.values()) == 4


@pytest.mark.parametrize("damage", CACHE_DAMAGE, ids=CACHE_DAMAGE_IDS)
def test_a_damaged_cache_is_rebuilt_with_one_notice(damage, fake_release: dict[str, str], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    first = CoREMOF(subset="full", cache_dir=str(tmp_path / "cache"))
    (path,) = (tmp_path / "cache" / "coremof").glob("*.npz")
    damage(path)
    capsys.readouterr()

    rebuilt = CoREMOF(subset="full", cache_dir=str(tmp_path / "cache"))
    err = capsys.readouterr().err
    assert err.count("notice:") == 1 and str(path) in err and "rebuilding" in err, err
    assert rebuilt.ids == first.ids == sorted(fake_release) and rebuilt.skipped == first.skipped
    for i in range(len(first)):
        assert rebuilt[i].targets == first[i].targets
        np.testing.assert_array_equal(rebuilt[i].positions, first[i].positions)
        np.testing.assert_array_equal(rebuilt[i].cell, first[i].cell)
    assert rebuilt[0].targets["lcd"] == 1.5  # the value the CSV holds, not the edited one
    CoREMOF(subset="full", cache_dir=str(tmp_path / "cache"))
    assert capsys.readouterr().err == ""  # sound again


def test_parse_cif_reports_why() -> None:
    text = _cif_text(bulk("Si", "diamond", a=5.43, cubic=True))
    assert count_sites(text) == 8
    s = parse_cif(text, "si", {"x": 1.0})
    assert len(s) == 8 and s.periodic and s.targets == {"x": 1.0} and s.id == "si"
    with pytest.raises(BadCIF, match="max_atoms"):
        parse_cif(text, "si", max_atoms=4)
    with pytest.raises(BadCIF, match="no valid 3D cell"):
        parse_cif(text.replace("_cell_length_a", "_cell_length_q"), "si")
    with pytest.raises(BadCIF, match="unreadable: KeyError"):
        parse_cif(text.replace("Si", "Qq"), "si")


def test_bad_settings() -> None:
    with pytest.raises(ValidationError, match="subset"):
        CoREMOF(subset="all")
    with pytest.raises(ValidationError, match="max_atoms"):
        CoREMOF(max_atoms=0)
    with pytest.raises(ValidationError, match="release"):
        CoREMOF(release="2014")


def test_every_numeric_setting_is_bounded_by_what_the_data_holds() -> None:
    for spec in plugin.molplat_datasets():
        for setting in spec.settings:
            assert setting.bounded, (spec.name, setting.name)
    (spec,) = [s for s in plugin.molplat_datasets() if s.name == "coremof"]
    assert spec.setting("size").check(12020) is None and spec.setting("size").check(12021)
    assert spec.setting("max_atoms").check(10560) is None  # the largest CoRE MOF cell
    assert spec.setting("cache_dir").type == "path" and not spec.setting("cache_dir").must_exist
