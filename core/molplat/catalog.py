"""The plugin catalog (registry.toml): which plugins exist, beside which are installed.

The catalog is only a list of names to install from. It is read without importing any
plugin (so `molplat list-plugins --available` imports no torch), and a broken catalog is
reported on its own without touching the plugins that are installed.
"""
from __future__ import annotations

import difflib
import importlib
import json
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from molplat.errors import RunError, ValidationError
from molplat.resources import REGISTRY_ENV, checkout_root, registry_path
from molplat.specs import PLUGIN_KINDS

#: Each required key, with the line a user adds to fix its absence.
REQUIRED_KEYS: dict[str, str] = {
    "distribution": 'distribution = "molplat-NAME"',
    "version": 'version = "0.1.0" (the newest release)',
    "versions": 'versions = ">=0.1,<0.2" (the range pip installs)',
    "kinds": 'kinds = ["model"]',
    "components": 'components = { model = ["NAME"] }',
    "summary": 'summary = "one line"',
    "homepage": 'homepage = "https://..."',
    "paper": 'paper = "A. Author, Journal 1, 1 (2024)" (or "" when there is none)',
}
OPTIONAL_KEYS: dict[str, str] = {"path": 'path = "plugins/molplat-NAME"'}

INSTALLED = "installed"
NOT_INSTALLED = "not installed"
NEWER_IN_CATALOG = "newer in catalog"
NOT_IN_CATALOG = "not in catalog"


@dataclass(frozen=True)
class CatalogEntry:
    """One [plugins.NAME] table, validated."""

    name: str
    distribution: str
    version: str
    versions: str
    kinds: tuple[str, ...]
    components: dict[str, tuple[str, ...]]
    summary: str
    homepage: str
    paper: str
    path: Path | None = None  # absolute source folder; None for third-party plugins

    def requirement(self, from_checkout: bool) -> list[str]:
        """pip arguments: editable from the source folder in a checkout, else from an index."""
        if from_checkout and self.path is not None and self.path.is_dir():
            return ["-e", str(self.path)]
        return [f"{self.distribution}{self.versions}"]


@dataclass(frozen=True)
class Catalog:
    """Every entry of one registry file, by catalog name."""

    path: Path
    entries: dict[str, CatalogEntry]

    def find(self, name: str) -> CatalogEntry | None:
        """The entry called ``name``, by catalog name or by distribution name."""
        if name in self.entries:
            return self.entries[name]
        wanted = canonicalize_name(name)
        return next((e for e in self.entries.values() if canonicalize_name(e.distribution) == wanted), None)

    def close_match(self, name: str) -> str | None:
        names = list(self.entries) + [e.distribution for e in self.entries.values()]
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        return close[0] if close else None


# -- loading and validation ----------------------------------------------------------------
def load_catalog(path: Path | str | None = None) -> Catalog:
    """The validated catalog; one ValidationError lists every problem of the file."""
    path = Path(path) if path is not None else registry_path()
    raw = _read_toml(path)
    problems: list[str] = []
    for key in raw:
        if key != "plugins":
            problems.append(f"unknown top-level key {key!r}; entries go in [plugins.NAME] tables")
    tables = raw.get("plugins")
    if not isinstance(tables, dict) or not tables:
        problems.append("no [plugins.NAME] tables; add one per plugin (see the comment at the top of "
                        "the registry.toml that ships with molplat)")
        tables = {}
    entries = {}
    for name, table in tables.items():
        entry = _entry(name, table, path.parent, problems)
        if entry is not None:
            entries[name] = entry
    problems += _duplicate_distributions(entries)
    if problems:
        raise ValidationError(problems, source=str(path))
    return Catalog(path, entries)


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValidationError(f"catalog file not found; point {REGISTRY_ENV} at a registry.toml "
                              f"(or unset it to use the one shipped with molplat)", source=str(path))
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"not valid TOML: {exc}; fix the syntax at that line", source=str(path)) from None


def _entry(name: str, table: Any, folder: Path, problems: list[str]) -> CatalogEntry | None:
    where = f"[plugins.{name}]"
    if not isinstance(table, dict):
        problems.append(f"plugins.{name} must be a table; write {where} followed by its keys")
        return None
    before = len(problems)
    allowed = list(REQUIRED_KEYS) + list(OPTIONAL_KEYS)
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{where}: unknown key {key!r}{hint} (allowed: {', '.join(allowed)})")
    for key, example in REQUIRED_KEYS.items():
        if key not in table:
            problems.append(f"{where}: missing key {key!r}; add {example}")
    for key in ("distribution", "version", "versions", "summary", "homepage", "paper", "path"):
        if key in table and not isinstance(table[key], str):
            problems.append(f"{where} {key}: expected a string, got {type(table[key]).__name__}; "
                            f"write {REQUIRED_KEYS.get(key) or OPTIONAL_KEYS[key]}")
    if len(problems) == before:
        problems += _version_problems(where, table["version"], table["versions"])
        problems += _kind_problems(where, table["kinds"], table["components"])
        if not table["distribution"].strip():
            problems.append(f"{where} distribution: empty; write {REQUIRED_KEYS['distribution']}")
    if len(problems) > before:
        return None
    source = table.get("path")
    return CatalogEntry(
        name=name,
        distribution=table["distribution"],
        version=table["version"],
        versions=table["versions"],
        kinds=tuple(table["kinds"]),
        components={kind: tuple(names) for kind, names in table["components"].items()},
        summary=table["summary"],
        homepage=table["homepage"],
        paper=table["paper"],
        path=(folder / source).resolve() if source else None,
    )


def _version_problems(where: str, version: str, versions: str) -> list[str]:
    try:
        release = Version(version)
    except InvalidVersion:
        return [f"{where} version: {version!r} is not a version; write a release such as \"0.1.0\""]
    try:
        accepted = SpecifierSet(versions)
    except InvalidSpecifier:
        return [f"{where} versions: {versions!r} is not a version range; write one such as \">=0.1,<0.2\""]
    if release not in accepted:
        return [f"{where} versions: {versions!r} excludes version {version!r}; widen the range or fix version"]
    return []


def _kind_problems(where: str, kinds: Any, components: Any) -> list[str]:
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
        return [f"{where} kinds: expected a non-empty list of kinds; write {REQUIRED_KEYS['kinds']}"]
    problems = []
    for kind in kinds:
        if kind not in PLUGIN_KINDS:
            close = difflib.get_close_matches(kind, PLUGIN_KINDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{where} kinds: unknown kind {kind!r}{hint} (kinds: {', '.join(PLUGIN_KINDS)})")
    if not isinstance(components, dict):
        return problems + [f"{where} components: expected a table; write {REQUIRED_KEYS['components']}"]
    if sorted(components) != sorted(kinds):
        problems.append(f"{where} components: its kinds {sorted(components)} differ from kinds {sorted(kinds)}; "
                        f"give every kind its component names and nothing else")
    for kind, names in components.items():
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            problems.append(f"{where} components.{kind}: expected a non-empty list of component names, "
                            f"such as [\"NAME\"]")
    return problems


def _duplicate_distributions(entries: dict[str, CatalogEntry]) -> list[str]:
    seen: dict[str, str] = {}
    problems = []
    for name, entry in entries.items():
        key = canonicalize_name(entry.distribution)
        if key in seen:
            problems.append(f"[plugins.{name}] distribution: {entry.distribution!r} is already listed as "
                            f"[plugins.{seen[key]}]; keep one entry per distribution")
        seen.setdefault(key, name)
    return problems


# -- the catalog beside what is installed -------------------------------------------------
@dataclass(frozen=True)
class Availability:
    """One row of `molplat list-plugins --available`."""

    name: str
    distribution: str
    status: str  # installed | not installed | newer in catalog | not in catalog
    catalog_version: str | None
    installed_version: str | None
    plugin_status: str | None  # how the installed plugin loaded: loaded, failed, disabled, ...
    components: dict[str, tuple[str, ...]]
    summary: str = ""
    homepage: str = ""
    paper: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "status": self.status,
            "catalog_version": self.catalog_version,
            "installed_version": self.installed_version,
            "plugin_status": self.plugin_status,
            "kinds": list(self.components),
            "components": {k: list(v) for k, v in self.components.items()},
            "summary": self.summary,
            "homepage": self.homepage,
            "paper": self.paper,
        }


def _status(catalog_version: str, installed_version: str | None) -> str:
    if installed_version is None:
        return NOT_INSTALLED
    try:
        older = Version(installed_version) < Version(catalog_version)
    except InvalidVersion:
        return INSTALLED
    return NEWER_IN_CATALOG if older else INSTALLED


def _installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def availability(catalog: Catalog) -> list[Availability]:
    """Every catalog entry with its install status, then installed plugins the catalog lacks."""
    from molplat.plugins import CORE_PLUGIN, get_plugin_manager

    installed = {canonicalize_name(p.name): p for p in get_plugin_manager().plugins if p.name != CORE_PLUGIN}
    rows = []
    for entry in catalog.entries.values():
        plugin = installed.pop(canonicalize_name(entry.distribution), None)
        version = plugin.version if plugin is not None else _installed_version(entry.distribution)
        rows.append(Availability(entry.name, entry.distribution, _status(entry.version, version), entry.version,
                                 version, plugin.status if plugin else None, entry.components, entry.summary,
                                 entry.homepage, entry.paper))
    for plugin in installed.values():
        components = {k: tuple(v) for k, v in plugin.components.items()}
        rows.append(Availability(plugin.name, plugin.name, NOT_IN_CATALOG, None, plugin.version, plugin.status,
                                 components))
    return rows


def print_available(kind: str | None, as_json: bool) -> int:
    """`molplat list-plugins --available`: what could be installed, and what is."""
    rows = availability(load_catalog())
    if kind:
        rows = [r for r in rows if kind in r.components]
    if as_json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return 0
    from molplat.cli import table as _table

    table = [[r.name, r.distribution, r.catalog_version or "-", r.installed_version or "-", _status_text(r),
              _components_text(r.components, kind)] for r in rows]
    print(_table(table, ["name", "distribution", "catalog", "installed", "status", "components"]))
    if any(r.status == NOT_INSTALLED for r in rows):
        print("\ninstall one with `molplat install NAME`")
    if any(r.status == NEWER_IN_CATALOG for r in rows):
        print("upgrade one with `molplat install --upgrade NAME`")
    return 0


def _status_text(row: Availability) -> str:
    if row.plugin_status and row.plugin_status != "loaded":
        return f"{row.status} ({row.plugin_status})"
    return row.status


def _components_text(components: dict[str, tuple[str, ...]], only: str | None) -> str:
    kinds = [k for k in PLUGIN_KINDS if k in components and (not only or k == only)]
    return "; ".join(f"{k}: {', '.join(components[k])}" for k in kinds) or "-"


# -- installing ------------------------------------------------------------------------------
def resolve(catalog: Catalog, names: list[str]) -> list[CatalogEntry]:
    """The entries for ``names``, each once; every unknown name in one ValidationError."""
    entries: list[CatalogEntry] = []
    problems = []
    for name in names:
        entry = catalog.find(name)
        if entry is None:
            close = catalog.close_match(name)
            hint = f"; did you mean {close!r}?" if close else ""
            problems.append(f"{name!r} is not in the catalog {catalog.path}{hint} "
                            f"(known: {', '.join(catalog.entries)}; see `molplat list-plugins --available`)")
        elif entry not in entries:
            entries.append(entry)
    if problems:
        raise ValidationError(problems + ["nothing was installed; fix the names and run it again"])
    return entries


def pip_command(entries: list[CatalogEntry], from_checkout: bool, upgrade: bool = False,
                build_isolation: bool = True) -> list[str]:
    """pip run by this very interpreter, so plugins land where molplat looks for them."""
    command = [sys.executable, "-m", "pip", "install"]
    if upgrade:
        command.append("--upgrade")
    if not build_isolation:
        command.append("--no-build-isolation")
    for entry in entries:
        command += entry.requirement(from_checkout)
    return command


def _run_pip(command: list[str]) -> int:
    """Runs pip with its output streaming to this terminal."""
    return subprocess.run(command, check=False).returncode


def install(names: list[str], dry_run: bool = False, upgrade: bool = False, build_isolation: bool = True) -> int:
    """`molplat install NAME...`: pip-install catalog plugins into the running environment."""
    catalog = load_catalog()
    entries = resolve(catalog, names)  # every name is checked before pip runs
    command = pip_command(entries, checkout_root() is not None, upgrade, build_isolation)
    if dry_run:
        print(shlex.join(command))
        return 0
    print(f"running: {shlex.join(command)}", flush=True)
    code = _run_pip(command)
    if code != 0:
        offline = " (offline? --no-build-isolation builds with the setuptools here)" if build_isolation else ""
        raise RunError(f"pip install failed with exit code {code} (its output is above); "
                       f"fix that and run `molplat install {' '.join(names)}` again{offline}")
    _report_installed(entries)
    return 0


def _report_installed(entries: list[CatalogEntry]) -> None:
    importlib.invalidate_caches()
    for entry in entries:
        version = _installed_version(entry.distribution)
        components = _components_text(entry.components, None)
        if version is None:
            print(f"{entry.distribution}: pip finished but this Python does not see it; "
                  f"check that pip installed into {sys.prefix}")
        else:
            print(f"installed {entry.distribution} {version} ({components})")
    print("`molplat list-plugins` shows whether it loaded and what it registers")
