"""Finding the Graphcore PopTorch SDK, and saying how to get it when it is missing.

poptorch is not on PyPI: it is a wheel inside the Poplar SDK, built for one Python and one
torch. The plugin installs without it, so that `molplat list-plugins` shows it and a
pipeline naming it fails validation with this one line instead of an import traceback.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from molplat.errors import ValidationError

INSTALL_HINT = (
    "poptorch is not on PyPI; install the Graphcore Poplar SDK 3.x, `source poplar-sdk-*/enable`, then "
    "`pip install poplar-sdk-*/poptorch-*.whl` (and poptorch_geometric-*.whl) into this environment, whose Python "
    "must match the wheel's (see the molplat-poptorch README)"
)


def import_poptorch() -> ModuleType:
    """The ``poptorch`` module, or a ValidationError naming the missing SDK and how to install it."""
    try:
        return importlib.import_module("poptorch")
    except ImportError as exc:
        detail = "" if getattr(exc, "name", None) == "poptorch" else f" ({type(exc).__name__}: {str(exc)[:120]})"
        raise ValidationError(f"[trainer] name: trainer backend 'poptorch' needs the Graphcore PopTorch SDK, and "
                              f"poptorch is not installed{detail}; {INSTALL_HINT}") from None
