"""The built-in ``atoms_file`` dataset on real files in the layouts ASE writes: extxyz, ASE databases, folders.

Labels are EMT energies, forces and stresses computed here, so every value read back can
be checked against the calculator that made it.
"""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import ase.db
import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.cluster import Icosahedron

from molplat.datasets.atoms_file import AtomsFile
from molplat.errors import ValidationError
from molplat.pipeline.config import Pipeline


# -- real labelled frames ----------------------------------------------------------------------
def labelled(atoms: Atoms) -> Atoms:
    """``atoms`` with its EMT energy, forces (and stress, when periodic) stored as a file would store them."""
    atoms.calc = EMT()
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if atoms.pbc.all():
        results["stress"] = atoms.get_stress()
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def clusters(count: int, seed: int = 0) -> list[Atoms]:
    """Rattled 13-atom Cu/Ni icosahedra with EMT labels and two info keys."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        atoms = Icosahedron("Cu", noshells=2)
        atoms.numbers[rng.random(len(atoms)) < 0.4] = 28
        atoms.rattle(0.1, seed=seed * 1000 + i)
        labelled(atoms)
        atoms.info["n_ni"] = int((atoms.numbers == 28).sum())
        atoms.info["spread"] = float(np.linalg.norm(atoms.positions - atoms.positions.mean(0), axis=1).mean())
        frames.append(atoms)
    return frames


def crystals(count: int, seed: int = 0) -> list[Atoms]:
    """Strained, rattled fcc Cu/Ni cells with EMT energy, forces and stress."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        atoms = bulk("Cu", "fcc", a=3.6 * (1 + 0.02 * rng.standard_normal()), cubic=True)
        atoms.numbers[rng.random(len(atoms)) < 0.5] = 28
        atoms.rattle(0.05, seed=seed * 1000 + i)
        frames.append(labelled(atoms))
    return frames


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "molplat.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


# -- reading ------------------------------------------------------------------------------------
def test_extxyz_energies_forces_and_info_keys_are_what_ase_reads(tmp_path):
    frames = clusters(6)
    ase.io.write(tmp_path / "train.extxyz", frames)  # 8 decimals for positions and forces
    read = ase.io.read(tmp_path / "train.extxyz", ":")
    data = AtomsFile(str(tmp_path / "train.extxyz"), targets=["spread", "n_ni"], units={"spread": "Å"})
    assert len(data) == 6 and data.default_target == "energy"
    assert data.targets["energy"].units == "eV" and data.targets["energy"].extensive
    assert data.targets["spread"].units == "Å" and data.targets["n_ni"].units == "unspecified"
    assert "pressure" not in data.targets  # clusters carry no stress
    for i, (atoms, by_ase) in enumerate(zip(frames, read)):
        s = data[i]
        assert s.id == f"train.extxyz:{i}"
        np.testing.assert_array_equal(s.numbers, atoms.numbers)
        np.testing.assert_array_equal(s.positions, by_ase.positions)
        np.testing.assert_array_equal(s.forces, by_ase.calc.results["forces"])
        np.testing.assert_allclose(s.forces, atoms.calc.results["forces"], rtol=0, atol=1e-8)
        assert s.targets["energy"] == pytest.approx(atoms.calc.results["energy"], rel=1e-12)
        assert s.targets["spread"] == pytest.approx(atoms.info["spread"], rel=1e-12)
        assert s.targets["n_ni"] == atoms.info["n_ni"]
        assert not s.periodic and s.cell is None and s.stress is None


def test_two_loads_give_identical_structures_and_ids(tmp_path):
    ase.io.write(tmp_path / "a.extxyz", clusters(4))
    first, second = (AtomsFile(str(tmp_path / "a.extxyz"), targets=["spread"]) for _ in range(2))
    assert first.ids == second.ids
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.forces, b.forces)
        assert a.targets == b.targets
    first[0].positions[:] = 0.0  # a caller editing its structure leaves the dataset alone
    np.testing.assert_array_equal(first[0].positions, second[0].positions)


def test_index_selects_frames_and_ids_keep_their_numbers(tmp_path):
    ase.io.write(tmp_path / "md.extxyz", clusters(7))
    path = str(tmp_path / "md.extxyz")
    assert AtomsFile(path, index="::3").ids == ["md.extxyz:0", "md.extxyz:3", "md.extxyz:6"]
    assert AtomsFile(path, index="-2:").ids == ["md.extxyz:5", "md.extxyz:6"]
    assert AtomsFile(path, index="-1").ids == ["md.extxyz:6"]
    assert AtomsFile(path, index="2:4").ids == ["md.extxyz:2", "md.extxyz:3"]
    with pytest.raises(ValidationError, match=r"\[dataset\] index: '9' selects no frame"):
        AtomsFile(path, index="9")


def test_an_ase_database_gives_energies_forces_key_value_pairs_and_per_atom_data(tmp_path):
    frames = crystals(5)
    with ase.db.connect(tmp_path / "crystals.db") as db:
        for i, atoms in enumerate(frames):
            db.write(atoms, volume_per_atom=atoms.get_volume() / len(atoms),
                     data={"site_energy": np.linspace(-1, 1, len(atoms)) + i})
    data = AtomsFile(str(tmp_path / "crystals.db"), targets=["volume_per_atom", "site_energy"],
                     units={"volume_per_atom": "Å^3", "site_energy": "eV"})
    assert data.targets["site_energy"].level == "atom" and data.targets["volume_per_atom"].level == "graph"
    assert set(data.targets) == {"energy", "volume_per_atom", "site_energy", "pressure"}
    for i, atoms in enumerate(frames):
        s = data[i]
        assert s.id == f"crystals.db:{i}" and s.periodic
        np.testing.assert_allclose(s.cell, atoms.cell.array, atol=1e-12)
        np.testing.assert_allclose(s.forces, atoms.calc.results["forces"], atol=1e-12)  # databases keep every bit
        assert s.targets["energy"] == pytest.approx(atoms.calc.results["energy"], rel=1e-12)
        assert s.targets["volume_per_atom"] == pytest.approx(atoms.get_volume() / len(atoms))
        np.testing.assert_allclose(s.atom_targets["site_energy"], np.linspace(-1, 1, len(atoms)) + i)


def test_stress_becomes_the_structure_stress_and_an_invariant_pressure(tmp_path):
    frames = crystals(3)
    ase.io.write(tmp_path / "cells.extxyz", frames)
    data = AtomsFile(str(tmp_path / "cells.extxyz"))
    assert data.targets["pressure"].units == "eV/Å³" and not data.targets["pressure"].extensive
    for atoms, s in zip(frames, data):
        voigt = atoms.calc.results["stress"]
        np.testing.assert_allclose(np.diag(s.stress), voigt[:3], atol=1e-14)
        np.testing.assert_allclose(s.stress, s.stress.T)
        assert s.targets["pressure"] == pytest.approx(-voigt[:3].sum() / 3, rel=1e-10)
    # The pressure of a rotated crystal, labelled by EMT again, is the same: a target an invariant model can learn.
    rotation = np.linalg.qr(np.random.default_rng(3).standard_normal((3, 3)))[0]
    turned = frames[0].copy()
    turned.set_cell(turned.cell.array @ rotation.T, scale_atoms=False)
    turned.positions = turned.positions @ rotation.T
    ase.io.write(tmp_path / "turned.extxyz", labelled(turned))
    again = AtomsFile(str(tmp_path / "turned.extxyz"))[0]
    assert again.targets["pressure"] == pytest.approx(data[0].targets["pressure"], rel=1e-8)
    np.testing.assert_allclose(again.stress, rotation @ data[0].stress @ rotation.T, atol=1e-10)


def test_per_atom_arrays_become_atom_level_targets(tmp_path):
    frames = clusters(3)
    for atoms in frames:  # EMT's own per-atom energies, stored as an ordinary array
        atoms.arrays["emt_site"] = EMT().get_property("energies", atoms.copy())
    ase.io.write(tmp_path / "sites.extxyz", frames)
    data = AtomsFile(str(tmp_path / "sites.extxyz"), targets=["emt_site"], units={"emt_site": "eV"})
    target = data.targets["emt_site"]
    assert target.level == "atom" and target.units == "eV"
    for atoms, s in zip(frames, data):
        np.testing.assert_allclose(s.atom_targets["emt_site"], atoms.arrays["emt_site"], atol=1e-8)
        assert "emt_site" not in s.targets
        # EMT's site energies sum to its total energy: the two targets are read from the same frame
        assert s.atom_targets["emt_site"].sum() == pytest.approx(s.targets["energy"], abs=1e-6)


def test_per_atom_results_ase_stores_in_its_calculator_are_atom_level_even_for_one_atom(tmp_path):
    frames = clusters(2) + [labelled(Atoms("Cu", positions=[[0.0, 0.0, 0.0]]))]
    for atoms in frames:  # extxyz writes a "charge" column; ASE reads it back as the calculator's "charges"
        atoms.arrays["charge"] = np.linspace(-0.5, 0.5, len(atoms))
    ase.io.write(tmp_path / "charges.extxyz", frames)
    assert "charges" in ase.io.read(tmp_path / "charges.extxyz").calc.results
    data = AtomsFile(str(tmp_path / "charges.extxyz"), targets=["charges"], units={"charges": "e"})
    assert data.targets["charges"].level == "atom"
    for atoms, s in zip(frames, data):
        np.testing.assert_allclose(s.atom_targets["charges"], atoms.arrays["charge"], atol=1e-8)


def test_extensive_marks_extra_totals(tmp_path):
    frames = clusters(2)
    for atoms in frames:
        atoms.arrays["emt_site"] = EMT().get_property("energies", atoms.copy())
        atoms.info["free_energy_guess"] = float(atoms.arrays["emt_site"].sum())
    ase.io.write(tmp_path / "totals.extxyz", frames)
    path = str(tmp_path / "totals.extxyz")
    data = AtomsFile(path, targets=["free_energy_guess", "spread"], extensive=["free_energy_guess"])
    assert data.targets["free_energy_guess"].extensive and not data.targets["spread"].extensive
    with pytest.raises(ValidationError) as info:
        AtomsFile(path, targets=["emt_site"], extensive=["emt_site"])
    assert one_line(info).startswith("[dataset] extensive: 'emt_site' is one value per atom")


def test_a_folder_reads_matching_files_sorted_and_names_them(tmp_path):
    folder = tmp_path / "cells"
    (folder / "more").mkdir(parents=True)
    frames = crystals(4)
    ase.io.write(folder / "b.extxyz", frames[2:])
    ase.io.write(folder / "a.extxyz", frames[:2])
    ase.io.write(folder / "more" / "c.extxyz", frames[0])
    (folder / "README.txt").write_text("not a structure\n")
    (folder / ".hidden.extxyz").write_text("garbage\n")
    data = AtomsFile(str(folder), pattern="**/*.extxyz")
    assert data.ids == ["a.extxyz:0", "a.extxyz:1", "b.extxyz:0", "b.extxyz:1", "more/c.extxyz:0"]
    np.testing.assert_allclose(data[2].positions, frames[2].positions, rtol=0, atol=1e-8)
    assert AtomsFile(str(folder), pattern="*.extxyz").ids[-1] == "b.extxyz:1"


def test_cifs_beside_labelled_frames_get_nan_labels_and_runs_leave_them_out(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name, atoms in (("nacl", bulk("NaCl", "rocksalt", a=5.64)), ("si", bulk("Si", "diamond", a=5.43))):
        ase.io.write(folder / f"{name}.cif", atoms)
    labelled_cells = crystals(2)
    ase.io.write(folder / "emt.extxyz", labelled_cells)
    data = AtomsFile(str(folder))
    assert data.ids == ["emt.extxyz:0", "emt.extxyz:1", "nacl.cif:0", "si.cif:0"]
    nacl = data[2]
    assert sorted(nacl.numbers.tolist()) == [11, 17] and nacl.periodic
    assert abs(np.linalg.det(nacl.cell)) == pytest.approx(5.64 ** 3 / 4, rel=1e-6)
    assert np.isnan(nacl.targets["energy"]) and np.isnan(nacl.targets["pressure"]) and nacl.forces is None
    assert data[0].targets["energy"] == pytest.approx(labelled_cells[0].calc.results["energy"])


def test_forces_in_only_some_frames_are_none_elsewhere(tmp_path):
    frames = clusters(3)
    bare = frames[1].copy()  # geometry and energy only
    bare.calc = SinglePointCalculator(bare, energy=frames[1].calc.results["energy"])
    ase.io.write(tmp_path / "partial.extxyz", [frames[0], bare, frames[2]])
    data = AtomsFile(str(tmp_path / "partial.extxyz"))
    assert data[0].forces is not None and data[1].forces is None and data[2].forces is not None
    assert np.isfinite(data[1].targets["energy"])


def test_other_key_names_for_energy_forces_and_stress(tmp_path):
    frames = crystals(2)
    for atoms in frames:  # the REF_* names common in MLIP training files
        atoms.info["REF_energy"] = atoms.calc.results["energy"]
        atoms.info["REF_stress"] = atoms.calc.results["stress"]
        atoms.arrays["REF_forces"] = atoms.calc.results["forces"]
        atoms.calc = None
    ase.io.write(tmp_path / "ref.extxyz", frames)
    data = AtomsFile(str(tmp_path / "ref.extxyz"), energy_key="REF_energy", forces_key="REF_forces",
                     stress_key="REF_stress")
    assert set(data.targets) == {"energy", "pressure"}
    np.testing.assert_allclose(data[1].forces, frames[1].arrays["REF_forces"])
    assert data[1].targets["energy"] == pytest.approx(frames[1].info["REF_energy"])


# -- errors: one line naming the setting and the fix ------------------------------------------
@pytest.fixture
def emt_file(tmp_path) -> Path:
    path = tmp_path / "emt.extxyz"
    ase.io.write(path, clusters(3))
    return path


def test_a_target_found_in_no_frame_lists_the_keys_with_a_close_match(emt_file):
    with pytest.raises(ValidationError) as info:
        AtomsFile(str(emt_file), targets=["sprd"])
    text = one_line(info)
    assert text.startswith("[dataset] targets: no frame of") and "has 'sprd'; did you mean 'spread'?" in text
    assert "n_ni" in text and "forces" in text and "fix the name or leave it out" in text


def test_a_changed_energy_key_found_nowhere_is_an_error(emt_file):
    with pytest.raises(ValidationError) as info:
        AtomsFile(str(emt_file), energy_key="REF_energy")
    assert one_line(info).startswith("[dataset] energy_key: no frame of") and "did you mean 'energy'?" in str(info.value)


def test_forces_of_the_wrong_shape_name_the_frame(tmp_path):
    (tmp_path / "bad.extxyz").write_text('2\nProperties=species:S:1:pos:R:3:forces:R:2 energy=1.0 pbc="F F F"\n'
                                         "H 0 0 0 1 2\nH 0 0 0.74 1 2\n")
    with pytest.raises(ValidationError) as info:
        AtomsFile(str(tmp_path / "bad.extxyz"))
    text = one_line(info)
    assert text.startswith("[dataset] forces_key: 'forces' of bad.extxyz:0 is an array of shape [2, 2] for 2 atoms")
    assert "[atoms, 3] in eV/Å" in text


def test_a_file_ase_cannot_read_is_named_with_ases_message(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    ase.io.write(folder / "good.extxyz", clusters(1))
    (folder / "truncated.extxyz").write_text("3\ncomment\nH 0 0 0\n")
    with pytest.raises(ValidationError) as info:
        AtomsFile(str(folder))
    text = one_line(info)
    assert text.startswith("[dataset] path: ASE cannot read truncated.extxyz (XYZError:")
    assert "leave it out with pattern" in text


@pytest.mark.parametrize("pattern, message", [
    ("*", "no file in"),
    ("*.cif", "matches '*.cif'"),
])
def test_an_empty_folder_or_a_pattern_matching_nothing(tmp_path, pattern, message):
    folder = tmp_path / "empty"
    folder.mkdir()
    if pattern != "*":
        ase.io.write(folder / "a.extxyz", clusters(1))
    with pytest.raises(ValidationError) as info:
        AtomsFile(str(folder), pattern=pattern)
    assert one_line(info).startswith("[dataset] pattern: ") and message in str(info.value)


def test_files_without_any_label_have_nothing_to_learn(tmp_path):
    folder = tmp_path / "cifs"
    folder.mkdir()
    ase.io.write(folder / "cu.cif", bulk("Cu", "fcc", a=3.6))
    with pytest.raises(ValidationError) as info:
        AtomsFile(str(folder), pattern="*.cif")
    text = one_line(info)
    assert "nothing to learn" in text and "spacegroup" in text  # the keys the CIF reader did give


@pytest.mark.parametrize("settings, start", [
    ({"units": {"spread": 3}, "targets": ["spread"]}, "[dataset] units: {'spread': 3} must map target names"),
    ({"units": {"sprad": "Å"}, "targets": ["spread"]}, "[dataset] units: 'sprad' is not one of the targets; did you "
                                                       "mean 'spread'?"),
    ({"extensive": ["n_ni"]}, "[dataset] extensive: 'n_ni' is not one of the targets"),
    ({"targets": ["spread", "spread"]}, "[dataset] targets: 'spread' named twice"),
    ({"format": "extxzy"}, "[dataset] format: ASE reads no format 'extxzy'; did you mean 'extxyz'?"),
    ({"index": "a:b"}, "[dataset] index: 'a:b' is not an ASE frame index"),
    ({"index": "::0"}, "[dataset] index: '::0' is not an ASE frame index"),
    ({"targets": ["energy"]}, "[dataset] targets: 'energy' is the target energy_key fills"),
])
def test_setting_mistakes_are_one_line_naming_the_setting(emt_file, settings, start):
    with pytest.raises(ValidationError) as info:
        AtomsFile(str(emt_file), **settings)
    assert one_line(info).startswith(start)


def test_a_vector_info_key_is_not_a_target(tmp_path):
    frames = clusters(1)
    frames[0].info["dipole_guess"] = np.array([0.1, 0.2, 0.3])
    ase.io.write(tmp_path / "v.extxyz", frames)
    with pytest.raises(ValidationError) as info:
        AtomsFile(str(tmp_path / "v.extxyz"), targets=["dipole_guess"])
    assert one_line(info).startswith("[dataset] targets: 'dipole_guess' of v.extxyz:0 holds 3 numbers")


@pytest.mark.parametrize("atom_lines, message", [
    ("H 0 0 nan\nH 0 0 0.74\n", "positions are not all finite"),
    ("X 0 0 0\nH 0 0 0.74\n", "atomic numbers [0] are outside 1..118"),  # ASE's dummy atom
])
def test_bad_geometry_fails_in_get_as_a_value_error_naming_the_structure(tmp_path, atom_lines, message):
    (tmp_path / "bad.extxyz").write_text('2\nProperties=species:S:1:pos:R:3 energy=1.0 pbc="F F F"\n' + atom_lines)
    data = AtomsFile(str(tmp_path / "bad.extxyz"))
    with pytest.raises(ValueError, match=re.escape(f"structure 'bad.extxyz:0': {message}")):
        data[0]


# -- through the CLI ----------------------------------------------------------------------------
PIPELINE = """
[dataset]
name = "atoms_file"
path = "{path}"
{extra}

[representation]
name = "adjacency_list"
cutoff = 4.0

[model]
name = "schnet"
hidden_channels = 16
num_filters = 16
num_interactions = 2
cutoff = 4.0

[trainer]
task = "{task}"
max_epochs = 3
batch_size = 8
lr = 3e-3
progress_bar = false

[output]
dir = "runs"
plots = false
"""


def pipeline_file(folder: Path, path: str, extra: str = "", task: str = "energy_forces",
                  name: str = "pipeline.toml") -> Path:
    file = folder / name
    file.write_text(PIPELINE.format(path=path, extra=extra, task=task))
    return file


def test_energy_forces_run_on_an_extxyz_learns_and_reports_forces(tmp_path):
    frames = clusters(40, seed=1)
    ase.io.write(tmp_path / "emt.extxyz", frames)
    proc = cli("run", str(pipeline_file(tmp_path, "emt.extxyz", extra="split = [0.6, 0.2, 0.2]")), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["target"] == "energy" and summary["units"] == "eV"
    forces = summary["forces"]
    assert forces["units"] == "eV/Å" and 0 < forces["test"]["mae"] and summary["test"]["forces_mae"] > 0
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    losses = [float(r["val_loss"]) for r in rows]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    # after nine steps the model beats both baselines: per-element energies, and forces of zero
    assert summary["test"]["mae"] < summary["baseline_mae"]
    test_ids = [line.split(",")[0] for line in (run_dir / "predictions.csv").read_text().splitlines()[1:]]
    test_frames = [frames[int(name.rsplit(":", 1)[1])] for name in dict.fromkeys(test_ids)]
    zero_forces_mae = np.mean(np.concatenate([np.abs(a.calc.results["forces"]).ravel() for a in test_frames]))
    assert forces["baseline"] == "zero forces" and forces["baseline_mae"] == pytest.approx(zero_forces_mae, rel=1e-6)
    assert forces["test"]["mae"] < forces["baseline_mae"]
    data = json.loads((run_dir / "data.json").read_text())
    assert data["dataset"] == "molplat:atoms_file" and data["sizes"] == {"train": 24, "val": 8, "test": 8}
    predictions = (run_dir / "predictions.csv").read_text()
    assert "emt.extxyz:" in predictions  # test structures are named FILE:FRAME


def test_a_missing_path_is_exit_2_in_validate_and_run_and_leaves_no_run_directory(tmp_path):
    pipeline = pipeline_file(tmp_path, "nowhere.extxyz")
    for command in ("validate", "run"):
        proc = cli(command, str(pipeline), cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert f"[dataset] path: {tmp_path / 'nowhere.extxyz'} does not exist; fix the path" in line
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_an_unknown_setting_is_exit_2_with_a_close_match(tmp_path, emt_file):
    proc = cli("validate", str(pipeline_file(tmp_path, emt_file.name, extra='energy_kye = "E"')), cwd=tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "[dataset]: unknown key 'energy_kye' for dataset 'atoms_file'; did you mean 'energy_key'?" in line


def test_a_target_key_in_no_frame_is_exit_2_in_run_and_leaves_no_run_directory(tmp_path, emt_file):
    pipeline = pipeline_file(tmp_path, emt_file.name, extra='targets = ["sprd"]', task="property")
    Pipeline.load(pipeline)  # valid: only the run, which reads the frames, can tell
    proc = cli("run", str(pipeline), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: [dataset] targets: no frame of") and "did you mean 'spread'?" in line
    assert not (tmp_path / "runs").exists()


def test_nan_coordinates_are_exit_2_naming_the_structure(tmp_path):
    frames = clusters(9)
    frames[4].positions[0, 2] = np.nan  # the file keeps the labels; the geometry is broken
    ase.io.write(tmp_path / "nan.extxyz", frames)
    proc = cli("run", str(pipeline_file(tmp_path, "nan.extxyz")), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert "structure 'nan.extxyz:4': positions are not all finite" in line and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_energy_forces_on_frames_without_forces_is_refused(tmp_path):
    frames = clusters(10)
    for atoms in frames[:3]:
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.calc.results["energy"])
    ase.io.write(tmp_path / "some.extxyz", frames)
    proc = cli("run", str(pipeline_file(tmp_path, "some.extxyz")), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "[trainer] task: 'energy_forces' needs forces, but" in proc.stderr and "some.extxyz:" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_a_pipeline_without_path_names_the_required_setting(tmp_path):
    file = pipeline_file(tmp_path, "unused")
    file.write_text(file.read_text().replace('path = "unused"', ""))
    with pytest.raises(ValidationError) as info:
        Pipeline.load(file)
    assert "[dataset]: missing required key 'path' for dataset 'atoms_file' (an ASE-readable file" in one_line(info)


def test_a_relative_path_is_read_from_the_pipeline_files_folder(tmp_path, monkeypatch):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "data").mkdir(parents=True)
    elsewhere.mkdir()
    ase.io.write(project / "data" / "emt.extxyz", clusters(2))
    ase.io.write(elsewhere / "only-here.extxyz", clusters(1))
    proc = cli("validate", str(pipeline_file(project, "data/emt.extxyz")), cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    monkeypatch.chdir(elsewhere)
    pipeline = Pipeline.load(project / "pipeline.toml")
    assert pipeline.components["dataset"].settings["path"] == str(project / "data" / "emt.extxyz")
    # a file that exists only beside the working folder is not found
    with pytest.raises(ValidationError) as info:
        Pipeline.load(pipeline_file(project, "only-here.extxyz", name="other.toml"))
    assert f"[dataset] path: {project / 'only-here.extxyz'} does not exist" in one_line(info)
