"""oc20_s2ef on files written in exactly the layout of the uncompressed S2EF download:
N.extxyz (Properties=species:S:1:pos:R:3:move_mask:L:1:tags:I:1:forces:R:3, energy=,
free_energy=, pbc="T T T") beside N.txt (random<id>,frame<n>,<reference energy>)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from molplat.errors import ValidationError
from molplat_oc20 import published
from molplat_oc20.datasets import OC20S2EF

LATTICE = "Lattice=\"5.1 0.0 0.0 0.0 5.1 0.0 0.0 0.0 24.0\""
PROPERTIES = "Properties=species:S:1:pos:R:3:move_mask:L:1:tags:I:1:forces:R:3"

# (symbol, x, y, z, movable, tag, fx, fy, fz)
ATOMS = [
    ("Cu", 0.00, 0.00, 8.00, "F", 0, 0.011, -0.020, 0.130),
    ("Cu", 2.55, 0.00, 8.00, "F", 0, -0.011, 0.020, 0.130),
    ("Cu", 1.27, 1.47, 10.08, "T", 1, 0.004, 0.003, -0.051),
    ("Cu", 3.82, 1.47, 10.08, "T", 1, -0.004, 0.003, -0.051),
    ("O", 1.30, 1.50, 11.60, "T", 2, 0.020, -0.010, 0.250),
]


def frame(energy: float, shift: float = 0.0, atoms=ATOMS, properties: str = PROPERTIES) -> str:
    lines = [str(len(atoms)), f"{LATTICE} {properties} energy={energy:.8f} free_energy={energy - 0.0016:.8f} "
             "pbc=\"T T T\""]
    for symbol, x, y, z, movable, tag, fx, fy, fz in atoms:
        lines.append(f"{symbol:<2} {x:12.8f} {y:12.8f} {z + shift:12.8f} {movable} {tag:5d} "
                     f"{fx:12.8f} {fy:12.8f} {fz:12.8f}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "s2ef_train_200K"
    root.mkdir()
    (root / "0.extxyz").write_text(frame(-181.54722937) + frame(-181.60122937, shift=0.05))
    (root / "0.txt").write_text("random2181546,frame23,-180.25000000\nrandom1981709,frame7,-181.00000000\n")
    (root / "10.extxyz").write_text(frame(-150.5))
    (root / "10.txt").write_text("random77,frame0,-150.0\n")
    (root / "2.extxyz").write_text(frame(-140.25))
    (root / "2.txt").write_text("random2181546,frame24,-140.0\n")
    return root


def load(folder: Path, tmp_path: Path, **settings) -> OC20S2EF:
    return OC20S2EF(path=str(folder), cache_dir=str(tmp_path / "cache"), **settings)


def test_reads_frames_labels_tags_and_fixed_atoms(folder: Path, tmp_path: Path) -> None:
    ds = load(folder, tmp_path)
    # files in numeric order (0, 2, 10), frames in file order
    assert ds.ids == ["random2181546:frame23", "random1981709:frame7", "random2181546:frame24", "random77:frame0"]
    s = ds[0]
    assert s.numbers.tolist() == [29, 29, 29, 29, 8]
    np.testing.assert_allclose(s.positions[4], [1.30, 1.50, 11.60])
    np.testing.assert_allclose(s.cell, np.diag([5.1, 5.1, 24.0]))
    assert s.pbc.tolist() == [True, True, True]  # as published; the vacuum keeps z-images out of reach
    np.testing.assert_allclose(s.forces, [a[6:] for a in ATOMS])  # eV/Å as published: no conversion
    # eV as published: adsorption energy = energy - reference energy of the .txt line
    assert s.targets["total_energy"] == pytest.approx(-181.54722937)
    assert s.targets["adsorption_energy"] == pytest.approx(-181.54722937 + 180.25)
    assert ds[1].targets["adsorption_energy"] == pytest.approx(-181.60122937 + 181.0)
    assert ds.tags(0).tolist() == [0, 0, 1, 1, 2]
    assert ds.fixed(0).tolist() == [True, True, False, False, False]  # move_mask F
    assert s.atom_targets["tags"].tolist() == [0, 0, 1, 1, 2] and s.atom_targets["fixed"].tolist() == [1, 1, 0, 0, 0]
    assert ds.system(2) == "random2181546"
    atoms = s.to_atoms()
    assert atoms.arrays["tags"].tolist() == [0, 0, 1, 1, 2]


def test_one_file_and_a_pattern(folder: Path, tmp_path: Path) -> None:
    assert len(load(folder / "10.extxyz", tmp_path)) == 1
    assert load(folder, tmp_path, pattern="[02].extxyz").ids[-1] == "random2181546:frame24"


def test_split_by_system_keeps_a_systems_frames_together(folder: Path, tmp_path: Path) -> None:
    ds = load(folder, tmp_path)
    for seed in range(10):
        parts = ds.splits((0.4, 0.3, 0.3), seed=seed)
        where = {int(i): name for name, idx in parts.items() for i in idx}
        assert sorted(where) == [0, 1, 2, 3]
        assert where[0] == where[2]  # random2181546, frames 23 and 24
    ds = load(folder, tmp_path, split_by="frame")
    assert sum(len(v) for v in ds.splits((0.5, 0.25, 0.25), seed=1).values()) == 4


def test_parsed_files_are_cached_and_reread_when_they_change(folder: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    first = load(folder, tmp_path)
    calls = []
    original = published.read_s2ef
    monkeypatch.setattr(published, "read_s2ef", lambda *a: calls.append(a) or original(*a))
    again = load(folder, tmp_path)
    assert calls == [] and again.ids == first.ids and again.fingerprint() == first.fingerprint()
    (folder / "2.txt").write_text("random2181546,frame24,-141.0\n")
    os.utime(folder / "2.txt", ns=(1, 1))
    changed = load(folder, tmp_path)
    assert len(calls) == 1 and changed[2].targets["adsorption_energy"] == pytest.approx(-140.25 + 141.0)
    assert changed.fingerprint() != first.fingerprint()


# -- bad input: one ValidationError naming the file, the key and the fix ----------------------------------------
def fails(folder: Path, tmp_path: Path, match: str) -> str:
    with pytest.raises(ValidationError, match=match) as info:
        load(folder, tmp_path)
    return str(info.value)


def test_missing_txt(folder: Path, tmp_path: Path) -> None:
    (folder / "2.txt").unlink()
    fails(folder, tmp_path, r"2\.extxyz has no metadata file 2\.txt beside it .*uncompress both")


def test_txt_and_extxyz_disagree_on_the_number_of_frames(folder: Path, tmp_path: Path) -> None:
    (folder / "0.txt").write_text("random2181546,frame23,-180.25\n")
    fails(folder, tmp_path, r"0\.extxyz has more frames than 0\.txt has lines \(1\)")
    (folder / "0.txt").write_text("random1,frame1,-1.0\nrandom2,frame2,-2.0\nrandom3,frame3,-3.0\n")
    fails(folder, tmp_path, r"0\.extxyz has 2 frames but 0\.txt has 3 lines")


@pytest.mark.parametrize("line, match", [
    ("random1,frame1", r"0\.txt, line 1 is 'random1,frame1', not 'system_id,frame_number,reference_energy'"),
    ("random1,frameX,-1.0", r"0\.txt, line 1: frame_number 'frameX' .* is not a number"),
    ("random1,frame1,abc", r"reference_energy 'abc' is not a number"),
    ("random1,frame1,nan", r"0\.txt, line 1: reference_energy is nan; every frame needs a finite reference"),
])
def test_malformed_txt_lines(folder: Path, tmp_path: Path, line: str, match: str) -> None:
    (folder / "0.txt").write_text(f"{line}\nrandom2,frame2,-2.0\n")
    fails(folder, tmp_path, match)


def test_non_utf8_and_truncated_files(folder: Path, tmp_path: Path) -> None:
    (folder / "0.txt").write_bytes(b"random1,frame1,-1.0\n\xff\xfe\n")
    fails(folder, tmp_path, r"0\.txt is not UTF-8 text .*uncompress \.xz files first")
    (folder / "0.txt").write_text("random1,frame1,-1.0\nrandom2,frame2,-2.0\n")
    (folder / "2.extxyz").write_bytes(b"\xfd7zXZ\x00\x00binary")
    fails(folder, tmp_path, r"2\.extxyz is not UTF-8 text")
    text = frame(-140.25)
    (folder / "2.extxyz").write_text(text[: len(text) - 60])  # cut inside the last atom line
    message = fails(folder, tmp_path, r"ASE cannot read frame 0 of .*2\.extxyz .*truncated or not extxyz")
    assert "Traceback" not in message


def test_missing_or_nan_energy_and_forces(folder: Path, tmp_path: Path) -> None:
    (folder / "2.extxyz").write_text(frame(-140.25).replace(" energy=-140.25000000", ""))
    fails(folder, tmp_path, r"frame 0 of .*2\.extxyz has no 'energy'; S2EF frames carry energy=")
    (folder / "2.extxyz").write_text(frame(float("nan")))
    fails(folder, tmp_path, r"frame 0 of .*2\.extxyz: 'energy' is nan")
    no_forces = [a[:6] for a in ATOMS]
    text = "\n".join([str(len(ATOMS)), f"{LATTICE} Properties=species:S:1:pos:R:3:move_mask:L:1:tags:I:1 "
                      "energy=-140.25 pbc=\"T T T\""] + [f"{a[0]} {a[1]} {a[2]} {a[3]} {a[4]} {a[5]}" for a in
                                                       no_forces]) + "\n"
    (folder / "2.extxyz").write_text(text)
    fails(folder, tmp_path, r"frame 0 of .*2\.extxyz has no 'forces' column")
    bad = [a[:6] + (float("nan"), 0.0, 0.0) for a in ATOMS]
    (folder / "2.extxyz").write_text(frame(-140.25, atoms=bad))
    fails(folder, tmp_path, r"forces have shape \[5, 3\] or non-finite values")


def test_missing_tags(folder: Path, tmp_path: Path) -> None:
    rows = [f"{a[0]} {a[1]} {a[2]} {a[3]} {a[6]} {a[7]} {a[8]}" for a in ATOMS]
    (folder / "2.extxyz").write_text("\n".join([str(len(ATOMS)), f"{LATTICE} Properties=species:S:1:pos:R:3:"
                                                "forces:R:3 energy=-1.0 pbc=\"T T T\""] + rows) + "\n")
    fails(folder, tmp_path, r"frame 0 of .*2\.extxyz has no 'tags' column")


def test_wrong_folders(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"nowhere does not exist; set path"):
        OC20S2EF(path=str(tmp_path / "nowhere"))
    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / "0.extxyz.xz").write_bytes(b"\xfd7zXZ")
    (packed / "0.txt.xz").write_bytes(b"\xfd7zXZ")
    with pytest.raises(ValidationError, match=r"holds compressed files \(0\.extxyz\.xz, \.\.\.\) .*xz -d"):
        OC20S2EF(path=str(packed))
    lmdb = tmp_path / "lmdb"
    lmdb.mkdir()
    (lmdb / "data.0000.lmdb").write_bytes(b"\x80\x04")
    with pytest.raises(ValidationError, match=r"holds LMDB files .*never loads; convert the LMDB"):
        OC20S2EF(path=str(lmdb))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match=r"no file in .*empty matches '\*\.extxyz'"):
        OC20S2EF(path=str(tmp_path / "empty"))


def test_the_dev_set_round_trips_through_the_published_layout(s2ef, tmp_path: Path) -> None:
    """The dev set written as OC20 writes S2EF files (ASE's extxyz writer, FixAtoms as move_mask) reads back the same."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.constraints import FixAtoms
    from ase.io import write

    root = tmp_path / "written"
    root.mkdir()
    frames, lines = [], []
    for i in range(len(s2ef)):
        s = s2ef[i]
        atoms = s.to_atoms()
        del atoms.arrays["fixed"], atoms.arrays["forces"], atoms.arrays["tags"]
        atoms.set_tags(s2ef.tags(i))
        atoms.pbc = True  # as OC20 publishes its slabs
        atoms.set_constraint(FixAtoms(mask=s2ef.fixed(i)))
        energy = s.targets["total_energy"]
        atoms.calc = SinglePointCalculator(atoms, energy=energy, free_energy=energy, forces=s.forces)
        atoms.info.clear()
        frames.append(atoms)
        system, frame_number = s.id.rsplit(":frame", 1)
        lines.append(f"{system},frame{frame_number},{energy - s.targets['adsorption_energy']:.10f}")
    write(root / "0.extxyz", frames, format="extxyz")
    (root / "0.txt").write_text("\n".join(lines) + "\n")
    header = (root / "0.extxyz").read_text().splitlines()[1]
    assert "move_mask:L:1" in header and "tags:I:1" in header and "forces:R:3" in header
    back = OC20S2EF(path=str(root), cache_dir=str(tmp_path / "cache"))
    assert back.ids == s2ef.ids
    for i in range(0, len(s2ef), 7):
        a, b = s2ef[i], back[i]
        np.testing.assert_allclose(b.positions, a.positions, atol=1e-7)
        np.testing.assert_allclose(b.forces, a.forces, atol=1e-7)
        assert b.targets == pytest.approx(a.targets, abs=1e-6)
        assert (back.tags(i) == s2ef.tags(i)).all() and (back.fixed(i) == s2ef.fixed(i)).all()
