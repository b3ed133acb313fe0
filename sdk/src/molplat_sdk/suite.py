"""The conformance suite: subclass PluginConformance in a plugin's tests and name the plugin.

    class TestConformance(PluginConformance):
        plugin = "molplat-my-model"
        settings = {"my_model": {"hidden_channels": 16}}

The SDK's pytest plugin parametrises each check over the plugin's registered
components of the kind it applies to and deselects checks for kinds the plugin
does not provide.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import pytest

from molplat.plugins import CORE_PLUGIN
from molplat.specs import KINDS, ComponentSpec

from molplat_sdk.checks import common, dataset, model, representation, stages, store

F = TypeVar("F", bound=Callable[..., Any])


def applies_to(*kinds: str, when: Callable[[ComponentSpec], bool] | None = None) -> Callable[[F], F]:
    """Mark a check with the component kinds it runs for (and, with ``when``, which of those)."""
    def mark(function: F) -> F:
        function.molplat_kinds = kinds  # type: ignore[attr-defined]
        function.molplat_when = when  # type: ignore[attr-defined]
        return function
    return mark


def _predicts_forces(spec: ComponentSpec) -> bool:
    return "forces" in spec.outputs


def _predicts_energy(spec: ComponentSpec) -> bool:
    return "energy" in spec.outputs


def _builds_neighbors(spec: ComponentSpec) -> bool:
    return hasattr(spec.load(), "neighbor_pairs")


class PluginConformance:
    """Every contract check molplat makes of a plugin; see the module docstring."""

    #: distribution name of the plugin under test, as `molplat list-plugins` shows it
    plugin: ClassVar[str] = ""
    #: per-component settings (component name -> {setting: value}) that keep checks small; for
    #: values known only at run time (a temporary folder), override the ``molplat_settings`` fixture
    settings: ClassVar[dict[str, dict[str, Any]]] = {}

    # -- every kind ---------------------------------------------------------------------------
    @applies_to(*KINDS)
    def test_spec_is_well_formed(self, component: ComponentSpec, molplat_manager: Any) -> None:
        representations = molplat_manager.components("representation")
        common.check_spec(component, set(representations) | {s.name for s in representations.values()})

    @applies_to(*KINDS)
    def test_numeric_settings_are_bounded(self, component: ComponentSpec) -> None:
        common.check_bounded(component)

    @applies_to(*KINDS)
    def test_imports_only_the_public_surface(self, component: ComponentSpec, molplat_manager: Any) -> None:
        if component.plugin == CORE_PLUGIN:
            pytest.skip("the core is molplat itself")
        common.check_public_surface(component, molplat_manager.plugin(component.plugin).module)

    @applies_to(*KINDS)
    def test_factory_is_imported_lazily(self, component: ComponentSpec, molplat_manager: Any) -> None:
        common.check_lazy_factory(component, molplat_manager.plugin(component.plugin).module)

    @applies_to(*KINDS)
    def test_settings_defaults_are_valid(self, component: ComponentSpec, molplat_settings: dict) -> None:
        common.check_settings_defaults(component)
        common.settings_for(component, molplat_settings.get(component.name))

    @applies_to(*KINDS)
    def test_listed_by_molplat_list_plugins(self, component: ComponentSpec, plugin_listing: list) -> None:
        common.check_listed(component, plugin_listing)

    # -- plugin commands (molplat_commands) -------------------------------------------------------
    @applies_to("command")
    def test_command_loads_lazily_as_a_click_command(self, command_spec: Any, molplat_manager: Any) -> None:
        from molplat.plugins import core_commands

        common.check_command(command_spec, molplat_manager.plugin(command_spec.plugin).module, set(core_commands()))

    # -- models --------------------------------------------------------------------------------
    @applies_to("model")
    def test_model_forward_shapes(self, model_case: model.ModelCase, tiny_structures: list) -> None:
        model.check_forward(model_case, tiny_structures)

    @applies_to("model")
    def test_model_gradients_reach_every_parameter(self, model_case: model.ModelCase, tiny_structures: list) -> None:
        model.check_gradients(model_case, tiny_structures)

    @applies_to("model")
    def test_model_is_invariant(self, model_case: model.ModelCase, tiny_structures: list) -> None:
        model.check_invariance(model_case, tiny_structures, np.random.default_rng(0))

    @applies_to("model")
    def test_model_names_its_atom_embedding_layer(self, model_case: model.ModelCase, tiny_structures: list) -> None:
        model.check_embedding_layer(model_case, tiny_structures)

    @applies_to("model")
    def test_model_graph_embedding_is_per_structure(self, model_case: model.ModelCase, tiny_structures: list) -> None:
        model.check_graph_embedding(model_case, tiny_structures, np.random.default_rng(2))

    @applies_to("model", when=_predicts_forces)
    def test_model_forces(self, model_case: model.ModelCase, tiny_structures: list) -> None:
        model.check_forces(model_case, tiny_structures, np.random.default_rng(1))

    @applies_to("model", when=_predicts_energy)
    def test_model_drives_the_ase_calculator(self, model_case: model.ModelCase, tiny_structures: list) -> None:
        model.check_calculator(model_case, tiny_structures, np.random.default_rng(2))

    @applies_to("model", when=_predicts_energy)
    def test_model_energy_is_continuous_at_the_cutoff(self, model_case: model.ModelCase) -> None:
        reason = model.cutoff_skip_reason(model_case)
        if reason:
            pytest.skip(reason)
        model.check_cutoff_continuity(model_case)

    @applies_to("model", when=_predicts_forces)
    def test_model_is_batch_independent_in_training_mode(self, model_case: model.ModelCase,
                                                         tiny_structures: list) -> None:
        model.check_train_mode_independence(model_case, tiny_structures)

    @applies_to("model")
    def test_model_state_dict_round_trip(self, model_case: model.ModelCase, tiny_structures: list) -> None:
        model.check_state_dict_round_trip(model_case, tiny_structures)

    # -- datasets ------------------------------------------------------------------------------
    @applies_to("dataset")
    def test_dataset_dev_set_loads_offline(self, built_dataset: Any) -> None:
        assert len(built_dataset) > 0

    @applies_to("dataset")
    def test_dataset_structures_are_valid(self, component: ComponentSpec, built_dataset: Any) -> None:
        dataset.check_structures(component, built_dataset)

    @applies_to("dataset")
    def test_dataset_targets_have_units_and_finite_values(self, component: ComponentSpec, built_dataset: Any) -> None:
        dataset.check_targets(component, built_dataset)

    @applies_to("dataset")
    def test_dataset_ids_are_unique(self, component: ComponentSpec, built_dataset: Any) -> None:
        dataset.check_unique_ids(component, built_dataset)

    @applies_to("dataset")
    def test_dataset_is_reproducible(self, component: ComponentSpec, built_dataset: Any,
                                     molplat_settings: dict) -> None:
        settings = common.settings_for(component, molplat_settings.get(component.name))
        dataset.check_reproducible(component, built_dataset, settings)

    @applies_to("dataset")
    def test_dataset_splits_are_disjoint_and_seeded(self, component: ComponentSpec, built_dataset: Any) -> None:
        dataset.check_splits(component, built_dataset)

    # -- representations -----------------------------------------------------------------------
    @applies_to("representation")
    def test_representation_collate_equals_single_items(self, component: ComponentSpec, tiny_structures: list,
                                                        molplat_settings: dict) -> None:
        rep = component.build(**common.settings_for(component, molplat_settings.get(component.name)))
        representation.check_collate(component, rep, tiny_structures)

    @applies_to("representation")
    def test_representation_collates_in_float64(self, component: ComponentSpec, tiny_structures: list,
                                                molplat_settings: dict) -> None:
        rep = component.build(**common.settings_for(component, molplat_settings.get(component.name)))
        representation.check_float64(component, rep, tiny_structures)

    @applies_to("representation", when=_builds_neighbors)
    def test_representation_neighbors_match_brute_force(self, component: ComponentSpec, tiny_structures: list,
                                                        molplat_settings: dict) -> None:
        rep = component.build(**common.settings_for(component, molplat_settings.get(component.name)))
        representation.check_neighbors(component, rep, tiny_structures)

    # -- trainer backends, searchers, explainers, simulators ------------------------------------
    @applies_to("store_backend")
    def test_store_backend_round_trips_samples(self, component: ComponentSpec, tiny_structures: list,
                                               tmp_path: Path, molplat_settings: dict) -> None:
        backend = component.build(**common.settings_for(component, molplat_settings.get(component.name)))
        samples = store.store_samples(tiny_structures * 3)
        store.check_round_trip(component, backend, samples, tmp_path / "store")
        store.check_damage_is_noticed(component, backend, tmp_path / "store")

    @applies_to("trainer_backend")
    def test_trainer_backend_fits_the_toy_job(self, component: ComponentSpec, tmp_path: Path,
                                              molplat_settings: dict) -> None:
        settings = common.settings_for(component, self._quick(component, molplat_settings))
        stages.check_trainer_backend(component, settings, tmp_path)

    @applies_to("searcher", "explainer", "simulator")
    def test_stage_runs_on_the_toy_run(self, component: ComponentSpec, toy_run_context: Any, tmp_path: Path,
                                       molplat_settings: dict) -> None:
        from molplat_sdk.context import context_copy

        settings = common.settings_for(component, molplat_settings.get(component.name))
        stages.check_stage(component, settings, context_copy(toy_run_context, tmp_path / "run"))

    @staticmethod
    def _quick(component: ComponentSpec, molplat_settings: dict) -> dict[str, Any]:
        """Short, quiet training unless the test class says otherwise."""
        quick = {"max_epochs": 2, "progress_bar": False, "batch_size": 8}
        values = {k: v for k, v in quick.items() if component.setting(k) is not None}
        values.update(molplat_settings.get(component.name, {}))
        return values
