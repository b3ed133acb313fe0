"""The pytest plugin (entry point ``pytest11``) behind PluginConformance and the SDK fixtures.

It parametrises the suite's checks over the components of the plugin under test,
deselects those for kinds the plugin does not provide, and offers fixtures that
plugin authors use in their own tests: ``tiny_structures``, ``toy_run_context`` and
``molplat_manager``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from functools import lru_cache
from typing import Any

import pytest

NOT_APPLICABLE = "molplat_not_applicable"


@lru_cache(maxsize=1)
def _manager() -> Any:
    from molplat_sdk.context import sdk_manager

    return sdk_manager()


def _conformance_class(metafunc: pytest.Metafunc) -> Any:
    from molplat_sdk.suite import PluginConformance

    cls = metafunc.cls
    return cls if cls is not None and issubclass(cls, PluginConformance) else None


def _plugin_components(cls: Any, kinds: tuple[str, ...]) -> list[Any]:
    from molplat.specs import COMMAND

    manager = _manager()
    info = manager.plugin(cls.plugin)
    if not cls.plugin or info is None:
        installed = ", ".join(p.name for p in manager.plugins)
        raise pytest.UsageError(f"{cls.__name__}.plugin = {cls.plugin!r} is not an installed molplat plugin "
                                f"(installed: {installed}); set it to the distribution name and `pip install -e .`")
    if info.status != "loaded":
        raise pytest.UsageError(f"plugin {cls.plugin!r} is {info.status}: {info.error}")
    # qualified names (DISTRIBUTION:NAME): unambiguous even when another plugin registers the same name
    if kinds == (COMMAND,):  # commands have no qualified names: the manager keeps them per plugin
        return manager.plugin_commands(info.name)
    return [manager.get(kind, f"{info.name}:{name}") for kind in kinds for name in info.components.get(kind, [])]


def _representations(spec: Any) -> list[Any]:
    """The installed representations a model accepts (by bare or qualified name)."""
    from molplat.errors import ValidationError

    found = []
    for name in spec.accepts:
        try:
            found.append(_manager().get("representation", name))
        except ValidationError:
            continue  # not installed, or ambiguous: check_spec reports accepts that name nothing usable
    return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    cls = _conformance_class(metafunc)
    kinds = getattr(metafunc.function, "molplat_kinds", None)
    if cls is None or kinds is None:
        return
    specs = _plugin_components(cls, kinds)
    when = getattr(metafunc.function, "molplat_when", None)
    if when is not None:
        specs = [s for s in specs if when(s)]
    not_applicable = [pytest.param(None, marks=pytest.mark.molplat_not_applicable, id="not-applicable")]
    if "model_case" in metafunc.fixturenames:
        cases = [(spec, rep) for spec in specs for rep in _representations(spec)]
        metafunc.parametrize("model_case", [pytest.param(c, id=f"{c[0].name}-{c[1].name}") for c in cases]
                             or not_applicable, indirect=True)
    elif "command_spec" in metafunc.fixturenames:
        metafunc.parametrize("command_spec", [pytest.param(s, id=s.name) for s in specs] or not_applicable)
    elif "component" in metafunc.fixturenames:
        metafunc.parametrize("component", [pytest.param(s, id=s.name) for s in specs] or not_applicable)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{NOT_APPLICABLE}: a conformance check for a kind the plugin lacks")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselected = [item for item in items if item.get_closest_marker(NOT_APPLICABLE)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker(NOT_APPLICABLE)]


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def molplat_manager() -> Any:
    """The installed plugins plus the SDK's toy dataset and model."""
    return _manager()


@pytest.fixture
def tiny_structures() -> list[Any]:
    """Three molecules (3 to 11 atoms) and two periodic crystals, as molplat Structures."""
    from molplat_sdk.structures import tiny_structures as build

    return build()


@pytest.fixture(scope="session")
def plugin_listing() -> list[dict[str, Any]]:
    """What `molplat list-plugins --json` prints in a fresh process."""
    proc = subprocess.run([sys.executable, "-m", "molplat.cli", "list-plugins", "--json"],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"`molplat list-plugins --json` failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def toy_run_context(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A RunContext of a finished toy run: a small energy+forces model trained on EMT data.

    Copy it (molplat_sdk.context.context_copy) before writing into its run directory.
    """
    from molplat_sdk.context import train_toy_context

    return train_toy_context(tmp_path_factory.mktemp("sdk-toy-run"), _manager())


@pytest.fixture
def molplat_settings(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    """Per-component settings for the conformance suite: the test class's ``settings``.

    Override this fixture (in the class or a conftest) when a value is known only at run
    time, such as a temporary data folder.
    """
    return dict(getattr(request.cls, "settings", None) or {})


@pytest.fixture
def model_case(request: pytest.FixtureRequest, molplat_settings: dict[str, dict[str, Any]]) -> Any:
    from molplat_sdk.checks.common import settings_for
    from molplat_sdk.checks.model import ModelCase

    spec, rep_spec = request.param
    overrides = molplat_settings
    settings = settings_for(spec, overrides.get(spec.name))
    rep_settings = dict(overrides.get(rep_spec.name, {}))
    if "cutoff" in settings and rep_spec.setting("cutoff") is not None:
        rep_settings.setdefault("cutoff", settings["cutoff"])
    return ModelCase(spec, settings, rep_spec, settings_for(rep_spec, rep_settings))


_datasets: dict[tuple[str, str], Any] = {}


@pytest.fixture
def built_dataset(component: Any, molplat_settings: dict[str, dict[str, Any]]) -> Any:
    """The component's dev set, built once per session and settings with the network blocked."""
    from molplat_sdk.checks.common import settings_for
    from molplat_sdk.checks.dataset import build_offline

    settings = settings_for(component, molplat_settings.get(component.name))
    key = (component.plugin, component.name, repr(sorted(settings.items())))
    if key not in _datasets:
        _datasets[key] = build_offline(component, settings)
    return _datasets[key]
