"""The public-surface check: a plugin's source imports only the molplat modules in
``molplat.PUBLIC_MODULES``, so a core release that reshuffles its internals cannot break it.

The source is read, never imported: every ``.py`` file of the package holding the
plugin's entry-point module is parsed with :mod:`ast`.
"""
from __future__ import annotations

import ast
import importlib.util
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import molplat

#: where the names of the internal modules live publicly; checked longest prefix first
PUBLIC_HOMES: dict[str, str] = {
    "molplat.pipeline.runner": "molplat.results (RunContext, run_stage_component) or molplat.data (make_sample)",
    "molplat.pipeline.config": "molplat.load_pipeline(source, manager=...)",
    "molplat.pipeline": "molplat.load_pipeline, molplat.results, molplat.data or molplat.rundir",
    "molplat.training.lightning": "molplat.training (TrainingJob, FitResult, fit_with_lightning)",
    "molplat.training.task": "molplat.training (AtomisticTask)",
    "molplat.training.data": "molplat.data (Sample, SampleCollator, make_sample)",
    "molplat.training": "molplat.training",
    "molplat.builtin": "molplat.training (TRAINER_SETTINGS)",
    "molplat.models": "molplat.models (AtomisticModel, ModelOutput, Head, Heads, build_model)",
    "molplat.data": "molplat.data (Dataset, Sample, SampleCollator, TrainingStatistics, make_sample, ...)",
    "molplat.cli": "the `molplat` command, run as a subprocess",
}


@dataclass(frozen=True)
class PrivateImport:
    """One import of an internal molplat module: where, what, and the public module to use instead."""

    file: Path
    line: int
    module: str

    @property
    def alternative(self) -> str:
        for prefix in sorted(PUBLIC_HOMES, key=len, reverse=True):
            if self.module == prefix or self.module.startswith(prefix + "."):
                return PUBLIC_HOMES[prefix]
        parts = self.module.split(".")
        for end in range(len(parts) - 1, 0, -1):
            parent = ".".join(parts[:end])
            if parent in molplat.PUBLIC_MODULES:
                return parent
        return "molplat"


@lru_cache(maxsize=1)
def molplat_modules() -> frozenset[str]:
    """Every module of the molplat package, found on disk without importing any."""
    names = {m.name for m in pkgutil.walk_packages(molplat.__path__, "molplat.")}
    return frozenset(names | {"molplat"})


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every absolute molplat import; ``from molplat.x import y`` counts as
    ``molplat.x.y`` when ``y`` is itself a module (``from molplat import pipeline``)."""
    found: list[tuple[int, str]] = []
    known = molplat_modules()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "molplat"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "molplat":
            submodules = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known]
            found += [(node.lineno, name) for name in submodules]
            if len(submodules) < len(node.names):
                found.append((node.lineno, node.module))
    return found


def package_files(module: str) -> list[Path]:
    """The .py files of the top-level package that holds ``module`` (its own file when it is a
    top-level module). Finding the package imports none of it."""
    spec = importlib.util.find_spec(module.split(".")[0])
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return sorted(p for folder in spec.submodule_search_locations for p in Path(folder).rglob("*.py"))
    return [Path(spec.origin)] if spec.origin and spec.origin.endswith(".py") else []


def private_imports(files: list[Path]) -> list[PrivateImport]:
    """Every import of a molplat module outside ``molplat.PUBLIC_MODULES`` in ``files``."""
    public = set(molplat.PUBLIC_MODULES)
    found = []
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue  # importing the module reports these better than a scan can
        found += [PrivateImport(path, line, name) for line, name in imported_modules(tree) if name not in public]
    return sorted(found, key=lambda p: (str(p.file), p.line))
