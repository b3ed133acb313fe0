"""Checks every component passes, whatever its kind."""
from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from functools import lru_cache
from typing import Any

from molplat.specs import CommandSpec, ComponentSpec, Setting

from molplat_sdk.checks import surface
from molplat_sdk.errors import ConformanceError

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MODEL_OUTPUTS = {"property", "energy", "forces", "atom_property"}
#: what the core passes a model factory besides its settings (molplat.models.build_model)
CORE_MODEL_ARGUMENTS = {"n_outputs", "n_atom_outputs", "heads", "statistics"}


def label(spec: ComponentSpec) -> str:
    return f"{spec.kind} {spec.name!r} of plugin {spec.plugin!r}"


def settings_for(spec: ComponentSpec, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The spec's defaults with the test's overrides, each checked against the schema."""
    values = spec.defaults()
    for key, value in (overrides or {}).items():
        setting = spec.setting(key)
        if setting is None:
            raise ConformanceError(label(spec), f"the test's settings name {key!r}, which the spec does not declare",
                                   f"use one of {[s.name for s in spec.settings]} in `settings` of the test class")
        problem = setting.check(value)
        if problem:
            raise ConformanceError(label(spec), f"the test's setting {key}={value!r}: {problem}",
                                   "change the value in `settings` of the test class")
        values[key] = value
    missing = [s.name for s in spec.settings if s.required and values.get(s.name) is None]
    if missing:
        raise ConformanceError(label(spec), f"required settings {missing} have no value for the conformance suite",
                               f"give them in the test class: settings = {{{spec.name!r}: {{{missing[0]!r}: ...}}}}")
    return values


def check_spec(spec: ComponentSpec, known_representations: set[str]) -> None:
    """Name, summary, settings help, and for models the accepted layouts and outputs."""
    where = label(spec)
    if not NAME.match(spec.name):
        raise ConformanceError(where, "the name is not lower_snake_case",
                               "name components like 'my_model': lowercase letters, digits, underscores")
    if not spec.summary.strip() or "\n" in spec.summary:
        raise ConformanceError(where, "the summary is empty or spans several lines",
                               "give ComponentSpec(summary=...) one line saying what it is")
    undocumented = [s.name for s in spec.settings if not s.help.strip()]
    if undocumented:
        raise ConformanceError(where, f"settings {undocumented} have no help text",
                               "add Setting(..., help='what it changes, with units') to each")
    if spec.kind == "model":
        if not spec.accepts:
            raise ConformanceError(where, "declares no accepted representations",
                                   "set ComponentSpec(accepts=('adjacency_list',)) and the model's `accepts`")
        if not set(spec.accepts) & known_representations:
            raise ConformanceError(where, f"accepts {list(spec.accepts)}, none of which is installed",
                                   f"accept one of {sorted(known_representations)}, or install the plugin providing it")
        unknown = set(spec.outputs) - MODEL_OUTPUTS
        if not spec.outputs or unknown:
            raise ConformanceError(where, f"outputs {list(spec.outputs)} are not a subset of {sorted(MODEL_OUTPUTS)}",
                                   "declare outputs=('property',) or ('property', 'energy', 'forces')")


def check_bounded(spec: ComponentSpec) -> None:
    """Every numeric setting has both bounds (or choices): `cutoff = 1e6` hangs featurisation and
    `num_threads = 5000` crashes, so validation must be able to refuse them."""
    unbounded = [s for s in spec.settings if not s.bounded]
    if not unbounded:
        return
    described = ", ".join(f"{s.name!r} ({_missing_bounds(s)})" for s in unbounded)
    first = unbounded[0]
    raise ConformanceError(label(spec), f"numeric settings without both bounds: {described}",
                           f"give Setting({first.name!r}, ...) minimum= and maximum= (or choices=), the largest "
                           "value that still makes sense: validation then refuses values that hang or crash a run")


def _missing_bounds(setting: Setting) -> str:
    missing = [name for name, value in (("minimum", setting.minimum), ("maximum", setting.maximum)) if value is None]
    return "no " + " and no ".join(missing)


@lru_cache(maxsize=None)
def _private_imports(plugin_module: str) -> tuple[surface.PrivateImport, ...]:
    return tuple(surface.private_imports(surface.package_files(plugin_module)))


def check_public_surface(spec: ComponentSpec, plugin_module: str) -> None:
    """The plugin's package imports only molplat.PUBLIC_MODULES (read with ast, never imported)."""
    found = _private_imports(plugin_module)
    if not found:
        return
    lines = "; ".join(f"{p.file}:{p.line} imports {p.module} (use {p.alternative})" for p in found[:5])
    more = f"; and {len(found) - 5} more" if len(found) > 5 else ""
    raise ConformanceError(label(spec), f"the plugin imports molplat internals: {lines}{more}",
                           f"import from the public module named for each line ({found[0].file}:{found[0].line}: "
                           f"{found[0].alternative}); plugins may import only molplat.PUBLIC_MODULES, which keep "
                           "working across molplat releases (docs/contracts.md)")


def check_settings_defaults(spec: ComponentSpec) -> None:
    """Defaults satisfy their own schema and the factory takes every setting by name."""
    where = label(spec)
    for setting in spec.settings:
        if setting.required:
            continue
        problem = setting.check(setting.default)
        if problem:
            raise ConformanceError(where, f"the default of setting {setting.name!r} is invalid: {problem}",
                                   "make the default satisfy the setting's type, choices and bounds")
    factory = spec.load()
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    params = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    expected = [s.name for s in spec.settings]
    if spec.kind == "model":
        expected += ["n_outputs"] + (["n_atom_outputs"] if "atom_property" in spec.outputs else [])
    missing = [name for name in expected if name not in params]
    if missing:
        raise ConformanceError(where, f"the factory {spec.factory} does not take {missing} as keyword arguments",
                               "make every declared Setting (and n_outputs for models, n_atom_outputs for "
                               "atom_property models) a parameter of the factory")
    given = set(expected) | (CORE_MODEL_ARGUMENTS if spec.kind == "model" else set())
    extra = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in given
             and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"]
    if extra:
        raise ConformanceError(where, f"the factory requires {extra}, which are not settings",
                               "declare them as Settings or give them defaults")


@lru_cache(maxsize=None)
def modules_after_import(module: str) -> frozenset[str]:
    """The modules a fresh interpreter holds after importing ``module`` (cached per session)."""
    code = f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ConformanceError(f"plugin module {module!r}", f"importing it fails:\n{proc.stderr.strip()[-2000:]}",
                               "fix the import error of the entry-point module")
    return frozenset(json.loads(proc.stdout.strip().splitlines()[-1]))


def check_lazy_factory(spec: ComponentSpec, plugin_module: str) -> None:
    """Listing plugins imports only the entry-point module: not the factory, not torch."""
    where = label(spec)
    factory_module = spec.factory.partition(":")[0]
    loaded = modules_after_import(plugin_module)
    if factory_module == plugin_module:
        raise ConformanceError(where, f"the factory lives in the entry-point module {plugin_module}",
                               "move the component into its own module and name it lazily, e.g. "
                               f"factory='{plugin_module.rpartition('.')[0] or plugin_module}.model:MyModel'")
    if factory_module in loaded:
        raise ConformanceError(where, f"importing the entry-point module {plugin_module} already imports {factory_module}",
                               "import nothing from the component's module in plugin.py; the factory string is enough")
    if "torch" in loaded:
        raise ConformanceError(where, f"importing the entry-point module {plugin_module} imports torch",
                               "keep plugin.py free of torch (and of modules that import it) so listing stays fast")
    try:
        factory = spec.load()
    except Exception as exc:
        raise ConformanceError(where, f"the factory {spec.factory} cannot be imported: {type(exc).__name__}: {exc}",
                               "fix the import path 'package.module:Name' or the module's imports") from None
    if not callable(factory):
        raise ConformanceError(where, f"the factory {spec.factory} is not callable",
                               "point the factory at a class or function that builds the component")


def check_listed(spec: ComponentSpec, listing: list[dict[str, Any]]) -> None:
    """The component shows up in `molplat list-plugins --json` under its plugin, loaded."""
    where = label(spec)
    entry = next((p for p in listing if p["name"] == spec.plugin), None)
    if entry is None:
        raise ConformanceError(where, f"`molplat list-plugins --json` does not list plugin {spec.plugin!r}",
                               "declare the entry point [project.entry-points.\"molplat.plugins\"] and reinstall")
    if entry["status"] != "loaded":
        raise ConformanceError(where, f"`molplat list-plugins` reports it {entry['status']}: {entry['error']}",
                               "fix the reported error")
    if spec.name not in entry["components"].get(spec.kind, []):
        raise ConformanceError(where, f"`molplat list-plugins --json` lists {entry['components']} for the plugin",
                               f"return the spec from the molplat_{spec.kind}s hook of the plugin module")


def check_logger_plugin(plugin: str, plugin_module: str, library: str) -> None:
    """A logger plugin (``molplat_loggers``) imports only molplat's public surface, and listing
    plugins imports neither torch nor its logging ``library`` (loaded when a run turns it on)."""
    where = f"logger plugin {plugin!r}"
    found = _private_imports(plugin_module)
    if found:
        first = found[0]
        raise ConformanceError(where, f"the plugin imports molplat internals: {first.file}:{first.line} imports "
                               f"{first.module}", f"use {first.alternative}; plugins may import only "
                               "molplat.PUBLIC_MODULES (docs/contracts.md)")
    loaded = modules_after_import(plugin_module)
    for heavy in ("torch", library):
        if heavy in loaded:
            raise ConformanceError(where, f"importing the entry-point module {plugin_module} imports {heavy}",
                                   "import the logging library inside the hooks, when a run starts")


def check_command(spec: CommandSpec, plugin_module: str, core_commands: set[str]) -> None:
    """A plugin command (``molplat_commands``) is listed without importing its code or torch,
    loads as a click command, and does not take a name the core already uses."""
    import click

    where = f"command {spec.name!r} of plugin {spec.plugin!r}"
    if spec.name in core_commands:
        raise ConformanceError(where, f"`molplat {spec.name}` is one of molplat's own commands, which always win",
                               f"rename it; taken: {', '.join(sorted(core_commands))}")
    factory_module = spec.factory.partition(":")[0]
    if factory_module == plugin_module:
        raise ConformanceError(where, f"the command lives in the entry-point module {plugin_module}",
                               "move it into its own module (e.g. cli.py) and name it there: factory='pkg.cli:command'")
    loaded = modules_after_import(plugin_module)
    for heavy in (factory_module, "torch"):
        if heavy in loaded:
            raise ConformanceError(where, f"importing the entry-point module {plugin_module} imports {heavy}",
                                   "keep plugin.py free of the command's module so `molplat --help` stays fast")
    try:
        command = spec.load()
    except Exception as exc:
        raise ConformanceError(where, f"the factory {spec.factory} cannot be imported: {type(exc).__name__}: {exc}",
                               "fix the import path 'package.module:command' or the module's imports") from None
    if not isinstance(command, click.Command):
        raise ConformanceError(where, f"the factory {spec.factory} is a {type(command).__name__}, not a click command",
                               "decorate the function with @click.command() and name that object")
