"""What a plugin declares about a component, without importing it.

A ComponentSpec is cheap: it names a factory by import path so that listing
plugins never imports torch, and a component whose dependencies are broken
fails only when it is built.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

KINDS: tuple[str, ...] = (
    "dataset",
    "representation",
    "model",
    "trainer_backend",
    "searcher",
    "explainer",
    "simulator",
)

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list[int]": (list,),
    "list[float]": (list,),
    "list[str]": (list,),
    "dict": (dict,),
}


@dataclass(frozen=True)
class Setting:
    """One key a component accepts in its pipeline table."""

    name: str
    type: str
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"setting {self.name!r}: unknown type {self.type!r}; use one of {sorted(_TYPES)}")

    def check(self, value: Any) -> str | None:
        """Return a problem description, or None when ``value`` is acceptable."""
        if value is None and not self.required:
            return None
        expected = _TYPES[self.type]
        if isinstance(value, bool) and self.type in ("int", "float"):
            return f"expected {self.type}, got a boolean {value!r}"
        if not isinstance(value, expected):
            return f"expected {self.type}, got {type(value).__name__} {value!r}"
        if self.type.startswith("list["):
            inner = self.type[5:-1]
            for item in value:
                problem = Setting(self.name, inner).check(item)
                if problem:
                    return f"in list: {problem}"
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            return f"{value!r} is not allowed; allowed values: {allowed}"
        if self.minimum is not None and isinstance(value, (int, float)) and value < self.minimum:
            return f"{value!r} is below the minimum {self.minimum}"
        if self.maximum is not None and isinstance(value, (int, float)) and value > self.maximum:
            return f"{value!r} is above the maximum {self.maximum}"
        return None

    def describe(self) -> str:
        parts = [f"{self.type}"]
        parts.append("required" if self.required else f"default {self.default!r}")
        if self.choices is not None:
            parts.append("one of " + ", ".join(repr(c) for c in self.choices))
        if self.minimum is not None:
            parts.append(f">= {self.minimum}")
        if self.maximum is not None:
            parts.append(f"<= {self.maximum}")
        return "; ".join(parts)


@dataclass(frozen=True)
class ComponentSpec:
    """A component a plugin provides: its name, kind, settings and lazy factory.

    ``factory`` is ``"package.module:Attribute"``; the attribute is called with the
    validated settings as keyword arguments. ``accepts`` lists the representations a
    model takes; ``outputs`` what it predicts.
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
        names = [s.name for s in self.settings]
        if len(names) != len(set(names)):
            raise ValueError(f"component {self.name!r}: a setting is declared twice in {names}")

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
