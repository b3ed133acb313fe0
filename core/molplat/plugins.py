"""Discovery and isolation of plugins.

Each distribution that declares an entry point in the ``molplat.plugins`` group is
loaded on its own: a plugin that fails to import or declares an API range this core
does not satisfy is reported with its reason, and every other plugin still works.
Every component has a qualified name ``DISTRIBUTION:NAME``; when two plugins register
the same name, both stay usable by their qualified names and the bare name is refused
as ambiguous. Event hooks run isolated too: see :class:`RunEvents`. A plugin that
names loggers (``molplat_loggers``) gets events only in runs whose ``[output] loggers``
turns one of them on.
"""
from __future__ import annotations

import copy
import difflib
import os
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from molplat import hookspecs
from molplat.errors import ValidationError
from molplat.specs import COMMAND, KINDS, LOGGER, CommandSpec, ComponentSpec

ENTRY_POINT_GROUP = "molplat.plugins"
CORE_PLUGIN = "molplat"
DISABLE_ENV = "MOLPLAT_DISABLE_PLUGINS"
EVENT_HOOKS = ("molplat_run_started", "molplat_epoch_finished", "molplat_stage_finished", "molplat_run_finished")


@dataclass
class PluginInfo:
    """What ``molplat list-plugins`` reports about one plugin distribution."""

    name: str
    version: str
    status: str  # loaded | failed | disabled | incompatible
    error: str | None = None
    components: dict[str, list[str]] = field(default_factory=dict)
    module: str = ""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "components": {k: list(v) for k, v in self.components.items()},
            "warnings": list(self.warnings),
        }


def disabled_from_env() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0] if text else type(exc).__name__


def close_match(word: str, options: Iterable[str], cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` for the closest option, or ``""``."""
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=cutoff)
    return f"; did you mean {match[0]!r}?" if match else ""


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
        self.disabled_by_pipeline = set(disabled)
        self.disabled_by_env = disabled_from_env()
        self.disabled = self.disabled_by_pipeline | self.disabled_by_env
        self.plugins: list[PluginInfo] = []
        self._specs: dict[str, dict[str, ComponentSpec]] = {kind: {} for kind in KINDS}  # qualified name -> spec
        self._commands: dict[str, list[CommandSpec]] = {}  # command name -> the plugins' specs
        self._load_core()
        eps = entry_points if entry_points is not None else metadata.entry_points(group=ENTRY_POINT_GROUP)
        self._entry_names: set[str] = set()
        for ep in sorted(eps, key=lambda e: (e.dist.name if e.dist else e.name).lower()):
            self._entry_names |= {ep.name, ep.dist.name if ep.dist else ep.name}
            self._load_entry_point(ep)
        for name, module in (extra or {}).items():
            self._load_module(name, module)
        self._note_clashes()

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
        loggers: list[str] = []
        commands: list[CommandSpec] = []
        try:
            for impl in self._pm.hook.molplat_loggers.get_hookimpls():
                if impl.plugin_name == info.name:
                    loggers = self._checked_loggers(impl.function())
            for impl in self._pm.hook.molplat_commands.get_hookimpls():
                if impl.plugin_name == info.name:
                    commands = self._checked_commands(impl.function(), info.name)
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
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                self._unregister(info.name)
                info.status, info.error = "failed", f"registers {kind} {twice[0]!r} twice"
                return
        for kind, specs in collected.items():
            for spec in specs:
                self._specs[kind][spec.qualified_name] = spec
            if specs:
                info.components[kind] = [s.name for s in specs]
        if loggers:
            info.components[LOGGER] = loggers
        for command in commands:
            self._commands.setdefault(command.name, []).append(command)
        if commands:
            info.components[COMMAND] = [c.name for c in commands]

    @staticmethod
    def _checked_loggers(names: Any) -> list[str]:
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n.strip() == n and n
                                                            for n in names):
            raise TypeError("molplat_loggers must return a list of logger names (non-empty strings)")
        if len(set(names)) != len(names):
            raise TypeError(f"molplat_loggers names a logger twice: {sorted(names)}")
        return list(names)

    @staticmethod
    def _checked_commands(specs: Any, plugin: str) -> list[CommandSpec]:
        if not isinstance(specs, (list, tuple)) or not all(isinstance(s, CommandSpec) for s in specs):
            raise TypeError("molplat_commands must return a list of molplat.specs.CommandSpec")
        names = [s.name for s in specs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise TypeError(f"molplat_commands names command {twice[0]!r} twice")
        return [replace(s, plugin=plugin) for s in specs]

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

    def _note_clashes(self) -> None:
        for kind in KINDS:
            for name, specs in self._by_name(kind).items():
                if len(specs) < 2:
                    continue
                qualified = ", ".join(s.qualified_name for s in specs)
                for spec in specs:
                    info = self.plugin(spec.plugin)
                    if info is not None:
                        info.warnings.append(f"{kind} {name!r} is also registered by another plugin ({qualified}); "
                                             f"pipelines must name it {spec.qualified_name!r}")

        for name, specs in self._commands.items():
            if len(specs) > 1:
                plugins = ", ".join(s.plugin for s in specs)
                for spec in specs:
                    info = self.plugin(spec.plugin)
                    if info is not None:
                        info.warnings.append(f"command {name!r} is also added by another plugin ({plugins}); "
                                             f"`molplat {name}` refuses to run until all but one are disabled "
                                             f"({DISABLE_ENV})")

    def _by_name(self, kind: str) -> dict[str, list[ComponentSpec]]:
        grouped: dict[str, list[ComponentSpec]] = {}
        for spec in self._specs[kind].values():
            grouped.setdefault(spec.name, []).append(spec)
        return grouped

    # -- queries -----------------------------------------------------------------------
    def components(self, kind: str) -> dict[str, ComponentSpec]:
        """Every component of ``kind`` by the name a pipeline uses: bare when unique, qualified otherwise."""
        if kind not in KINDS:
            raise ValidationError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")
        out: dict[str, ComponentSpec] = {}
        for name, specs in self._by_name(kind).items():
            if len(specs) == 1:
                out[name] = specs[0]
            else:
                out.update({s.qualified_name: s for s in specs})
        return out

    def get(self, kind: str, name: str, where: str = "") -> ComponentSpec:
        """The spec named ``name`` (bare or ``DISTRIBUTION:NAME``), or one ValidationError line saying why not."""
        prefix = f"{where}: " if where else ""
        if name in self._specs.get(kind, {}):
            return self._specs[kind][name]
        candidates = self._by_name(kind).get(name, []) if ":" not in name else []
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            qualified = ", ".join(repr(s.qualified_name) for s in candidates)
            raise ValidationError(f"{prefix}{kind} {name!r} is registered by {len(candidates)} plugins; "
                                  f"name one of them: {qualified}")
        options = list(self.components(kind)) + list(self._specs.get(kind, {}))
        message = f"{prefix}unknown {kind} {name!r}" + close_match(name, options, cutoff=0.5)
        unavailable = [p for p in self.plugins if p.status != "loaded"]
        if unavailable:
            message += " (not loaded: " + ", ".join(f"{p.name} [{p.status}]" for p in unavailable) + ")"
        available = ", ".join(sorted(self.components(kind))) or "none installed"
        raise ValidationError(f"{message}; available: {available}")

    def find(self, name: str) -> list[ComponentSpec]:
        """Every component called ``name`` (bare or qualified), whatever its kind."""
        found = []
        for kind in KINDS:
            if name in self._specs[kind]:
                found.append(self._specs[kind][name])
            elif ":" not in name:
                found += self._by_name(kind).get(name, [])
        return found

    def commands(self, reserved: Iterable[str] = ()) -> tuple[dict[str, CommandSpec], dict[str, str]]:
        """The plugin commands ``molplat NAME`` can run, and why each other one cannot.

        ``reserved``: the core's own command names, which always win. A name two plugins
        add runs neither (which one the user meant is not ours to guess).
        """
        taken = set(reserved)
        usable: dict[str, CommandSpec] = {}
        refused: dict[str, str] = {}
        for name, specs in sorted(self._commands.items()):
            plugins = ", ".join(s.plugin for s in specs)
            if name in taken:
                refused[name] = (f"plugin {plugins} adds a command {name!r}, which is molplat's own "
                                 f"`molplat {name}`; the plugin's command is not available (rename it in the plugin)")
            elif len(specs) > 1:
                refused[name] = (f"command {name!r} is added by {len(specs)} plugins ({plugins}); disable all but "
                                 f"one with {DISABLE_ENV}=NAME to run it")
            else:
                usable[name] = specs[0]
        return usable, refused

    def plugin_commands(self, plugin: str) -> list[CommandSpec]:
        """The CommandSpecs one plugin adds, usable or not."""
        return [spec for specs in self._commands.values() for spec in specs if spec.plugin == plugin]

    def loggers(self) -> dict[str, list[str]]:
        """Each logger name ``[output] loggers`` may use, with the loaded plugins that provide it."""
        found: dict[str, list[str]] = {}
        for info in self.plugins:
            if info.status == "loaded":
                for name in info.components.get(LOGGER, []):
                    found.setdefault(name, []).append(info.name)
        return found

    def logger_problems(self, names: Iterable[str], where: str = "[output] loggers") -> list[str]:
        """One line per name in ``names`` that no loaded plugin provides, or that two provide."""
        known = self.loggers()
        problems = []
        for name in names:
            providers = known.get(name, [])
            if len(providers) > 1:
                problems.append(f"{where}: logger {name!r} is provided by {len(providers)} plugins "
                                f"({', '.join(providers)}); disable all but one with [plugins] disable")
            elif not providers:
                message = f"{where}: unknown logger {name!r}" + close_match(name, known, cutoff=0.5)
                unavailable = [p for p in self.plugins if p.status != "loaded"]
                if unavailable:
                    message += " (not loaded: " + ", ".join(f"{p.name} [{p.status}]" for p in unavailable) + ")"
                problems.append(f"{message}; installed loggers: {', '.join(sorted(known)) or 'none'} "
                                f"(install one: `molplat install NAME`, see `molplat list-plugins --available`)")
        return problems

    def plugin(self, name: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.name == name), None)

    def unknown_disabled(self) -> list[tuple[str, str, str]]:
        """``(name, source, close match)`` for each disabled name that is no installed plugin."""
        known = self._entry_names | {p.name for p in self.plugins}
        out = []
        for source, names in (("[plugins] disable", self.disabled_by_pipeline), (DISABLE_ENV, self.disabled_by_env)):
            for name in sorted(names - known):
                out.append((name, source, close_match(name, sorted(known))))
        return out

    def events(self, echo: Callable[[str], None] = print, loggers: Iterable[str] = ()) -> "RunEvents":
        """The event dispatcher of one run; ``loggers`` are the logger names its ``[output] loggers`` turns on.

        Plugins that provide loggers, none of them turned on, get no events: installing a
        logger never makes runs log.
        """
        wanted = set(loggers)
        silent = {p.name for p in self.plugins if p.components.get(LOGGER) and not wanted & set(p.components[LOGGER])}
        return RunEvents(self._pm, echo, silent=silent)


class RunEvents:
    """Calls the run-event hooks of every plugin, each on its own.

    A hook that raises never fails the run: the failure is reported once (plugin and
    hook named), that plugin is not called again during this run, and the message is
    kept in ``warnings`` for summary.json. Hooks get copies, so they cannot change what
    the run writes. Plugins in ``silent`` (loggers the run did not turn on) get nothing.
    """

    def __init__(self, pm: pluggy.PluginManager, echo: Callable[[str], None] = print,
                 silent: Iterable[str] = ()) -> None:
        self._pm = pm
        self._echo = echo
        self.silent: frozenset[str] = frozenset(silent)
        self.muted: set[str] = set()
        self.warnings: list[str] = []

    def run_started(self, run_dir: str, pipeline: dict[str, Any]) -> None:
        self._emit("molplat_run_started", run_dir=run_dir, pipeline=pipeline)

    def epoch_finished(self, run_dir: str, epoch: int, metrics: dict[str, float]) -> None:
        self._emit("molplat_epoch_finished", run_dir=run_dir, epoch=epoch, metrics=metrics)

    def stage_finished(self, run_dir: str, stage: str, result: dict[str, Any]) -> None:
        self._emit("molplat_stage_finished", run_dir=run_dir, stage=stage, result=result)

    def run_finished(self, run_dir: str, summary: dict[str, Any]) -> None:
        self._emit("molplat_run_finished", run_dir=run_dir, summary=summary)

    def run_failed(self, run_dir: str, error: str) -> None:
        self._emit("molplat_run_failed", run_dir=run_dir, error=error)

    def _emit(self, hook_name: str, **kwargs: Any) -> None:
        for impl in reversed(getattr(self._pm.hook, hook_name).get_hookimpls()):
            if impl.plugin_name in self.muted or impl.plugin_name in self.silent:
                continue
            try:
                impl.function(**{name: copy.deepcopy(kwargs[name]) for name in impl.argnames})
            except Exception as exc:  # an observer must never fail the run it observes
                self.muted.add(impl.plugin_name)
                message = (f"plugin {impl.plugin_name!r} failed in hook {hook_name} ({_one_line(exc)}); "
                           f"it is not called again during this run")
                self.warnings.append(message)
                self._echo(f"warning: {message}")


_managers: dict[frozenset[str], PluginManager] = {}


def core_commands() -> frozenset[str]:
    """The names of molplat's own subcommands (``molplat run``, ...), which a plugin command may not take."""
    from molplat.cli import cli

    return frozenset(cli.commands)


def get_plugin_manager(disabled: Iterable[str] = ()) -> PluginManager:
    """The process-wide manager for this set of disabled plugins (plus the environment's)."""
    key = frozenset(disabled) | frozenset(disabled_from_env())
    if key not in _managers:
        _managers[key] = PluginManager(disabled=set(disabled))
    return _managers[key]
