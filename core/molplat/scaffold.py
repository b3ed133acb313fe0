"""`molplat new-plugin`: start a plugin distribution from the copier template in templates/plugin.

Everything that can be wrong with the request (the name, the kind, the target folder, a name
that is taken) is checked before a single file is written, and each problem is one
ValidationError that says how to fix it; the CLI prints it and exits 2.
"""
from __future__ import annotations

import keyword
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path

from molplat.errors import PluginError, ValidationError
from molplat.resources import templates_dir
from molplat.specs import KINDS

PREFIX = "molplat-"
TEMPLATE = "plugin"
#: The module of the rendered package that holds the component, per kind.
#: The kinds the template renders (a store backend is a file format: start from molplat-adios instead).
SCAFFOLD_KINDS: tuple[str, ...] = tuple(kind for kind in KINDS if kind != "store_backend")
MODULES: dict[str, str] = {kind: kind for kind in SCAFFOLD_KINDS} | {"trainer_backend": "backend"}
_WORDS = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


@dataclass(frozen=True)
class PluginNames:
    """The names one plugin goes by, all derived from the name a user typed."""

    distribution: str  # molplat-my-model: what pip installs and the entry point is called
    package: str  # molplat_my_model: the import package under src/
    component: str  # my_model: what a pipeline's `name = "..."` says
    class_name: str  # MyModel: the factory the spec names lazily
    module: str  # model: the module of the package that holds the class


def _suggestion(raw: str, kind: str) -> str:
    """A valid name close to ``raw``, for the error message."""
    words = [w for w in re.split(r"[^a-z0-9]+", raw.lower()) if w]
    if words and words[0] == "molplat":
        words = words[1:]
    while words and words[0][0].isdigit() and any(not w[0].isdigit() for w in words):
        words.append(words.pop(0))  # "3d-net" -> "net-3d"
    if not words or words[0][0].isdigit():
        words.insert(0, MODULES.get(kind, "my"))
    name = "-".join(words)
    return name if not keyword.iskeyword(name.replace("-", "_")) else f"{name}-{MODULES.get(kind, 'plugin')}"


def plugin_names(name: str, kind: str = "model") -> PluginNames:
    """Normalise ``name``: "My_Model", "my-model" and "molplat-my-model" all give molplat-my-model.

    Raises ValidationError when the result is not a Python identifier (the component name ends
    up in import paths and in pipeline files) or is a Python keyword.
    """
    text = name.strip().lower().replace("_", "-")
    if text.startswith(PREFIX):
        text = text[len(PREFIX):]
    component = text.replace("-", "_")
    fix = f"use letters, digits and single - or _ between words, starting with a letter, such as " \
          f"{_suggestion(name, kind)!r}"
    if not component:
        leftover = f" once the {PREFIX!r} prefix is removed" if name.strip() else ""
        raise ValidationError(f"plugin name {name!r} is empty{leftover}; {fix}")
    if not _WORDS.fullmatch(component):
        raise ValidationError(f"plugin name {name!r} gives the component name {component!r}, which is not a "
                              f"Python identifier; {fix}")
    if keyword.iskeyword(component):
        raise ValidationError(f"plugin name {name!r} is a Python keyword, which cannot be a component name; "
                              f"choose another, such as {_suggestion(name, kind)!r}")
    return PluginNames(
        distribution=PREFIX + component.replace("_", "-"),
        package="molplat_" + component,
        component=component,
        class_name=_class_name(component, kind),
        module=MODULES.get(kind, kind),
    )


def _class_name(component: str, kind: str) -> str:
    """``my_model`` -> ``MyModel``, unless the kind's template already uses that name (a component
    called ``interaction`` must not shadow the model's Interaction block): then ``InteractionModel``."""
    name = "".join(part.capitalize() for part in component.split("_"))
    folder = templates_dir() / TEMPLATE / "kinds" / kind
    taken = {word for path in folder.glob("*.jinja") for word in re.findall(r"\b[A-Z]\w*", path.read_text("utf-8"))}
    while name in taken:
        name += MODULES.get(kind, "component").capitalize()
    return name


def check_available(names: PluginNames, target: Path) -> None:
    """One ValidationError for the first reason the plugin cannot be created at ``target``."""
    if target.parent.exists() and not target.parent.is_dir():
        raise ValidationError(f"--dir {target.parent} is a file, not a folder; pass a folder")
    if target.exists():
        raise ValidationError(f"{target} already exists; remove it, or pass another --dir or name")
    try:
        installed = metadata.distribution(names.distribution)
    except metadata.PackageNotFoundError:
        installed = None
    if installed is not None:
        raise ValidationError(f"distribution {names.distribution!r} {installed.version} is already installed; "
                              f"choose another name (or `pip uninstall {names.distribution}` if it is an old "
                              f"copy of this plugin)")
    from molplat.plugins import get_plugin_manager

    taken = get_plugin_manager().find(names.component)
    if taken:
        owners = ", ".join(f"{spec.kind} from plugin {spec.plugin!r}" for spec in taken)
        raise ValidationError(f"a component named {names.component!r} is already registered ({owners}); "
                              f"choose another name, such as '{names.component.replace('_', '-')}-2' or "
                              f"'my-{names.component.replace('_', '-')}'")
    spec = util.find_spec(names.package)
    if spec is not None:
        where = spec.origin or (list(spec.submodule_search_locations or []) or ["?"])[0]
        raise ValidationError(f"a Python package named {names.package!r} is already importable (from {where}); "
                              f"choose another name, or remove it from the path")


def render(names: PluginNames, kind: str, target: Path) -> None:
    """Render the template into ``target`` (which must not exist); on failure leave nothing behind."""
    try:
        import copier
    except ImportError:
        raise PluginError("molplat new-plugin needs copier; install it with `pip install 'copier>=9'`") from None
    source = templates_dir() / TEMPLATE
    if not (source / "copier.yml").is_file():
        raise PluginError(f"the plugin template is missing ({source / 'copier.yml'}); reinstall molplat")
    data = {"name": names.component, "kind": kind, "component": names.component,
            "distribution": names.distribution, "package": names.package,
            "class_name": names.class_name, "module": names.module}
    try:
        copier.run_copy(str(source), str(target), data=data, defaults=True, quiet=True, overwrite=False,
                        unsafe=False)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def new_plugin(name: str, kind: str, directory: str | Path = ".", echo: Callable[[str], None] = print) -> Path:
    """Render a complete plugin distribution for ``kind`` into ``directory/molplat-NAME`` and return it."""
    if kind not in SCAFFOLD_KINDS:
        raise ValidationError(f"unknown kind {kind!r}; use one of: {', '.join(SCAFFOLD_KINDS)}")
    names = plugin_names(name, kind)
    target = Path(directory) / names.distribution
    check_available(names, target)
    render(names, kind, target)
    echo(f"created {target}: {kind} {names.component!r} in {names.package}.{names.module}:{names.class_name}")
    echo("next:")
    echo(f"  cd {target}")
    echo('  pip install -e ".[test]"        # the plugin, pytest and molplat-sdk')
    echo("  pytest                          # the conformance suite and the plugin's own tests")
    echo("  molplat run examples/pipeline.toml")
    return target
