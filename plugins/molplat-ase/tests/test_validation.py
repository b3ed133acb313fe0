"""Refusals at validate time: a model never trained on forces, bad settings, bad structure files."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ase_test_helpers import build, copper_pipeline

from molplat.errors import RunError, ValidationError
from molplat.pipeline.config import Pipeline

SIMULATORS = ["nve", "nvt_berendsen", "nvt_langevin", "npt", "relax"]


def problems(raw: dict) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Pipeline.load(raw)
    return caught.value.problems


@pytest.mark.parametrize("name", SIMULATORS)
def test_a_model_not_trained_on_forces_is_refused_unless_forced(copper_data, tmp_path, name):
    raw = copper_pipeline(copper_data, tmp_path, **{"trainer.task": "property", "simulate.name": name})
    (problem,) = problems(raw)
    assert problem.startswith(f"[simulate] '{name}': ")
    assert "[trainer] task = 'property' never trains on forces" in problem
    assert 'set [trainer] task = "energy_forces"' in problem and "force = true" in problem
    raw["simulate"]["force"] = True
    assert Pipeline.load(raw).simulators[0].settings["force"] is True
    assert Pipeline.load(copper_pipeline(copper_data, tmp_path, **{"simulate.name": name})).simulators


def test_validate_exits_2_with_one_line_naming_simulate(copper_data, tmp_path):
    raw = copper_pipeline(copper_data, tmp_path, **{"trainer.task": "property"})
    text = [f"[dataset]\nname = \"atoms_file\"\npath = \"{copper_data}\"\ntarget = \"energy\"\n",
            "[representation]\nname = \"adjacency_list\"\ncutoff = 4.0\n",
            "[model]\nname = \"schnet\"\ncutoff = 4.0\n", "[trainer]\ntask = \"property\"\n",
            "[[simulate]]\nname = \"relax\"\n", "[[simulate]]\nname = \"nve\"\nsteps = 10\n"]
    path = tmp_path / "md.toml"
    path.write_text("\n".join(text))
    assert raw  # the same pipeline as a dict is refused above; here through the CLI
    proc = subprocess.run([sys.executable, "-m", "molplat.cli", "validate", str(path)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    assert "[[simulate]] #1 'relax': relax moves atoms with the model's forces" in output
    assert "[[simulate]] #2 'nve': nve moves atoms" in output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("changes, expected", [
    ({"timestep": 0.0}, "[simulate] timestep: 0.0 must be above 0.0"),
    ({"timestep": 50.0}, "[simulate] timestep: 50.0 is above the maximum 10.0"),
    ({"steps": 0}, "[simulate] steps: 0 is below the minimum 1"),
    ({"temperature": -5.0}, "[simulate] temperature: -5.0 is below the minimum 0.0"),
    ({"dtype": "float16"}, "[simulate] dtype: 'float16' is not allowed"),
    ({"split": "all"}, "[simulate] split: 'all' is not allowed"),
    ({"taut": 10.0}, "[simulate]: unknown key 'taut'"),
    ({"structures_file": "missing.extxyz"}, "[simulate] structures_file"),
])
def test_bad_settings_are_one_problem_each(copper_data, tmp_path, changes, expected):
    raw = copper_pipeline(copper_data, tmp_path, **{"simulate.name": "nve"})
    raw["simulate"].update(changes)
    (problem,) = problems(raw)
    assert expected in problem, problem


def _garbage(folder: Path) -> dict[str, Path]:
    files = {"text": folder / "notes.extxyz", "pickle": folder / "frames.pckl", "empty": folder / "empty.xyz",
             "bad-number": folder / "bad.xyz"}
    files["text"].write_text("this is not a structure\n")
    files["pickle"].write_bytes(b"\x80\x04\x95\x00\x00\x00")
    files["empty"].write_text("")
    files["bad-number"].write_text("2\n\nCu 0 0 0\nCu 0 0 nan\n")
    return files


@pytest.mark.parametrize("kind, expected", [
    ("text", "cannot be read as extxyz"),
    ("pickle", "the format is pckl; use one of extxyz"),
    ("empty", "holds no structures"),
    ("bad-number", "positions that are not finite numbers"),
])
@pytest.mark.parametrize("setting", ["structures_file", "reference_file"])
def test_a_bad_structure_file_is_one_problem_naming_it(copper_data, tmp_path, kind, expected, setting):
    path = _garbage(tmp_path)[kind]
    raw = copper_pipeline(copper_data, tmp_path, **{"simulate.name": "nve", f"simulate.{setting}": str(path)})
    (problem,) = problems(raw)
    assert problem.startswith(f"[simulate] {setting}: {path}") or f"{setting}: {path}" in problem, problem
    assert expected in problem, problem


def test_npt_and_the_cell_filter_refuse_a_molecule_file(copper_data, tmp_path):
    import ase.io
    from ase.build import molecule

    path = tmp_path / "ethanol.xyz"
    ase.io.write(path, molecule("CH3CH2OH"))
    raw = copper_pipeline(copper_data, tmp_path, **{"simulate.name": "npt", "simulate.structures_file": str(path)})
    (problem,) = problems(raw)
    assert "frame 0 is not periodic in x, y and z; npt changes the cell" in problem
    raw["simulate"] = {"name": "relax", "structures_file": str(path), "cell_filter": True}
    (problem,) = problems(raw)
    assert "[simulate] cell_filter: structures_file frame 0 is not periodic" in problem
    raw["simulate"]["cell_filter"] = False
    assert Pipeline.load(raw).simulators


def test_npt_of_a_molecule_from_the_split_is_a_run_error(context):
    import dataclasses

    from ase.build import molecule

    from molplat.structure import Structure

    splits = {"test": [Structure.from_atoms(molecule("H2O"), id="water")]}
    context = dataclasses.replace(context, splits=splits)
    with pytest.raises(RunError, match="structure 'water' is not periodic in x, y and z; npt changes the cell"):
        build("npt", progress=False, steps=2).run(context)
