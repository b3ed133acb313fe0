"""What a plugin declares about a component, without importing it.

A ComponentSpec is cheap: it names a factory by import path so that listing
plugins never imports torch, and a component whose dependencies are broken
fails only when it is built.
"""
from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS: tuple[str, ...] = (
    "dataset",
    "representation",
    "model",
    "trainer_backend",
    "searcher",
    "explainer",
    "simulator",
    "store_backend",
)
#: what a plugin may provide besides components: loggers, named by ``molplat_loggers`` and
#: turned on by ``[output] loggers``; they have no spec, only the plugin's event hooks
LOGGER = "logger"
#: what a plugin may add to the command line: ``molplat NAME`` subcommands, declared by
#: ``molplat_commands`` as CommandSpecs (imported only when the command runs)
COMMAND = "command"
#: every kind of thing a plugin can provide (``list-plugins`` and registry.toml ``kinds``)
PLUGIN_KINDS: tuple[str, ...] = (*KINDS, LOGGER, COMMAND)

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "path": (str,),
    "list[int]": (list,),
    "list[float]": (list,),
    "list[str]": (list,),
    "str|list[str]": (str, list),
    "dict": (dict,),
}
#: setting types whose values (or items) are numbers, and so need bounds
NUMERIC_TYPES = ("int", "float", "list[int]", "list[float]")
#: longest string a setting accepts; longer values are mistakes (or attacks), never names
MAX_STRING = 4096
#: the largest neighbour radius (Å) a setting may allow: no published model uses more, and
#: featurising at 1e6 Å takes hours. Cutoff settings use it as their maximum.
MAX_CUTOFF = 20.0


@dataclass(frozen=True)
class Setting:
    """One key a component accepts in its pipeline table.

    Numbers are checked against ``minimum``/``maximum`` (inclusive, unless
    ``exclusive_minimum``/``exclusive_maximum``) and must be finite. A ``path`` is a
    string that the pipeline resolves against the folder of the pipeline file; with
    ``must_exist`` (the default) validation insists that it exists.
    """

    name: str
    type: str
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    must_exist: bool = True

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"setting {self.name!r}: unknown type {self.type!r}; use one of {sorted(_TYPES)}")

    @property
    def bounded(self) -> bool:
        """Whether a numeric setting has both bounds (the SDK insists on it: 1e6 Å cutoffs hang)."""
        return self.type not in NUMERIC_TYPES or self.choices is not None or (
            self.minimum is not None and self.maximum is not None)

    def check(self, value: Any) -> str | None:
        """Return a problem description, or None when ``value`` is acceptable."""
        if value is None and not self.required:
            return None
        expected = _TYPES[self.type]
        if isinstance(value, bool) and self.type in ("int", "float"):
            return f"expected {self.type}, got a boolean {value!r}"
        if not isinstance(value, expected):
            return f"expected {self.type}, got {type(value).__name__} {_short(value)}"
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                return f"a string of {len(value)} characters is too long (at most {MAX_STRING})"
            if "\x00" in value:
                return "contains a NUL character"
        if self.type.startswith("list[") or (self.type == "str|list[str]" and isinstance(value, list)):
            if self.type == "str|list[str]" and not value:
                return "expected a name or a non-empty list of names"
            inner = Setting(self.name, self.type.rpartition("[")[2].rstrip("]"), minimum=self.minimum, maximum=self.maximum,
                            exclusive_minimum=self.exclusive_minimum, exclusive_maximum=self.exclusive_maximum,
                            choices=self.choices)
            for item in value:
                problem = inner.check(item)
                if problem:
                    return f"in list: {problem}"
            return None
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            return f"{_short(value)} is not allowed; allowed values: {allowed}"
        if isinstance(value, (int, float)):
            return self._check_number(value)
        return None

    def _check_number(self, value: float) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return f"{value!r} is not a finite number"
        low, high = self.minimum, self.maximum
        if low is not None and (value < low or (self.exclusive_minimum and value == low)):
            return f"{value!r} is below the minimum {low}" if value < low else f"{value!r} must be above {low}"
        if high is not None and (value > high or (self.exclusive_maximum and value == high)):
            return f"{value!r} is above the maximum {high}" if value > high else f"{value!r} must be below {high}"
        return None

    def describe(self) -> str:
        parts = [f"{self.type}"]
        parts.append("required" if self.required else f"default {self.default!r}")
        if self.choices is not None:
            parts.append("one of " + ", ".join(repr(c) for c in self.choices))
        if self.minimum is not None:
            parts.append(f"{'>' if self.exclusive_minimum else '>='} {self.minimum}")
        if self.maximum is not None:
            parts.append(f"{'<' if self.exclusive_maximum else '<='} {self.maximum}")
        return "; ".join(parts)

    def resolve_path(self, value: Any, base: Path) -> Any:
        """A ``path`` value made absolute against ``base`` (the pipeline file's folder); ``~`` is expanded."""
        if self.type != "path" or not isinstance(value, str) or not value:
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (base / path).resolve())


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class ComponentSpec:
    """A component a plugin provides: its name, kind, settings and lazy factory.

    ``factory`` is ``"package.module:Attribute"``; the attribute is called with the
    validated settings as keyword arguments. ``accepts`` lists the representations a
    model takes; ``outputs`` what it predicts. ``plugin`` is filled in by the plugin
    manager with the distribution name, and ``qualified_name`` (``DISTRIBUTION:NAME``)
    tells two plugins' components of the same name apart.
    """

    name: str
    kind: str
    factory: str
    summary: str = ""
    settings: tuple[Setting, ...] = ()
    accepts: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    citation: str = ""
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"component {self.name!r}: unknown kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if ":" not in self.factory:
            raise ValueError(f"component {self.name!r}: factory {self.factory!r} must look like 'package.module:Name'")
        if ":" in self.name:
            raise ValueError(f"component {self.name!r}: ':' is reserved for qualified names (DISTRIBUTION:NAME)")
        names = [s.name for s in self.settings]
        if len(names) != len(set(names)):
            raise ValueError(f"component {self.name!r}: a setting is declared twice in {names}")

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}:{self.name}" if self.plugin else self.name

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {s.name: s.default for s in self.settings}

    def load(self) -> Any:
        """Import and return the factory; only now is the component's code imported."""
        module_name, _, attr = self.factory.partition(":")
        module = importlib.import_module(module_name)
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    def build(self, **settings: Any) -> Any:
        values = self.defaults()
        values.update(settings)
        return self.load()(**values)


#: what a plugin command may be called: lowercase words joined by hyphens, like the core's own
COMMAND_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class CommandSpec:
    """A ``molplat NAME`` subcommand a plugin adds, named by import path.

    ``factory`` is ``"package.module:attribute"``, a ``click.Command``; it is imported
    only when the command runs (or shows its own ``--help``), so ``molplat --help`` and
    ``molplat list-plugins`` list it from ``summary`` without importing its code.
    ``plugin`` is filled in by the plugin manager.
    """

    name: str
    factory: str
    summary: str
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not COMMAND_NAME.match(self.name):
            raise ValueError(f"command {self.name!r}: name it with lowercase words joined by hyphens, like 'my-command'")
        if ":" not in self.factory:
            raise ValueError(f"command {self.name!r}: factory {self.factory!r} must look like 'package.module:command'")
        if not self.summary.strip() or "\n" in self.summary:
            raise ValueError(f"command {self.name!r}: give a one-line summary (molplat --help shows it)")

    def load(self) -> Any:
        """Import and return the click command; only now is the command's code imported."""
        module_name, _, attr = self.factory.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
