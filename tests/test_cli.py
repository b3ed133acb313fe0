"""The `molplat` command: each command's output, and every failure a user can reach, through the real CLI.

Two small real runs back the predict tests, both trained through `molplat run`:
an energy-and-forces run on rattled copper cells labelled by ASE's EMT potential (the
`toy_emt` dataset of the molplat-toy fixture distribution, pip-installed into a private
folder so the child processes discover it through its entry point, as any plugin), and
a property run of a tiny SchNet on QM9's HOMO-LUMO gap.
"""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.io import read, write

from molplat import cli

TOY_FIXTURE = Path(__file__).parent / "plugin_fixtures" / "molplat-toy"

EMT_PIPELINE = """
[dataset]
name = "toy_emt"
count = {count}
[representation]
name = "adjacency_list"
cutoff = 4.0
[model]
name = "schnet"
hidden_channels = 8
num_filters = 8
num_interactions = 1
num_gaussians = 8
cutoff = 4.0
max_atomic_number = 30
[trainer]
task = "energy_forces"
max_epochs = {epochs}
patience = 1000
batch_size = 8
progress_bar = false
[output]
dir = "{runs}"
plots = false
"""

QM9_PIPELINE = """
[dataset]
name = "qm9"
target = "gap"
[representation]
name = "adjacency_list"
cutoff = 3.0
[model]
name = "schnet"
hidden_channels = 8
num_filters = 8
num_interactions = 1
num_gaussians = 8
cutoff = 3.0
readout = "mean"
[trainer]
max_epochs = 1
batch_size = 128
progress_bar = false
[output]
dir = "{runs}"
plots = false
"""


# -- running the command ---------------------------------------------------------------------
def molplat(*args: str, site: Path | None = None, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`molplat ARGS` in a child process, with the plugins in ``site`` discoverable."""
    environment = {k: v for k, v in os.environ.items() if k != "MOLPLAT_DISABLE_PLUGINS"}
    environment.update(env or {})
    if site is not None:
        environment["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-m", "molplat.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=environment)


def invoke(capsys, *args: str) -> tuple[int, str, str]:
    """`molplat ARGS` in this process, through ``molplat.cli.main``: (exit code, stdout, stderr)."""
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def table_rows(text: str, first: str) -> list[list[str]]:
    """The rows of a printed table whose first cell is ``first``, split into cells on runs of 2+ spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.startswith(first + " ")]


# -- the runs the predict tests use ----------------------------------------------------------
@pytest.fixture(scope="module")
def toy_site(tmp_path_factory) -> Path:
    """The molplat-toy fixture distribution installed into a private folder (entry point included)."""
    target = tmp_path_factory.mktemp("toy-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(TOY_FIXTURE)], check=True)
    return target


@pytest.fixture
def toy_plugin(toy_site, monkeypatch) -> None:
    """For one test, this process discovers molplat-toy as well (a fresh plugin manager, the site on sys.path)."""
    import molplat.plugins

    monkeypatch.syspath_prepend(str(toy_site))
    monkeypatch.setattr(molplat.plugins, "_managers", {})


@pytest.fixture(scope="module")
def emt_run(toy_site, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("emt")
    pipeline = root / "emt.toml"
    pipeline.write_text(EMT_PIPELINE.format(count=24, epochs=2, runs=root / "runs"))
    proc = molplat("run", str(pipeline), site=toy_site, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (root / "runs").iterdir()
    return run_dir, proc


@pytest.fixture(scope="module")
def qm9_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("qm9")
    pipeline = root / "qm9.toml"
    pipeline.write_text(QM9_PIPELINE.format(runs=root / "runs"))
    proc = molplat("run", str(pipeline), cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (root / "runs").iterdir()
    return run_dir, proc


def emt_frames(elements: list[str], seed: int = 0) -> list:
    """Rattled fcc cells of ``elements`` with their EMT energies and forces attached."""
    frames = []
    for k, element in enumerate(elements):
        atoms = bulk(element, "fcc", a=3.6, cubic=True)
        atoms.rattle(0.06, seed=seed + k)
        atoms.calc = EMT()
        atoms.get_forces()
        frames.append(atoms)
    return frames


# -- help, usage errors, completion ----------------------------------------------------------
def test_help_on_every_command_and_every_option_has_help(capsys):
    code, out, _ = invoke(capsys, "--help")
    assert code == 0 and "Exit codes: 0 success, 2 invalid input" in out
    assert set(cli.cli.commands) == {"list-plugins", "show", "validate", "preprocess", "run", "predict",
                                     "new-plugin", "install", "completion"}
    for name, command in cli.cli.commands.items():
        code, out, _ = invoke(capsys, name, "--help")
        assert code == 0 and out.startswith(f"Usage: molplat {name}"), name
        assert command.help, name
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, f"molplat {name} {param.opts[0]} has no help text"
    code, out, _ = invoke(capsys, "--version")
    assert code == 0 and out.startswith("molplat ")


@pytest.mark.parametrize("args, fragment", [
    (["run", "p.toml", "--frobnicate"], "molplat run: No such option '--frobnicate'"),
    (["list-plugins", "--kind", "engine"], "molplat list-plugins: Invalid value for '--kind'"),
    (["predict", "runs/x"], "molplat predict: Missing argument 'FILES...'"),
    (["trian"], "molplat: No such command 'trian'"),
])
def test_usage_errors_are_one_line_and_exit_2(capsys, args, fragment):
    code, out, err = invoke(capsys, *args)
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert fragment in line and "--help`" in line


def test_completion_prints_scripts_that_complete_commands_and_component_names(capsys):
    for shell, marker in (("bash", "complete -o nosort -F"), ("zsh", "#compdef molplat"), ("fish", "complete ")):
        code, out, _ = invoke(capsys, "completion", shell)
        assert code == 0 and "_MOLPLAT_COMPLETE" in out and marker in out, shell
    env = {"_MOLPLAT_COMPLETE": "bash_complete", "COMP_WORDS": "molplat sh", "COMP_CWORD": "1"}
    assert molplat(env=env).stdout.split() == ["plain,show"]
    env.update(COMP_WORDS="molplat show molplat-sch", COMP_CWORD="2")
    assert molplat(env=env).stdout.split() == ["plain,molplat-schnet:schnet"]


def test_completion_without_a_shell_names_the_choices(capsys, monkeypatch):
    monkeypatch.delenv("SHELL", raising=False)
    code, _, err = invoke(capsys, "completion")
    assert code == 2 and "molplat completion bash" in one_error_line(err)
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")
    code, out, _ = invoke(capsys, "completion")
    assert code == 0 and "#compdef molplat" in out


# -- list-plugins and show -------------------------------------------------------------------
def test_list_plugins_warns_about_unknown_names_in_the_environment():
    proc = molplat("list-plugins", "--json", env={"MOLPLAT_DISABLE_PLUGINS": "molplat-shnet"})
    assert proc.returncode == 0
    assert {p["name"] for p in json.loads(proc.stdout)} >= {"molplat", "molplat-schnet"}
    assert proc.stderr.strip() == ("warning: MOLPLAT_DISABLE_PLUGINS names 'molplat-shnet', which is no installed "
                                   "plugin; did you mean 'molplat-schnet'?")


def _clashing_manager():
    """The installed plugins plus an in-process one that registers a second model called schnet."""
    import types

    import molplat
    from molplat.plugins import PluginManager

    module = types.ModuleType("second_schnet")
    module.MOLPLAT_API = ">=1.0,<2"

    @molplat.hookimpl
    def molplat_models():
        return [molplat.ComponentSpec(name="schnet", kind="model", factory="molplat_schnet.model:SchNet",
                                      summary="the same SchNet under a second distribution")]

    module.molplat_models = molplat_models
    return PluginManager(extra={"second-schnet": module})


def test_list_plugins_and_show_with_two_components_of_one_name(capsys, monkeypatch):
    import molplat.plugins

    manager = _clashing_manager()
    monkeypatch.setattr(molplat.plugins, "get_plugin_manager", lambda disabled=(): manager)
    code, out, _ = invoke(capsys, "list-plugins")
    assert code == 0
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert any(line.startswith("warning: molplat-schnet: model 'schnet' is also registered") and
               "'molplat-schnet:schnet'" in line for line in warnings)
    assert any(line.startswith("warning: second-schnet: model 'schnet'") for line in warnings)
    code, out, _ = invoke(capsys, "show", "schnet")
    assert code == 0
    assert "qualified name: molplat-schnet:schnet" in out and "qualified name: second-schnet:schnet" in out
    code, out, _ = invoke(capsys, "show", "second-schnet:schnet")
    assert code == 0 and out.startswith("schnet  (model, plugin second-schnet)")
    assert "molplat-schnet:schnet" not in out


def test_show_a_dataset_lists_its_targets_with_units_and_usability(capsys):
    code, out, _ = invoke(capsys, "show", "molplat-qm9:qm9")
    assert code == 0
    assert out.startswith("qm9  (dataset, plugin molplat-qm9)\n  qualified name: molplat-qm9:qm9\n")
    assert "  cite: " in out
    assert out.count("target ") >= 1 and "extensive" in out and "usable" in out
    rows = {row[0]: row for row in table_rows(out, "u0") + table_rows(out, "gap") + table_rows(out, "alpha_xx")
            + table_rows(out, "mulliken_charge")}
    assert rows["u0"][:5] == ["u0", "eV", "graph", "yes", "yes"]
    assert rows["gap"][:5] == ["gap", "eV", "graph", "no", "yes"]
    assert rows["alpha_xx"][4] == "no"  # tensor components in the stored frame cannot be learnt
    assert rows["mulliken_charge"][2] == "atom"
    assert "default target: gap" in out
    code, _, err = invoke(capsys, "show", "qm9", "--kind", "model")
    assert code == 2 and "no component named 'qm9' of kind model" in one_error_line(err)


def test_show_prints_bounds_and_choices_of_settings(capsys):
    code, out, _ = invoke(capsys, "show", "schnet")
    assert code == 0
    (readout,) = table_rows(out, "readout")
    assert readout[:4] == ["readout", "str", "'sum'", "'sum', 'mean'"]


def test_validate_names_every_stage_component(capsys):
    examples = Path(__file__).resolve().parents[1] / "examples"
    code, out, _ = invoke(capsys, "validate", str(examples / "qm9-explain.toml"))
    assert code == 0 and "explain=saliency+grad_cam+umap+rogi" in out
    code, out, _ = invoke(capsys, "validate", str(examples / "md.toml"))
    assert code == 0 and "simulate=nve+nvt_berendsen" in out


# -- validate, run, preprocess: invalid input and failures -----------------------------------
def test_a_pipeline_that_is_not_utf8_is_one_line_exit_2(capsys, tmp_path):
    pipeline = tmp_path / "latin1.toml"
    text = '[dataset]\nname = "qm9"  # Schrödinger\n'
    pipeline.write_bytes(text.encode("latin-1"))
    code, _, err = invoke(capsys, "validate", str(pipeline))
    assert code == 2
    assert one_error_line(err) == (f"error: {pipeline}: not UTF-8 text (byte 0xf6 at offset {text.index('ö')}); "
                                   f"save the file as UTF-8")


def test_a_missing_pipeline_is_one_line_exit_2(capsys, tmp_path):
    for command in ("validate", "run", "preprocess"):
        code, _, err = invoke(capsys, command, str(tmp_path / "nope.toml"))
        assert code == 2 and "pipeline file not found" in one_error_line(err)


def test_a_failure_while_running_exits_1(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(QM9_PIPELINE.format(runs=blocker / "runs"))
    code, _, err = invoke(capsys, "run", str(pipeline))
    assert code == 1
    assert one_error_line(err) == (f"error: [output] dir: {blocker} is a file, not a folder; set [output] dir "
                                   f"to a folder")


def test_preprocess_without_a_store_is_one_line_exit_2(capsys, tmp_path):
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(QM9_PIPELINE.format(runs=tmp_path / "runs"))
    code, out, err = invoke(capsys, "preprocess", str(pipeline))
    assert code == 2 and out == ""
    assert one_error_line(err).startswith(f"error: {pipeline}: [data] store: not set")


def test_preprocess_writes_the_store_once(toy_plugin, capsys, tmp_path):
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(EMT_PIPELINE.format(count=12, epochs=1, runs=tmp_path / "runs") + '[data]\nstore = "store"\n')
    code, out, err = invoke(capsys, "preprocess", str(pipeline))
    assert code == 0, err
    (folder,) = (tmp_path / "store").iterdir()
    assert f"wrote {folder} (12 structures, 12 with every target of energy)" in out
    info = json.loads((folder / "store.json").read_text())
    assert info["count"] == 12 and info["elements"] == [29]
    code, out, _ = invoke(capsys, "preprocess", str(pipeline))
    assert code == 0 and f"up to date: {folder} (12 structures" in out
    assert not (tmp_path / "runs").exists()  # preprocessing makes no run directory


def test_an_interrupted_run_exits_1_with_the_resume_command(toy_site, tmp_path):
    pipeline = tmp_path / "long.toml"
    pipeline.write_text(EMT_PIPELINE.format(count=16, epochs=1000, runs=tmp_path / "runs"))
    environment = dict(os.environ, PYTHONPATH=str(toy_site))
    # SIG_DFL as in a terminal: a run started from a background job (`nohup make test &`) inherits SIGINT
    # ignored, Ctrl+C cannot reach it, and it trains on to exit 0 (what two CI runs saw)
    proc = subprocess.Popen([sys.executable, "-m", "molplat.cli", "run", str(pipeline)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 600  # generous: on a machine loaded 5x over, start-up and the first epoch took >120 s
    while time.time() < deadline and proc.poll() is None and not list(tmp_path.glob("runs/*/checkpoints/last.ckpt")):
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=600)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert proc.returncode == 1
    assert f"--resume {run_dir}" in err and "Traceback" not in err


# -- run: the final table --------------------------------------------------------------------
def test_an_energy_forces_run_ends_with_energy_and_forces_rows(emt_run):
    run_dir, proc = emt_run
    summary = json.loads((run_dir / "summary.json").read_text())
    header = next(line for line in proc.stdout.splitlines() if line.startswith("target "))
    assert header.split() == ["target", "split", "MAE", "RMSE", "R²"]
    forces = table_rows(proc.stdout, "forces [eV/Å]")
    assert [row[1] for row in forces] == ["val", "test", "test, predicting zero forces"]
    for row in forces[:2]:
        assert row[2:] == [f"{summary['forces'][row[1]]['mae']:.5g}", f"{summary['forces'][row[1]]['rmse']:.5g}"]
    assert forces[2][2:] == [f"{summary['forces']['baseline_mae']:.5g}"]
    energy = table_rows(proc.stdout, "energy [eV]")
    assert [row[1] for row in energy] == ["val", "test", "test, predicting the per-element references"]
    task = summary["tasks"]["energy"]
    assert energy[1][2:] == [f"{task['test']['mae']:.5g}", f"{task['test']['rmse']:.5g}",
                             "-" if task["test"]["r2"] is None else f"{task['test']['r2']:.5g}"]
    assert energy[2][2] == f"{task['baseline_mae']:.5g}"
    assert proc.stdout.rstrip().endswith(f"run directory: {run_dir}")


def test_a_property_run_ends_with_the_training_mean_baseline(qm9_run):
    run_dir, proc = qm9_run
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = table_rows(proc.stdout, "gap [eV]")
    assert [row[1] for row in rows] == ["val", "test", "test, predicting the training mean"]
    assert rows[0][2] == f"{summary['tasks']['gap']['val']['mae']:.5g}"
    assert rows[2][2] == f"{summary['tasks']['gap']['baseline_mae']:.5g}"
    assert not table_rows(proc.stdout, "forces [eV/Å]")


def test_the_run_table_of_classification_heads_and_an_undefined_r2():
    """evaluate's summary shape for a bce head beside a regression head whose test values did not vary."""
    summary = {"tasks": {
        "stable": {"units": "", "level": "graph", "loss": "bce", "val": {"accuracy": 0.75, "roc_auc": 0.8125},
                   "test": {"accuracy": 0.5, "roc_auc": None}, "baseline_accuracy": 0.625},
        "gap": {"units": "eV", "level": "graph", "loss": "mse", "val": {"mae": 0.25, "rmse": 0.5, "r2": 0.5},
                "test": {"mae": 0.125, "rmse": 0.25, "r2": None}, "baseline_mae": 1.5, "baseline": "training mean"},
    }}
    text = cli.run_report(summary)
    assert table_rows(text, "stable") == [["stable", "val", "0.75", "0.8125"], ["stable", "test", "0.5", "-"],
                                          ["stable", "test, predicting the majority class", "0.625"]]
    assert table_rows(text, "gap [eV]") == [["gap [eV]", "val", "0.25", "0.5", "0.5"],
                                            ["gap [eV]", "test", "0.125", "0.25", "-"],
                                            ["gap [eV]", "test, predicting the training mean", "1.5"]]
    assert "accuracy" in text and "ROC-AUC" in text and "forces" not in text


# -- predict ---------------------------------------------------------------------------------
def test_predict_extxyz_round_trips_energy_and_forces(emt_run, toy_plugin, capsys, tmp_path):
    """The written forces are minus the gradient of the written energies, atom by atom (central differences)."""
    run_dir, _ = emt_run
    base = bulk("Cu", "fcc", a=3.6, cubic=True)
    base.rattle(0.1, seed=3)
    h = 5e-3
    frames = [base]
    for atom in range(len(base)):
        for axis in range(3):
            for sign in (1, -1):
                moved = base.copy()
                moved.positions[atom, axis] += sign * h
                frames.append(moved)
    source = tmp_path / "displaced.extxyz"
    write(source, frames)
    out = tmp_path / "predicted.extxyz"
    code, stdout, err = invoke(capsys, "predict", str(run_dir), str(source), "-o", str(out))
    assert code == 0, err
    assert f"wrote predictions for {len(frames)} structures to {out}" in stdout
    images = read(out, index=":")
    assert len(images) == len(frames)
    energies = np.array([image.get_potential_energy() for image in images])
    forces = images[0].get_forces()
    assert forces.shape == (4, 3) and np.abs(forces).max() > 1e-4
    numeric = -(energies[1::2] - energies[2::2]) / (2 * h)
    np.testing.assert_allclose(forces.ravel(), numeric, atol=3e-5)
    np.testing.assert_allclose(images[0].positions, base.positions, atol=1e-7)
    # the CSV of the same prediction holds the same energies, every digit, and the forces per atom beside it
    csv_out = tmp_path / "predicted.csv"
    code, stdout, _ = invoke(capsys, "predict", str(run_dir), str(source), "-o", str(csv_out))
    assert code == 0 and f"to {csv_out}, {tmp_path / 'predicted.atoms.csv'}" in stdout
    rows = list(csv.DictReader(open(csv_out)))
    assert [float(r["predicted"]) for r in rows] == energies.tolist()
    assert {r["target"] for r in rows} == {"energy"} and {r["units"] for r in rows} == {"eV"}
    atom_rows = list(csv.DictReader(open(tmp_path / "predicted.atoms.csv")))
    first = [r for r in atom_rows if r["index"] == "0"]
    assert [r["quantity"] for r in first[:3]] == ["force_x", "force_y", "force_z"] and first[0]["units"] == "eV/Å"
    np.testing.assert_allclose([float(r["predicted"]) for r in first], forces.ravel(), atol=1e-8)


def test_predict_prints_errors_against_the_reference_energies_and_forces(emt_run, toy_plugin, capsys, tmp_path):
    run_dir, _ = emt_run
    frames = emt_frames(["Cu", "Cu", "Cu"])
    source = tmp_path / "reference.extxyz"
    write(source, frames)
    out = tmp_path / "p.csv"
    code, stdout, err = invoke(capsys, "predict", str(run_dir), str(source), "-o", str(out))
    assert code == 0, err
    rows = list(csv.DictReader(open(out)))
    reference = [atoms.get_potential_energy() for atoms in frames]
    assert [float(r["reference"]) for r in rows] == reference
    predicted = np.array([float(r["predicted"]) for r in rows])
    error = predicted - reference
    assert [float(r["error"]) for r in rows] == error.tolist()
    (energy,) = table_rows(stdout, "energy [eV]")
    assert energy[1:] == ["3 structures", f"{np.abs(error).mean():.5g}", f"{np.sqrt((error ** 2).mean()):.5g}"]
    atom_rows = list(csv.DictReader(open(tmp_path / "p.atoms.csv")))
    assert len(atom_rows) == 3 * 4 * 3
    reference_forces = np.concatenate([atoms.get_forces() for atoms in frames]).ravel()
    np.testing.assert_allclose([float(r["reference"]) for r in atom_rows], reference_forces, atol=1e-8)
    force_error = np.array([float(r["error"]) for r in atom_rows])
    (forces,) = table_rows(stdout, "forces [eV/Å]")
    assert forces[1:] == ["12 atoms", f"{np.abs(force_error).mean():.5g}", f"{np.sqrt((force_error ** 2).mean()):.5g}"]
    # without -o: the predictions as a table on stdout, the same errors below it
    code, stdout, _ = invoke(capsys, "predict", str(run_dir), str(source))
    assert code == 0
    printed = table_rows(stdout, str(source))
    assert [row[2] for row in printed] == ["Cu4"] * 3 and [float(row[3]) for row in printed] == predicted.tolist()
    assert table_rows(stdout, "energy [eV]") == [energy]


def test_predict_csv_for_a_property_model_agrees_with_the_python_api(qm9_run, tmp_path):
    from molplat import load_model

    run_dir, _ = qm9_run
    mols = [molecule("CH4"), molecule("H2O"), molecule("C6H6")]
    for mol, gap in zip(mols, (10.0, 8.5, 6.5)):
        mol.info["gap"] = gap  # a reference value under the target's name
    write(tmp_path / "mols.extxyz", mols)
    out = tmp_path / "gap.csv"
    proc = molplat("predict", str(run_dir), str(tmp_path / "mols.extxyz"), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(out)))
    assert [r["formula"] for r in rows] == ["CH4", "H2O", "C6H6"] and {r["target"] for r in rows} == {"gap"}
    expected = load_model(run_dir).predict(mols)["y"]
    assert [float(r["predicted"]) for r in rows] == expected.tolist()  # every digit, not 6 significant ones
    assert not (tmp_path / "gap.atoms.csv").exists()
    (gap,) = table_rows(proc.stdout, "gap [eV]")
    assert gap[1:3] == ["3 structures", f"{np.abs(expected - [10.0, 8.5, 6.5]).mean():.5g}"]


def test_predict_warns_about_elements_never_seen_in_training(emt_run, toy_plugin, capsys, tmp_path):
    run_dir, _ = emt_run
    write(tmp_path / "ni.xyz", emt_frames(["Ni"]))
    code, stdout, err = invoke(capsys, "predict", str(run_dir), str(tmp_path / "ni.xyz"))
    assert code == 0 and "Ni4" in stdout
    assert err.strip() == (f"warning: {tmp_path / 'ni.xyz'}: elements Ni never occurred in training; "
                           f"predictions for structures with them are extrapolations")


def test_predict_refuses_an_element_the_model_cannot_embed(emt_run, toy_plugin, capsys, tmp_path):
    run_dir, _ = emt_run
    write(tmp_path / "cu.xyz", emt_frames(["Cu"]))
    write(tmp_path / "ag.xyz", [bulk("Ag", "fcc", a=4.09, cubic=True)])
    code, stdout, err = invoke(capsys, "predict", str(run_dir), str(tmp_path / "cu.xyz"), str(tmp_path / "ag.xyz"))
    assert code == 2 and stdout == ""
    assert one_error_line(err) == (f"error: {tmp_path / 'ag.xyz'}: Ag (Z = 47) beyond the 30 elements this "
                                   f"model embeds; leave those structures out")


def test_predict_refuses_a_checkpoint_outside_the_run(emt_run, toy_plugin, capsys, tmp_path):
    run_dir, _ = emt_run
    write(tmp_path / "cu.xyz", emt_frames(["Cu"]))
    for name in ("../../x.ckpt", ".."):
        code, _, err = invoke(capsys, "predict", str(run_dir), str(tmp_path / "cu.xyz"), "--checkpoint", name)
        assert code == 2
        assert one_error_line(err).startswith(f"error: --checkpoint {name!r}: give best, last or the name")
    code, stdout, _ = invoke(capsys, "predict", str(run_dir), str(tmp_path / "cu.xyz"), "--checkpoint", "last")
    assert code == 0 and "Cu4" in stdout


def test_predict_on_files_it_cannot_use_is_one_line_exit_2(emt_run, toy_plugin, capsys, tmp_path):
    run_dir, _ = emt_run
    (tmp_path / "garbage.xyz").write_text("not a structure\n")
    (tmp_path / "nan.xyz").write_text("2\n\nCu 0 0 0\nCu 1.8 1.8 0\n2\n\nCu 0 0 0\nCu nan 0 0\n")
    write(tmp_path / "cu.xyz", emt_frames(["Cu"]))
    cases = [
        ([str(tmp_path / "missing.xyz")], f"error: {tmp_path / 'missing.xyz'}: file not found"),
        ([str(tmp_path / "garbage.xyz")], f"error: {tmp_path / 'garbage.xyz'}: ASE cannot read it"),
        ([str(tmp_path / "nan.xyz")], f"error: {tmp_path / 'nan.xyz'}: structure 1: structure 'Cu2': positions are "
                                      f"not all finite"),
        ([str(tmp_path / "cu.xyz"), "-o", str(tmp_path / "out.txt")], f"error: -o {tmp_path / 'out.txt'}: give"),
        ([str(tmp_path)], "error: molplat predict: Invalid value for 'FILES...'"),
    ]
    for args, start in cases:
        code, stdout, err = invoke(capsys, "predict", str(run_dir), *args)
        assert code == 2 and stdout == "", err
        assert one_error_line(err).startswith(start)
    assert not (tmp_path / "out.txt").exists()
