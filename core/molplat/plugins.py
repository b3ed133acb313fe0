"""Discovery and isolation of plugins.

Each distribution that declares an entry point in the ``molplat.plugins`` group
is loaded on its own: a plugin that fails to import, declares an API range this
core does not satisfy, or re-registers a component name is reported with its
reason, and every other plugin still works.
"""
from __future__ import annotations

import difflib
import os
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from molplat import hookspecs
from molplat.errors import ValidationError
from molplat.specs import KINDS, ComponentSpec

ENTRY_POINT_GROUP = "molplat.plugins"
CORE_PLUGIN = "molplat"
DISABLE_ENV = "MOLPLAT_DISABLE_PLUGINS"


@dataclass
class PluginInfo:
    """What ``molplat list-plugins`` reports about one plugin distribution."""

    name: str
    version: str
    status: str  # loaded | failed | disabled | incompatible
    error: str | None = None
    components: dict[str, list[str]] = field(default_factory=dict)
    module: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "components": {k: list(v) for k, v in self.components.items()},
        }


def disabled_from_env() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _api_problem(module: types.ModuleType) -> str | None:
    from molplat import PLUGIN_API_VERSION

    declared = getattr(module, "MOLPLAT_API", None)
    if declared is None:
        return f"declares no MOLPLAT_API range; add MOLPLAT_API = \">=1.0,<2\" to {module.__name__}"
    try:
        accepted = SpecifierSet(str(declared))
    except InvalidSpecifier:
        return f"MOLPLAT_API {declared!r} in {module.__name__} is not a version range such as \">=1.0,<2\""
    if Version(PLUGIN_API_VERSION) not in accepted:
        return f"written for molplat plugin API {declared}, this molplat provides {PLUGIN_API_VERSION}"
    return None


class PluginManager:
    """Loads plugins and answers which components exist, through typed methods."""

    def __init__(self, disabled: Iterable[str] = (), entry_points: Iterable[metadata.EntryPoint] | None = None,
                 extra: Mapping[str, types.ModuleType] | None = None):
        """``extra`` registers in-process plugin modules by name after the installed ones: the
        SDK's toy components in a test session, never anything a user's pipeline relies on."""
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self.disabled = set(disabled) | disabled_from_env()
        self.plugins: list[PluginInfo] = []
        self._specs: dict[str, dict[str, ComponentSpec]] = {kind: {} for kind in KINDS}
        self._load_core()
        eps = entry_points if entry_points is not None else metadata.entry_points(group=ENTRY_POINT_GROUP)
        for ep in sorted(eps, key=lambda e: (e.dist.name if e.dist else e.name).lower()):
            self._load_entry_point(ep)
        for name, module in (extra or {}).items():
            self._load_module(name, module)

    def _load_module(self, name: str, module: types.ModuleType) -> None:
        info = PluginInfo(name, "in-process", "loaded", module=module.__name__)
        self.plugins.append(info)
        problem = _api_problem(module)
        if problem:
            info.status, info.error = "incompatible", problem
            return
        self._register(info, module)

    # -- loading -----------------------------------------------------------------------
    def _load_core(self) -> None:
        from molplat import __version__, builtin

        info = PluginInfo(CORE_PLUGIN, __version__, "loaded", module=builtin.__name__)
        self._register(info, builtin)
        self.plugins.append(info)

    def _load_entry_point(self, ep: metadata.EntryPoint) -> None:
        name = ep.dist.name if ep.dist else ep.name
        version = ep.dist.version if ep.dist else "unknown"
        info = PluginInfo(name, version, "loaded", module=ep.value)
        self.plugins.append(info)
        if name in self.disabled or ep.name in self.disabled:
            info.status = "disabled"
            info.error = f"disabled by {DISABLE_ENV} or [plugins] disable"
            return
        if any(p.name == name for p in self.plugins[:-1]):
            info.status, info.error = "failed", f"distribution {name!r} is registered twice"
            return
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not take the others down
            info.status, info.error = "failed", f"import of {ep.value} failed: {_one_line(exc)}"
            return
        problem = _api_problem(module)
        if problem:
            info.status, info.error = "incompatible", problem
            return
        self._register(info, module)

    def _register(self, info: PluginInfo, module: types.ModuleType) -> None:
        try:
            self._pm.register(module, name=info.name)
            self._pm.check_pending()
        except Exception as exc:
            self._unregister(info.name)
            info.status, info.error = "failed", _one_line(exc)
            return
        collected: dict[str, list[ComponentSpec]] = {}
        try:
            for kind, hook_name in hookspecs.KIND_HOOKS.items():
                caller = getattr(self._pm.hook, hook_name)
                for impl in caller.get_hookimpls():
                    if impl.plugin_name != info.name:
                        continue
                    specs = impl.function() or []
                    collected[kind] = [self._checked(spec, kind, info.name) for spec in specs]
        except Exception as exc:
            self._unregister(info.name)
            info.status, info.error = "failed", _one_line(exc)
            return
        for kind, specs in collected.items():
            names = [s.name for s in specs]
            for spec in specs:
                owner = self._specs[kind].get(spec.name)
                if owner is not None or names.count(spec.name) > 1:
                    by = owner.plugin if owner is not None else info.name
                    self._unregister(info.name)
                    info.status = "failed"
                    info.error = f"{kind} {spec.name!r} is already registered by plugin {by!r}"
                    return
        for kind, specs in collected.items():
            for spec in specs:
                self._specs[kind][spec.name] = spec
            if specs:
                info.components[kind] = [s.name for s in specs]

    @staticmethod
    def _checked(spec: Any, kind: str, plugin: str) -> ComponentSpec:
        if not isinstance(spec, ComponentSpec):
            raise TypeError(f"hook for {kind} returned {type(spec).__name__}, not a ComponentSpec")
        if spec.kind != kind:
            raise TypeError(f"component {spec.name!r} has kind {spec.kind!r} but was returned for {kind}")
        return replace(spec, plugin=plugin)

    def _unregister(self, name: str) -> None:
        plugin = self._pm.get_plugin(name)
        if plugin is not None:
            self._pm.unregister(plugin, name=name)

    # -- queries -----------------------------------------------------------------------
    def components(self, kind: str) -> dict[str, ComponentSpec]:
        if kind not in KINDS:
            raise ValidationError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")
        return dict(self._specs[kind])

    def get(self, kind: str, name: str, where: str = "") -> ComponentSpec:
        """The spec of ``name``, or a ValidationError naming a close match and the plugin state."""
        specs = self._specs.get(kind, {})
        if name in specs:
            return specs[name]
        prefix = f"{where}: " if where else ""
        message = f"{prefix}unknown {kind} {name!r}"
        close = difflib.get_close_matches(name, list(specs), n=1, cutoff=0.5)
        if close:
            message += f"; did you mean {close[0]!r}?"
        unavailable = [p for p in self.plugins if p.status != "loaded"]
        if unavailable:
            message += " (not loaded: " + ", ".join(f"{p.name} [{p.status}]" for p in unavailable) + ")"
        available = ", ".join(sorted(specs)) or "none installed"
        raise ValidationError(f"{message}; available: {available}")

    def find(self, name: str) -> list[ComponentSpec]:
        """Every component called ``name``, whatever its kind."""
        return [specs[name] for specs in self._specs.values() if name in specs]

    def plugin(self, name: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.name == name), None)

    # -- events ------------------------------------------------------------------------
    def run_started(self, run_dir: str, pipeline: dict[str, Any]) -> None:
        self._pm.hook.molplat_run_started(run_dir=run_dir, pipeline=pipeline)

    def stage_finished(self, run_dir: str, stage: str, result: dict[str, Any]) -> None:
        self._pm.hook.molplat_stage_finished(run_dir=run_dir, stage=stage, result=result)

    def run_finished(self, run_dir: str, summary: dict[str, Any]) -> None:
        self._pm.hook.molplat_run_finished(run_dir=run_dir, summary=summary)


_managers: dict[frozenset[str], PluginManager] = {}


def get_plugin_manager(disabled: Iterable[str] = ()) -> PluginManager:
    """The process-wide manager for this set of disabled plugins (plus the environment's)."""
    key = frozenset(disabled) | frozenset(disabled_from_env())
    if key not in _managers:
        _managers[key] = PluginManager(disabled=key)
    return _managers[key]
