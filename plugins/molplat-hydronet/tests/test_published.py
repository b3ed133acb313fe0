"""Reading the published layout: W{n}_geoms_all.xyz frames (energy in kcal/mol on the comment line),
plain, inside W{n}_geoms_all.zip, or inside the release zip; and one clear error for each bad input."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from hydronet_files import water_cluster, write_release, xyz_text

import molplat
from molplat.errors import ValidationError
from molplat_hydronet import published
from molplat_hydronet.dataset import HydroNet
from molplat_hydronet.published import KCAL_PER_MOL_IN_EV

ENERGIES = {3: [-15.9416428, -15.7200001, -14.9], 4: [-27.2341, -26.1], 5: [-36.3, -35.95]}


@pytest.fixture
def release(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "W3-W30_all_geoms_TTM2.1-F"
    return root, write_release(root, ENERGIES, zipped=(4,))


def build(path: Path, tmp_path: Path, **settings) -> HydroNet:
    return HydroNet(path=str(path), cache_dir=str(tmp_path / "cache"), progress=False, **settings)


def test_kcal_per_mol_in_ev() -> None:
    assert KCAL_PER_MOL_IN_EV == pytest.approx(0.0433641, abs=1e-7)
    assert KCAL_PER_MOL_IN_EV == pytest.approx(4.184 / 96.48533212, rel=1e-12)


def test_reads_every_cluster_in_ev_and_angstrom(release, tmp_path) -> None:
    root, written = release
    data = build(root, tmp_path)
    assert len(data) == 7
    assert data.ids[:3] == ["W3_geoms_all:0", "W3_geoms_all:1", "W3_geoms_all:2"]
    assert data.ids[3:5] == ["W4_geoms_all:0", "W4_geoms_all:1"]  # read from inside W4_geoms_all.zip
    first = data[0]
    np.testing.assert_allclose(first.positions, written[3][0][0], atol=5e-8)  # 7-8 decimals in the file
    assert first.numbers.tolist() == [8, 1, 1] * 3
    assert first.forces is None  # the release has energies only
    assert first.targets["energy"] == pytest.approx(-15.9416428 * 0.0433641, rel=1e-6)
    assert first.targets["energy"] == pytest.approx(-0.69130, abs=1e-4)  # eV
    # TTM2.1-F energies are relative to isolated relaxed waters: divided by n, the binding energy per water
    assert first.targets["binding_energy_per_water"] == pytest.approx(first.targets["energy"] / 3)
    assert data[5].targets["energy"] == pytest.approx(-36.3 * KCAL_PER_MOL_IN_EV)
    np.testing.assert_allclose(data.values("energy"), np.concatenate(list(ENERGIES.values())) * KCAL_PER_MOL_IN_EV)


def test_monomer_energy_shifts_only_the_binding_energy(release, tmp_path) -> None:
    data = build(release[0], tmp_path, monomer_energy=-1.0)
    s = data[3]  # W4
    assert s.targets["binding_energy_per_water"] == pytest.approx((s.targets["energy"] + 4 * KCAL_PER_MOL_IN_EV) / 4)


def test_sizes_and_max_per_size_select_clusters(release, tmp_path) -> None:
    data = build(release[0], tmp_path, min_waters=4, max_waters=5, max_per_size=1)
    assert data.ids == ["W4_geoms_all:0", "W5_geoms_all:0"]
    with pytest.raises(ValidationError, match="none of them within 6..8"):
        build(release[0], tmp_path, min_waters=6, max_waters=8)


def test_reads_the_release_zip_and_its_parent_folder(release, tmp_path) -> None:
    root, _ = release
    outer = tmp_path / "W3-W30_all_geoms_TTM2.1-F.zip"
    with zipfile.ZipFile(outer, "w") as archive:  # as distributed: a folder of per-size zips
        for n in ENERGIES:
            inner = tmp_path / f"W{n}_geoms_all.zip"
            with zipfile.ZipFile(inner, "w") as z:
                z.writestr(f"W{n}_geoms_all.xyz", xyz_text([(water_cluster(n, 100 * n + k), e)
                                                             for k, e in enumerate(ENERGIES[n])]))
            archive.write(inner, f"W3-W30_all_geoms_TTM2.1-F/{inner.name}")
    from_zip = build(outer, tmp_path / "a")
    from_folder = build(root, tmp_path / "b")
    from_parent = build(tmp_path, tmp_path / "c")  # the folder the release was unzipped into
    for other in (from_zip, from_parent):
        assert other.ids == from_folder.ids
        np.testing.assert_array_equal(other.values("energy"), from_folder.values("energy"))
        np.testing.assert_array_equal(other[4].positions, from_folder[4].positions)


def test_one_file_and_the_cache(release, tmp_path, monkeypatch) -> None:
    root, _ = release
    data = build(root / "W5_geoms_all.xyz", tmp_path)
    assert data.ids == ["W5_geoms_all:0", "W5_geoms_all:1"]
    monkeypatch.setattr(published, "read_frames", lambda *a: pytest.fail("the parse should come from the cache"))
    again = build(root / "W5_geoms_all.xyz", tmp_path)
    assert again.ids == data.ids
    monkeypatch.undo()
    before = data.fingerprint()
    (root / "W5_geoms_all.xyz").write_text(xyz_text([(water_cluster(5, 1), -30.0)]))  # the user edits the file
    assert build(root / "W5_geoms_all.xyz", tmp_path).fingerprint() != before
    assert len(build(root / "W5_geoms_all.xyz", tmp_path)) == 1


# -- bad input: one ValidationError naming the file, the line and the fix ---------------------------
def _frames(n: int = 3, count: int = 2) -> str:
    return xyz_text([(water_cluster(n, k), -15.0 - k) for k in range(count)])


def _edit(line: int, text: str) -> str:
    """Two W3 clusters (lines 1-11 and 12-22) with one line replaced."""
    lines = _frames().splitlines()
    lines[line - 1] = text
    return "\n".join(lines) + "\n"


BAD_FILES = {
    "truncated": (lambda: "\n".join(_frames().splitlines()[:-4]) + "\n", "line 18: the file ends inside a cluster"),
    "nan energy": (lambda: _edit(13, "nan    "), "line 13: cluster 2 has a non-finite energy"),
    "nan position": (lambda: _edit(16, " H    nan       1.00000000       2.00000000"), "line 13: cluster 2 has a "
                     "non-finite positions"),
    "wrong count": (lambda: _edit(12, "          10"), "line 12: expected the atom count 9"),
    "no energy": (lambda: _edit(2, "energy=?"), "line 2: the comment line 'energy=\\?' does not end with"),
    "not utf-8": (lambda: b"\xff\xfe\x00junk", "not UTF-8 text"),
    "other element": (lambda: _edit(3, " C    1.0 2.0 3.0"), r"element symbols \['C'\]"),
    "short atom line": (lambda: _edit(5, " H    1.0 2.0"), "line 5: expected 'symbol x y z'"),
    "bad number": (lambda: _edit(4, " H    1.0 2.O 3.0"), "line 4: a coordinate is not a number"),
    "empty": (lambda: "", "line 1: the file is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_one_clear_error(case, tmp_path) -> None:
    make, message = BAD_FILES[case]
    content = make()
    path = tmp_path / "W3_geoms_all.xyz"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValidationError, match=message) as info:
        build(path, tmp_path)
    text = str(info.value)
    assert str(path) in text and len(text.splitlines()) == 1, text


def test_missing_and_empty_paths_are_clear(tmp_path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        build(tmp_path / "nowhere", tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    with pytest.raises(ValidationError, match=r"no W\{n\}_geoms_all.xyz or .zip file .* notes.txt"):
        build(tmp_path / "empty", tmp_path)


def test_a_damaged_zip_is_one_clear_error(tmp_path) -> None:
    path = tmp_path / "W3_geoms_all.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("W3_geoms_all.xyz", _frames())
    path.write_bytes(path.read_bytes()[:40])  # cut short, as an interrupted download
    with pytest.raises(ValidationError, match="not a readable zip file"):
        build(path, tmp_path)


def test_a_bad_file_stops_the_pipeline_with_one_line(tmp_path) -> None:
    path = tmp_path / "W3_geoms_all.xyz"
    path.write_text("\n".join(_frames().splitlines()[:-1]) + "\n")
    spec = {
        "dataset": {"name": "hydronet", "path": str(path), "cache_dir": str(tmp_path / "cache")},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "schnet", "cutoff": 4.0, "hidden_channels": 8, "num_filters": 8, "num_interactions": 1},
        "trainer": {"max_epochs": 1, "progress_bar": False},
        "output": {"dir": str(tmp_path / "runs"), "plots": False},
    }
    pytest.importorskip("molplat_schnet")
    with pytest.raises(ValidationError, match="W3_geoms_all.xyz, line 21: the file ends inside a cluster"):
        molplat.load_pipeline(spec).run(echo=lambda _: None)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
