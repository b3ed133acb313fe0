"""Where the files that live beside the core package are found: templates/ and registry.toml.

In a checkout (and an editable install) they are read from the repository root. A wheel
carries copies inside the package, put there by the build step in setup.py, so that
`molplat new-plugin` and `molplat list-plugins --available` work after a plain
`pip install molplat` too.
"""
from __future__ import annotations

import os
from pathlib import Path

REGISTRY_ENV = "MOLPLAT_REGISTRY"
_PACKAGE = Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The repository root when molplat runs from a checkout, else None."""
    root = _PACKAGE.parent.parent
    if (root / "pyproject.toml").is_file() and (root / "core" / "molplat").is_dir():
        return root
    return None


def _first_existing(name: str) -> Path:
    root = checkout_root()
    if root is not None and (root / name).exists():
        return root / name
    return _PACKAGE / name


def templates_dir() -> Path:
    return _first_existing("templates")


def registry_path() -> Path:
    """The catalog: $MOLPLAT_REGISTRY if set, else the checkout's or the packaged registry.toml."""
    override = os.environ.get(REGISTRY_ENV)
    if override:
        return Path(override)
    return _first_existing("registry.toml")
