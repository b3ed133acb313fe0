"""The generated dev set: real GFN2-xTB physics, units, the checked cache, SMILES, and the CLI."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from molplat.errors import ValidationError
from molplat_md17 import generate
from molplat_md17.dataset import MD17
from molplat_md17.layout import read_npz
from molplat_sdk.damage import CACHE_DAMAGE, CACHE_DAMAGE_IDS

HARTREE_EV = 27.211386245988


def test_dev_set_is_a_thermal_ethanol_trajectory_in_ev(dev: MD17, tiny: dict) -> None:
    assert len(dev) == tiny["frames"] and dev.layout == "generated" and dev.name == "ethanol"
    assert "GFN2-xTB" in dev.theory and "DFT" in dev.theory
    assert dev.ids[:2] == ["ethanol:0", "ethanol:1"]
    energies = np.array([s.targets["energy"] for s in dev])
    # GFN2-xTB's ethanol is about -11.4 Hartree: a total energy in eV, not Hartree or kcal/mol
    assert -11.6 * HARTREE_EV < energies.min() < energies.max() < -11.2 * HARTREE_EV
    assert 0.01 < energies.std() < 2.0  # thermal fluctuations of a 9-atom molecule at 500 K: tenths of an eV
    forces = np.stack([s.forces for s in dev])
    assert 0.2 < np.abs(forces).mean() < 5.0  # eV/Å at 500 K
    np.testing.assert_allclose(forces.sum(axis=1), 0.0, atol=1e-3)  # no net force on a free molecule
    for s in dev:
        assert sorted(s.numbers.tolist()) == [1, 1, 1, 1, 1, 1, 6, 6, 8]
        co = np.linalg.norm(s.positions[1] - s.positions[2])  # RDKit keeps SMILES order: C, C, O, then H
        assert 1.25 < co < 1.65  # a C-O bond in Å
    moved = np.linalg.norm(dev[len(dev) - 1].positions - dev[0].positions, axis=1).max()
    assert moved > 0.05  # the molecule moves between frames


def test_forces_are_minus_the_energy_gradient(dev: MD17) -> None:
    """Central differences of the generator's own GFN2-xTB energy on one frame match the stored forces."""
    from ase import Atoms

    frame = dev[7]
    atoms = Atoms(numbers=frame.numbers, positions=frame.positions)
    atoms.calc = generate.xtb_calculator()
    with generate.one_thread():
        assert atoms.get_potential_energy() == pytest.approx(frame.targets["energy"], abs=1e-4)
        _check_gradient(atoms, frame)


def _check_gradient(atoms, frame) -> None:
    h = 2e-3  # Å; the energies converged 100 times tighter than tblite's default, so SCF noise stays far below
    # the tolerance
    for atom, axis in ((0, 0), (2, 1), (5, 2), (8, 0)):  # carbon, oxygen, two hydrogens
        energies = []
        for sign in (1, -1):
            displaced = atoms.copy()
            displaced.positions[atom, axis] += sign * h
            displaced.calc = generate.xtb_calculator(accuracy=0.01)
            energies.append(displaced.get_potential_energy())
        numerical = -(energies[0] - energies[1]) / (2 * h)
        assert numerical == pytest.approx(frame.forces[atom, axis], abs=0.01), (atom, axis)


def test_second_build_reads_the_cache(md17_cache: Path, dev: MD17, tiny: dict,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted((md17_cache / "md17").glob("ethanol-*.npz"))
    assert len(files) == 1 and not list((md17_cache / "md17").glob(".*.tmp"))
    mtime = files[0].stat().st_mtime_ns
    monkeypatch.setattr(generate, "run_md", lambda *a, **k: pytest.fail("the cache should have been used"))
    again = MD17(cache_dir=str(md17_cache), **tiny)
    assert again.ids == dev.ids and files[0].stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again[5].forces, dev[5].forces)
    assert again.fingerprint() == dev.fingerprint() == f"generated:{files[0].name}"


def test_the_cache_key_covers_every_setting() -> None:
    base = generate.MDSettings()
    key = generate.cache_key("ethanol", "CCO", base)
    assert generate.cache_key("ethanol", "CCO", generate.MDSettings()) == key
    changed = {"temperature": 300.0, "frames": 301, "interval": 11, "timestep": 0.25, "friction": 0.02,
               "equilibration": 0, "seed": 1}
    assert set(changed) == {f.name for f in dataclasses.fields(base)}
    keys = {generate.cache_key("ethanol", "CCO", dataclasses.replace(base, **{k: v})) for k, v in changed.items()}
    keys |= {generate.cache_key("ethanol", "OCC", base), generate.cache_key("smiles", "CCO", base)}
    assert key not in keys and len(keys) == len(changed) + 2


@pytest.mark.parametrize("damage", CACHE_DAMAGE, ids=CACHE_DAMAGE_IDS)
def test_a_damaged_cache_is_generated_again_with_one_notice(damage, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    settings = {"frames": 3, "interval": 2, "equilibration": 0, "progress": False}
    first = MD17(cache_dir=str(tmp_path), **settings)
    (path,) = (tmp_path / "md17").glob("*.npz")
    damage(path)
    capsys.readouterr()
    again = MD17(cache_dir=str(tmp_path), **settings)
    err = capsys.readouterr().err
    assert err.count("notice:") == 1 and str(path) in err and "rebuilding" in err, err
    for i in range(len(first)):
        np.testing.assert_allclose(again[i].positions, first[i].positions, atol=1e-8)
        assert again[i].targets["energy"] == pytest.approx(first[i].targets["energy"], abs=1e-6)
    MD17(cache_dir=str(tmp_path), **settings)
    assert capsys.readouterr().err == ""  # sound again


def test_any_molecule_from_smiles(tmp_path: Path) -> None:
    ds = MD17(smiles="C", frames=2, interval=1, equilibration=0, progress=False, cache_dir=str(tmp_path))
    assert sorted(ds[0].numbers.tolist()) == [1, 1, 1, 1, 6] and ds.ids == ["C:0", "C:1"]
    assert any((tmp_path / "md17").glob("smiles-*.npz"))


def test_bad_generation_settings(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"smiles: RDKit cannot read 'C1CC'"):
        MD17(smiles="C1CC", cache_dir=str(tmp_path))
    with pytest.raises(ValidationError, match=r"molecule: 'ethanal' is not a known molecule \(ethanol, uracil"):
        MD17(molecule="ethanal", cache_dir=str(tmp_path))


def test_park_et_al_molecules_are_known_and_embed() -> None:
    from molplat_md17.plugin import MOLECULE_NAMES

    assert tuple(generate.MOLECULES) == MOLECULE_NAMES
    formulas = {"ethanol": "C2H6O", "uracil": "C4H4N2O2", "naphthalene": "C10H8", "n-propanol": "C3H8O",
                "iso-propanol": "C3H8O", "pyrimidine": "C4H4N2"}
    from ase import Atoms

    for name, formula in formulas.items():
        numbers, positions, charge, multiplicity = generate.embed(generate.MOLECULES[name])
        assert Atoms(numbers=numbers).get_chemical_formula(mode="hill") == formula and charge == 0
        assert multiplicity == 1 and np.isfinite(positions).all()


# -- python -m molplat_md17 generate -------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "molplat_md17", *args], capture_output=True, text=True, timeout=300)


def test_cli_writes_the_md17_layout(tmp_path: Path) -> None:
    out = tmp_path / "md17_ethanol.npz"
    proc = _cli("generate", "ethanol", "--frames", "3", "--interval", "2", "--equilibration", "0", "--out", str(out),
                "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 3 frames of ethanol" in proc.stdout
    with np.load(out, allow_pickle=False) as data:
        assert set(data.files) == {"type", "name", "theory", "z", "R", "E", "F", "r_unit", "e_unit"}
        assert data["E"].shape == (3, 1) and data["R"].shape == data["F"].shape == (3, 9, 3)
        assert str(data["e_unit"]) == "eV" and str(data["r_unit"]) == "Ang" and "GFN2-xTB" in str(data["theory"])
    t = read_npz(out)  # read back as MD17: the e_unit key keeps eV as eV
    assert t.layout == "md17" and -11.6 * HARTREE_EV < t.energies.min() < -11.2 * HARTREE_EV
    # the same settings through the dataset give the same frames
    ds = MD17(frames=3, interval=2, equilibration=0, progress=False, cache_dir=str(tmp_path / "cache"))
    np.testing.assert_allclose(t.positions[2], ds[2].positions, atol=1e-8)
    assert MD17(path=str(out))[1].targets["energy"] == pytest.approx(ds[1].targets["energy"], abs=1e-6)


def test_cli_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    for args, fragment in ((("ethanal",), "not a known molecule"), (("ethanol", "--frames", "0"), "--frames: 0"),
                           (("ethanol", "--timestep", "9"), "--timestep"),
                           (("x", "--smiles", "C1CC"), "RDKit cannot read")):
        proc = _cli("generate", *args, "--out", str(tmp_path / "x.npz"), "--no-progress")
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], proc.stderr
    assert not (tmp_path / "x.npz").exists()


# -- molplat md17 generate (the same generator as a molplat subcommand) ---------------------------
def _molplat(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "import sys; from molplat.cli import main; sys.exit(main())", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_molplat_md17_generate_writes_what_the_module_writes(tmp_path: Path) -> None:
    out = tmp_path / "md17_ethanol.npz"
    proc = _molplat("md17", "generate", "ethanol", "--frames", "2", "--interval", "2", "--equilibration", "0",
                    "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 2 frames of ethanol" in proc.stdout
    t = read_npz(out)
    ds = MD17(frames=2, interval=2, equilibration=0, progress=False, cache_dir=str(tmp_path / "cache"))
    np.testing.assert_allclose(t.positions[1], ds[1].positions, atol=1e-8)


def test_molplat_md17_generate_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    proc = _molplat("md17", "generate", "ethanal", "--out", str(tmp_path / "x.npz"), "--no-progress")
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error:") and "not a known molecule" in line
    helped = _molplat("md17", "generate", "--help")
    assert helped.returncode == 0 and "usage: molplat md17 generate" in helped.stdout and "--frames" in helped.stdout
