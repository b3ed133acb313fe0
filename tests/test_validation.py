"""Every pipeline validation error: one line each, naming table, key and fix; nothing runs."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from molplat.errors import ValidationError
from molplat.pipeline.config import Pipeline

GOOD = {
    "dataset": {"name": "qm9", "subset": "dev", "target": "gap"},
    "representation": {"name": "adjacency_list", "cutoff": 5.0},
    "model": {"name": "schnet", "hidden_channels": 16},
    "trainer": {"name": "cpu", "max_epochs": 1},
}


def problems_of(change) -> list[str]:
    pipeline = copy.deepcopy(GOOD)
    change(pipeline)
    with pytest.raises(ValidationError) as info:
        Pipeline.load(pipeline)
    return info.value.problems


def only(change) -> str:
    problems = problems_of(change)
    assert len(problems) == 1, problems
    return problems[0]


def test_good_pipeline_resolves_defaults():
    pipeline = Pipeline.load(GOOD)
    assert pipeline.components["model"].settings["hidden_channels"] == 16
    assert pipeline.components["trainer"].settings["optimizer"] == "adamw"
    assert pipeline.dataset_common == {"target": "gap", "split": [0.8, 0.1, 0.1], "split_seed": 0}
    resolved = pipeline.resolved()
    assert resolved["plugins"]["versions"]["molplat-schnet"]
    assert Pipeline.load({k: v for k, v in resolved.items()}).resolved() == resolved


def test_trainer_defaults_to_cpu():
    pipeline = Pipeline.load({k: v for k, v in GOOD.items() if k != "trainer"})
    assert pipeline.components["trainer"].spec.name == "cpu"


def test_unknown_table_with_close_match():
    msg = only(lambda p: p.update(modle={"name": "schnet"}))
    assert msg.startswith("unknown table [modle]; did you mean 'model'?")
    assert "allowed tables: dataset, representation, model, trainer" in msg


def test_missing_table_lists_choices():
    msg = only(lambda p: p.pop("model"))
    assert "missing table [model]" in msg and "schnet" in msg and "cgcnn" in msg


def test_missing_name():
    msg = only(lambda p: p["model"].pop("name"))
    assert msg.startswith("[model]: missing key 'name'; choose one of:") and "schnet" in msg


def test_misspelt_component():
    msg = only(lambda p: p["model"].update(name="shnet"))
    assert msg.startswith("[model] name: unknown model 'shnet'; did you mean 'schnet'?")
    assert "available: " in msg


def test_unknown_key_is_an_error_with_close_match():
    msg = only(lambda p: p["model"].update(hiden_channels=8))
    assert msg.startswith("[model]: unknown key 'hiden_channels' for model 'schnet'; did you mean 'hidden_channels'?")
    assert "allowed keys:" in msg


def test_wrong_type():
    msg = only(lambda p: p["trainer"].update(batch_size="32"))
    assert msg == "[trainer] batch_size: expected int, got str '32'"


def test_value_not_in_choices_lists_allowed():
    msg = only(lambda p: p["trainer"].update(optimizer="rmsprop"))
    assert msg == "[trainer] optimizer: 'rmsprop' is not allowed; allowed values: 'sgd', 'adam', 'adamw', 'lamb'"


def test_value_out_of_range():
    assert only(lambda p: p["trainer"].update(lr=-1.0)) == "[trainer] lr: -1.0 is below the minimum 0.0"


def test_model_paired_with_representation_it_does_not_accept():
    msg = only(lambda p: p["representation"].update(name="adjacency_matrix"))
    assert msg.startswith("[model] 'schnet' does not accept representation 'adjacency_matrix'")
    assert "it accepts: adjacency_list" in msg


def test_model_cutoff_beyond_the_representation_cutoff():
    msg = only(lambda p: p["model"].update(cutoff=6.0))
    assert msg == ("[model] cutoff: 6.0 Å is beyond [representation] cutoff 5.0 Å, so pairs in between would be "
                   "missing; set [representation] cutoff = 6.0")


def test_target_the_dataset_does_not_have():
    msg = only(lambda p: p["dataset"].update(target="gapp"))
    assert "[dataset] target: 'gapp' is not a target of dataset 'qm9'; did you mean 'gap'?" in msg


def test_common_dataset_key_with_a_wrong_type_is_reported_once():
    assert only(lambda p: p["dataset"].update(split_seed="0")) == "[dataset] split_seed: expected int, got str '0'"


def test_bad_split():
    assert "must be three non-negative fractions" in only(lambda p: p["dataset"].update(split=[0.5, 0.6, 0.1]))


def test_unknown_output_key():
    msg = only(lambda p: p.update(output={"dri": "x"}))
    assert msg.startswith("[output]: unknown key 'dri' for [output]; did you mean 'dir'?")


def test_every_problem_is_reported_at_once():
    def many(p):
        p["model"]["hiden_channels"] = 8
        p["trainer"]["optimizer"] = "rmsprop"
        p["dataset"]["sbuset"] = "dev"
    assert len(problems_of(many)) == 3


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "molplat.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_validate_exit_codes_and_no_run_directory(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[dataset]\nname = "qm9"\n[representation]\nname = "adjacency_list"\n[model]\nname = "schnet"\n')
    proc = cli("validate", str(good), cwd=tmp_path)
    assert proc.returncode == 0 and "valid" in proc.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text() + 'hidden_channel = 3\n[output]\ndir = "myruns"\n')
    for command in ("validate", "run"):
        proc = cli(command, str(bad), cwd=tmp_path)
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines() == [
            f"error: {bad}: [model]: unknown key 'hidden_channel' for model 'schnet'; did you mean "
            f"'hidden_channels'? (allowed keys: " + proc.stderr.split("(allowed keys: ")[1].strip()]
    assert not (tmp_path / "myruns").exists() and not (tmp_path / "runs").exists()


def test_cli_invalid_toml_and_missing_file(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[dataset\nname = 'qm9'\n")
    proc = cli("run", str(broken), cwd=tmp_path)
    assert proc.returncode == 2 and f"{broken}: not valid TOML" in proc.stderr
    proc = cli("validate", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert proc.returncode == 2 and "pipeline file not found" in proc.stderr


def test_dataset_rejecting_its_settings_is_invalid_input_and_creates_no_run_directory(tmp_path):
    root = tmp_path / "hmof"
    root.mkdir()  # the folder exists (validate checks path settings), but the labels CSV is missing
    pipeline = tmp_path / "hmof.toml"
    pipeline.write_text('[dataset]\nname = "hmof"\nroot = "hmof"\n'
                        '[representation]\nname = "adjacency_list"\n[model]\nname = "cgcnn"\ncutoff = 5.0\n'
                        '[output]\ndir = "runs"\n')
    assert cli("validate", str(pipeline), cwd=tmp_path).returncode == 0  # settings are well formed
    proc = cli("run", str(pipeline), cwd=tmp_path)
    assert proc.returncode == 2
    assert "[dataset] labels:" in proc.stderr and "not found" in proc.stderr
    assert not (tmp_path / "runs").exists()
    root.rmdir()  # a path setting that does not exist is caught by validate itself
    proc = cli("validate", str(pipeline), cwd=tmp_path)
    assert proc.returncode == 2 and f"[dataset] root: {root} does not exist" in proc.stderr


def test_show_prints_kind_plugin_representations_and_settings(tmp_path):
    proc = cli("show", "schnet", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("schnet  (model, plugin molplat-schnet)")
    assert "accepts representations: adjacency_list" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith("hidden_channels"))
    assert row.split()[:3] == ["hidden_channels", "int", "64"]
    missing = cli("show", "shnet", cwd=tmp_path)
    assert missing.returncode == 2 and "did you mean 'schnet'?" in missing.stderr


def test_a_split_left_empty_is_invalid_input_before_any_run_directory(tmp_path):
    pipeline = tmp_path / "p.toml"
    pipeline.write_text('[dataset]\nname = "qm9"\nsplit = [1.0, 0.0, 0.0]\n'
                        '[representation]\nname = "adjacency_list"\n[model]\nname = "schnet"\n'
                        f'[output]\ndir = "{tmp_path / "runs"}"\n')
    proc = cli("run", str(pipeline), cwd=tmp_path)
    assert proc.returncode == 2
    assert "[dataset] split: [1.0, 0.0, 0.0] leaves the val and test split empty (train: 1000, val: 0, test: 0" \
        in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_energy_forces_on_a_dataset_without_forces_is_invalid_input(tmp_path):
    pipeline = tmp_path / "p.toml"
    pipeline.write_text('[dataset]\nname = "qm9"\ntarget = "u0"\n'
                        '[representation]\nname = "adjacency_list"\n[model]\nname = "schnet"\n'
                        f'[trainer]\ntask = "energy_forces"\n[output]\ndir = "{tmp_path / "runs"}"\n')
    proc = cli("run", str(pipeline), cwd=tmp_path)
    assert proc.returncode == 2
    assert "[trainer] task: 'energy_forces' needs forces, but 1000 structures of dataset 'qm9' have none" in proc.stderr
    assert not (tmp_path / "runs").exists()
