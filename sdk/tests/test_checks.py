"""Each check passes on a sound component and fails, with its fix, on one that breaks the contract."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from molplat.specs import KINDS, CommandSpec, ComponentSpec, Setting
from molplat_sdk import ConformanceError
from molplat_sdk.checks import common, dataset, model, representation, stages
from molplat_sdk.context import context_copy
from molplat_sdk.structures import tiny_structures

MODEL_SETTINGS = (Setting("cutoff", "float", 4.0, "radius in Å", minimum=0.1, maximum=20.0),)
ATOM_OUTPUTS = ("property", "energy", "forces", "atom_property")


def model_spec(factory: str, outputs=("property", "energy", "forces")) -> ComponentSpec:
    return ComponentSpec(name="subject", kind="model", factory=factory, summary="a model under test",
                         settings=MODEL_SETTINGS, accepts=("adjacency_list",), outputs=outputs,
                         plugin="molplat-sdk-tests")


def case(factory: str, manager, outputs=("property", "energy", "forces"),
         rep: str = "adjacency_list") -> model.ModelCase:
    rep_spec = manager.get("representation", rep)
    rep_settings = {"cutoff": 4.0} if rep_spec.setting("cutoff") else {}
    return model.ModelCase(model_spec(factory, outputs), {"cutoff": 4.0}, rep_spec, rep_settings)


def run_all_model_checks(c: model.ModelCase) -> None:
    structures = tiny_structures()
    model.check_forward(c, structures)
    model.check_gradients(c, structures)
    model.check_invariance(c, structures, np.random.default_rng(0))
    model.check_forces(c, structures, np.random.default_rng(1))
    model.check_cutoff_continuity(c)
    model.check_train_mode_independence(c, structures)
    model.check_state_dict_round_trip(c, structures)
    model.check_embedding_layer(c, structures)
    model.check_graph_embedding(c, structures, np.random.default_rng(2))
    model.check_calculator(c, structures, np.random.default_rng(2))


def test_a_sound_model_passes(molplat_manager):
    run_all_model_checks(case("broken:_Base", molplat_manager))


def test_a_sound_model_with_a_per_atom_head_passes(molplat_manager):
    c = case("molplat_sdk.toy_components:ToyPairModel", molplat_manager, ATOM_OUTPUTS)
    assert c.heads.n_graph == model.N_OUTPUTS and c.heads.n_atom == 1
    run_all_model_checks(c)


def test_a_model_whose_stress_is_not_the_strain_derivative_fails_the_calculator_check(molplat_manager):
    with pytest.raises(ConformanceError, match="stress.* but the strain derivative of the energy"):
        model.check_calculator(case("broken:DetachesTheShifts", molplat_manager), tiny_structures(),
                               np.random.default_rng(2))


@pytest.mark.parametrize("factory, message", [
    ("broken:UsesAbsoluteZ", "change under a rotation"),
    ("broken:UsesAtomOrder", "reordered|depends on the others in its batch"),
    ("broken:IgnoresPeriodicShift", "lattice vector"),
    ("broken:HasUnusedParameter", "no gradient from y.*forgotten"),
    ("broken:DetachesPartOfTheEnergy", "numerical energy derivative"),
    ("broken:KeepsStateOutsideTheStateDict", "predicts differently"),
    ("broken:WrongShape", "has shape \\[5, 1\\]"),
    ("broken:NormalisesOverTheBatch", "in training mode, the (energy|forces) of .* depends? on the other structures"),
    ("broken:CutoffBeyondTheRepresentation", "energy jumps by .*cutoff of 4.0 Å \\(the model's own cutoff, 5.0 Å"),
    ("broken:CountsNeighbours", "energy jumps by .* across the representation's cutoff"),
])
def test_a_broken_model_is_caught_with_a_fix(molplat_manager, factory, message):
    with pytest.raises(ConformanceError, match=message) as caught:
        run_all_model_checks(case(factory, molplat_manager))
    assert "fix:" in str(caught.value) and "subject" in str(caught.value)


@pytest.mark.parametrize("factory, message", [
    ("broken:DeclaresNoEmbeddingLayer", "declares no embedding_layer"),
    ("broken:NamesAMissingEmbeddingLayer", "names embedding_layer 'atom_types', but it has no such submodule"),
    ("broken:NamesAnEdgeLayer", "embedding_layer 'filter' returns \\[\\d+, 8\\] .* expected \\[27, F\\]"),
    ("broken:NamesASideBranch", "changing the output of embedding_layer 'side' leaves y of .* unchanged"),
])
def test_a_model_without_a_usable_embedding_layer_is_caught(molplat_manager, factory, message):
    with pytest.raises(ConformanceError, match=message) as caught:
        model.check_embedding_layer(case(factory, molplat_manager), tiny_structures())
    assert "fix:" in str(caught.value)


@pytest.mark.parametrize("factory, message", [
    ("broken:GraphEmbeddingOfTheBatch", "graph_embedding depends on the others in its batch"),
    ("broken:GraphEmbeddingFromAbsoluteZ", "graph_embedding changes under a rotation"),
    ("broken:ConstantGraphEmbedding", "graph_embedding is the same for all"),
])
def test_a_graph_embedding_that_is_not_per_structure_is_caught(molplat_manager, factory, message):
    with pytest.raises(ConformanceError, match=message) as caught:
        model.check_graph_embedding(case(factory, molplat_manager), tiny_structures(), np.random.default_rng(2))
    assert "fix:" in str(caught.value)


def test_the_embedding_layer_is_found_by_name(molplat_manager):
    from molplat.models import atom_embedding_module

    built = case("broken:_Base", molplat_manager).build()
    assert built.atom_embedding_module() is built.embedding is atom_embedding_module(built)


def test_batch_norm_passes_in_eval_mode_and_fails_only_in_training_mode(molplat_manager):
    c = case("broken:NormalisesOverTheBatch", molplat_manager)
    model.check_forward(c, tiny_structures())  # eval mode: running statistics, independent of the batch
    with pytest.raises(ConformanceError, match="fix: normalise per structure"):
        model.check_train_mode_independence(c, tiny_structures())


@pytest.mark.parametrize("factory, message", [
    ("broken:AtomYFromPlaceInStructure", "per-atom predictions change when the atoms are reordered"),
    ("broken:AtomYFromAbsoluteZ", "per-atom predictions change under a rotation"),
    ("broken:AtomYPerStructure", "output 'atom_y' has shape \\[5, 1\\] .* expected \\[27, 1\\]"),
    ("broken:_Base", "declares outputs 'atom_property' but returns no 'atom_y'|n_atom_outputs"),
])
def test_a_broken_per_atom_head_is_caught(molplat_manager, factory, message):
    with pytest.raises(ConformanceError, match=message):
        run_all_model_checks(case(factory, molplat_manager, ATOM_OUTPUTS))


def test_float64_checks_see_an_unrounded_batch(molplat_manager):
    """A representation that rounds to float32 is named; the model checks never round (edge shifts included)."""
    rep = rep_spec("broken:CollatesInFloat32")
    with pytest.raises(ConformanceError, match="collate returns .*'edge_shift': 'float32'"):
        representation.check_float64(rep, rep.build(cutoff=4.0), tiny_structures())
    c = model.ModelCase(model_spec("broken:_Base"), {"cutoff": 4.0}, rep, {"cutoff": 4.0})
    with pytest.raises(ConformanceError, match="representation 'subject' collates .* not float64"):
        model.check_forces(c, tiny_structures(), np.random.default_rng(1))
    sound = case("broken:_Base", molplat_manager)
    batch = sound.batch(tiny_structures(), model.torch.float64)
    assert {str(v.dtype) for v in batch.values() if isinstance(v, model.torch.Tensor) and v.is_floating_point()} \
        == {"torch.float64"}


@pytest.mark.parametrize("name", ["adjacency_list", "adjacency_matrix", "point_cloud"])
def test_the_core_representations_collate_in_float64(molplat_manager, name):
    spec = molplat_manager.get("representation", name)
    representation.check_float64(spec, spec.build(), tiny_structures())


def test_the_cutoff_check_applies_to_energy_models_on_neighbour_lists(molplat_manager):
    assert model.cutoff_skip_reason(case("broken:_Base", molplat_manager)) is None
    assert "no energy" in model.cutoff_skip_reason(case("broken:_Base", molplat_manager, ("property",)))
    assert "no neighbour list" in model.cutoff_skip_reason(case("broken:_Base", molplat_manager, rep="point_cloud"))


def dataset_spec(factory: str) -> ComponentSpec:
    return ComponentSpec(name="subject", kind="dataset", factory=factory, summary="a dataset under test",
                         plugin="molplat-sdk-tests")


def run_all_dataset_checks(spec: ComponentSpec, data, settings=None) -> None:
    dataset.check_structures(spec, data)
    dataset.check_unique_ids(spec, data)
    dataset.check_targets(spec, data)
    dataset.check_reproducible(spec, data, settings or {})
    dataset.check_splits(spec, data)


@pytest.mark.parametrize("factory, message", [
    ("broken:NaNTargets", "non-finite target values"),
    ("broken:NoUnits", "has no units"),
    # Structure refuses atomic number 0 while the dataset reads it: reported, not a traceback
    ("broken:ChargesAsNumbers", "reading structure 0 fails: ValueError: structure 'emt-000': atomic numbers \\[0\\] "
                                "are outside 1..118"),
    ("broken:Unseeded", "built twice with \\{\\}, structure 0 differs"),
    ("broken:DuplicateIds", "structures 0 and 1 share the id 'emt-0'"),
    ("broken:UnfilledPositions", "structure 0 \\('emt-000'\\): atoms 0 and 1 are 0 Å apart, closer than 0.1 Å"),
    ("broken:AtomOnAnotherImage", "structure 5 \\('emt-005'\\): atoms 0 and 1 \\(periodic image \\[-1, 0, 0\\]\\) "
                                  "are .* Å apart"),
])
def test_a_broken_dataset_is_caught(factory, message):
    spec = dataset_spec(factory)
    data = dataset.build_offline(spec, {})
    with pytest.raises(ConformanceError, match=message) as caught:
        run_all_dataset_checks(spec, data)
    assert "fix:" in str(caught.value)


def test_a_dataset_that_downloads_fails_offline():
    with pytest.raises(ConformanceError, match="tried to reach the network") as caught:
        dataset.build_offline(dataset_spec("broken:Downloads"), {})
    assert "ship the dev set" in str(caught.value)


def test_the_toy_dataset_passes():
    spec = dataset_spec("molplat_sdk.toy_components:ToyEMTDataset")
    run_all_dataset_checks(spec, dataset.build_offline(spec, {"size": 12}), {"size": 12})


def rep_spec(factory: str) -> ComponentSpec:
    return ComponentSpec(name="subject", kind="representation", factory=factory, summary="a representation",
                         plugin="molplat-sdk-tests")


def test_edge_indices_without_offsets_are_caught():
    spec = rep_spec("broken:ForgetsEdgeOffsets")
    with pytest.raises(ConformanceError, match="neighbour pairs of structure|another structure"):
        representation.check_collate(spec, spec.build(cutoff=4.0), tiny_structures())


def test_missing_periodic_images_are_caught():
    spec = rep_spec("broken:DropsPeriodicImages")
    with pytest.raises(ConformanceError, match="pairs within 4.0 Å are missing") as caught:
        representation.check_neighbors(spec, spec.build(cutoff=4.0), tiny_structures())
    assert "periodic=True" in str(caught.value)


def test_truncated_neighbour_lists_are_checked_against_the_nearest():
    spec = rep_spec("molplat.representations.adjacency_list:AdjacencyList")
    representation.check_neighbors(spec, spec.build(cutoff=5.0, max_neighbors=4), tiny_structures())


def test_an_eager_plugin_module_is_caught():
    spec = ComponentSpec(name="subject", kind="model", factory="molplat_sdk.toy_components:ToyPairModel",
                         summary="x", plugin="molplat-sdk-tests")
    with pytest.raises(ConformanceError, match="imports torch"):
        common.check_lazy_factory(spec, "molplat_sdk.checks.model")  # stands in for a plugin.py importing torch
    with pytest.raises(ConformanceError, match="factory lives in the entry-point module"):
        common.check_lazy_factory(spec, "molplat_sdk.toy_components")


def test_settings_the_factory_does_not_take_are_caught():
    spec = ComponentSpec(name="subject", kind="model", factory="molplat_sdk.toy_components:ToyPairModel",
                         summary="x", settings=(Setting("depth", "int", 2, "layers"),), plugin="molplat-sdk-tests")
    with pytest.raises(ConformanceError, match=r"does not take \['depth'\]"):
        common.check_settings_defaults(spec)


@pytest.mark.parametrize("setting, missing", [
    (Setting("cutoff", "float", 5.0, "radius in Å", minimum=0.1), "'cutoff' \\(no maximum\\)"),
    (Setting("num_threads", "int", 0, "torch threads"), "'num_threads' \\(no minimum and no maximum\\)"),
    (Setting("widths", "list[int]", [8], "layer widths", maximum=1024), "'widths' \\(no minimum\\)"),
])
def test_a_numeric_setting_without_bounds_is_named(setting, missing):
    spec = ComponentSpec(name="subject", kind="representation", factory="broken:ForgetsEdgeOffsets", summary="x",
                         settings=(setting, Setting("name", "str", "a", "not a number")), plugin="molplat-sdk-tests")
    with pytest.raises(ConformanceError, match=f"numeric settings without both bounds: {missing}\n") as caught:
        common.check_bounded(spec)
    assert f"fix: give Setting({setting.name!r}, ...) minimum= and maximum= (or choices=)" in str(caught.value)


def test_choices_bound_a_number():
    spec = ComponentSpec(name="subject", kind="model", factory="broken:_Base", summary="x", plugin="molplat-sdk-tests",
                         settings=(Setting("layers", "int", 2, "depth", choices=(1, 2, 3)),))
    common.check_bounded(spec)


LEAKY_PLUGIN = {
    "__init__.py": "",
    "plugin.py": "import molplat\nfrom molplat.specs import ComponentSpec, Setting\nfrom molplat import hookimpl\n",
    "backend.py": ("from molplat.training.lightning import fit_with_lightning\n"
                   "from molplat import pipeline, training\n"
                   "import molplat.training.data as data\n"
                   "from molplat.training import FitResult\n"),
    "deep/__init__.py": "",
    "deep/runner.py": "def run(context):\n    from molplat.pipeline.runner import RunContext\n",
}


def test_imports_of_molplat_internals_are_named_with_file_line_and_alternative(tmp_path, monkeypatch):
    package = tmp_path / "molplat_leaky"
    for name, text in LEAKY_PLUGIN.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = ComponentSpec(name="subject", kind="trainer_backend", factory="molplat_leaky.backend:Backend",
                         summary="x", plugin="molplat-leaky")
    with pytest.raises(ConformanceError) as caught:
        common.check_public_surface(spec, "molplat_leaky.plugin")
    text = str(caught.value)
    backend, runner = package / "backend.py", package / "deep" / "runner.py"
    assert f"{backend}:1 imports molplat.training.lightning (use molplat.training (TrainingJob, FitResult, " \
           "fit_with_lightning))" in text
    assert f"{backend}:2 imports molplat.pipeline (use molplat.load_pipeline" in text
    assert f"{backend}:3 imports molplat.training.data (use molplat.data (Sample, SampleCollator" in text
    assert f"{runner}:2 imports molplat.pipeline.runner (use molplat.results (RunContext" in text
    assert "plugin.py" not in text and ":4 " not in text  # molplat, molplat.specs and molplat.training are public
    assert "fix: import from the public module" in text


def test_scanning_a_plugin_imports_none_of_it(tmp_path, monkeypatch):
    package = tmp_path / "molplat_exploding"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (package / "plugin.py").write_text("from molplat.specs import ComponentSpec\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = ComponentSpec(name="subject", kind="model", factory="molplat_exploding.model:M", summary="x",
                         plugin="molplat-exploding")
    common.check_public_surface(spec, "molplat_exploding.plugin")


def first_party_components(manager) -> list[ComponentSpec]:
    """Every component of the core, the SDK's toys and the plugins this checkout ships (registry.toml `path`)."""
    import tomllib

    registry = tomllib.loads((Path(__file__).resolve().parents[2] / "registry.toml").read_text())
    ours = {e["distribution"] for e in registry["plugins"].values() if "path" in e} | {"molplat", "molplat-sdk-toys"}
    return [manager.get(kind, f"{info.name}:{name}") for info in manager.plugins if info.name in ours
            for kind, names in info.components.items() if kind in KINDS for name in names]  # loggers have no spec


def test_every_first_party_component_has_bounded_settings_and_public_imports(molplat_manager):
    components = first_party_components(molplat_manager)
    assert {"molplat", "molplat-sdk-toys"} < {c.plugin for c in components}
    problems = []
    for spec in components:
        checks = [common.check_bounded]
        if spec.plugin != "molplat":
            checks.append(lambda s: common.check_public_surface(s, molplat_manager.plugin(s.plugin).module))
        for check in checks:
            try:
                check(spec)
            except ConformanceError as exc:
                problems.append(str(exc))
    assert not problems, "\n".join(problems)


def test_a_misspelt_test_setting_is_named():
    spec = model_spec("broken:_Base")
    with pytest.raises(ConformanceError, match="'cutof'.*does not declare"):
        common.settings_for(spec, {"cutof": 3.0})


@pytest.mark.parametrize("factory, message", [
    ("broken:ExplainerReturningADict", "returned dict, not molplat.results.Explanation"),
    ("broken:ExplainerListingAMissingFile", "does not exist"),
])
def test_a_broken_explainer_is_caught(toy_run_context, tmp_path: Path, factory, message):
    spec = ComponentSpec(name="subject", kind="explainer", factory=factory, summary="x", plugin="molplat-sdk-tests")
    with pytest.raises(ConformanceError, match=message):
        stages.check_stage(spec, {}, context_copy(toy_run_context, tmp_path / "run"))


@pytest.mark.parametrize("factory, message", [
    ("broken:SearcherWithAnUnknownBest", "the pipeline does not accept best"),
    ("broken:SearcherTrainingOutsideItsTrialFolders", "trial directory trials/999"),
])
def test_a_searcher_whose_best_cannot_be_trained_is_caught(toy_run_context, tmp_path: Path, factory, message):
    spec = ComponentSpec(name="subject", kind="searcher", factory=factory, summary="x", plugin="molplat-sdk-tests")
    with pytest.raises(ConformanceError, match=message):
        stages.check_stage(spec, {}, context_copy(toy_run_context, tmp_path / "run"))


def test_a_backend_whose_checkpoints_molplat_cannot_read_is_caught(tmp_path):
    spec = ComponentSpec(name="subject", kind="trainer_backend", factory="broken:SavesPlainTorchCheckpoints",
                         summary="x", plugin="molplat-sdk-tests")
    with pytest.raises(ConformanceError, match="molplat cannot read FitResult.best_checkpoint: .*not a molplat "
                                               "checkpoint \\(no 'molplat' section") as caught:
        stages.check_trainer_backend(spec, {}, tmp_path)
    assert "fix: write checkpoints with molplat.rundir.write_checkpoint" in str(caught.value)
    assert "molplat.training.fit_with_lightning" in str(caught.value)


def test_a_backend_that_never_reports_epochs_is_caught(tmp_path):
    """Loggers need every epoch: a backend without Lightning must call job.epoch_finished itself."""
    spec = ComponentSpec(name="subject", kind="trainer_backend", factory="broken:NeverReportsEpochs",
                         summary="x", plugin="molplat-sdk-tests")
    with pytest.raises(ConformanceError, match=r"job.epoch_finished was called for epochs \[\], the fit ran 1") \
            as caught:
        stages.check_trainer_backend(spec, {}, tmp_path)
    assert "fix: call job.epoch_finished(epoch, row)" in str(caught.value)


def test_the_cpu_backend_fits_a_real_training_job(molplat_manager, tmp_path):
    spec = molplat_manager.get("trainer_backend", "cpu")
    settings = common.settings_for(spec, {"max_epochs": 2, "progress_bar": False, "batch_size": 8})
    stages.check_trainer_backend(spec, settings, tmp_path)
    job = stages.toy_job(tmp_path / "again")
    assert job.heads.forces and job.statistics.forces_rms > 0 and job.statistics.targets["energy"].references


def test_the_toy_run_trained_a_model_with_forces(toy_run_context):
    assert toy_run_context.model.task.with_forces
    assert set(toy_run_context.splits) == {"train", "val", "test"}
    out = toy_run_context.model.predict(toy_run_context.splits["test"][:2])
    assert out["y"].shape == (2,) and out["forces"][0].shape == (len(toy_run_context.splits["test"][0]), 3)


def command(factory: str, name: str = "subject") -> CommandSpec:
    return CommandSpec(name, factory, "a command under test", plugin="molplat-sdk-tests")


def test_a_sound_plugin_command_passes():
    common.check_command(command("molplat.cli:validate"), "molplat.specs", {"run", "show"})


@pytest.mark.parametrize("spec, plugin_module, message", [
    (command("molplat.cli:validate", name="run"), "molplat.specs", "is one of molplat's own commands"),
    (command("molplat.specs:CommandSpec"), "molplat.specs", "lives in the entry-point module"),
    (command("molplat.specs:CommandSpec"), "molplat", "imports molplat.specs"),
    (command("molplat.cli:main"), "molplat.errors", "is a function, not a click command"),
    (command("molplat_no_such_package.cli:command"), "molplat.errors", "cannot be imported: ModuleNotFoundError"),
])
def test_a_broken_plugin_command_is_caught(spec, plugin_module, message):
    with pytest.raises(ConformanceError, match=message):
        common.check_command(spec, plugin_module, {"run", "show"})
