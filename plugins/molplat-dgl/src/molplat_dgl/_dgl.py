"""The one place molplat-dgl imports DGL: ``dgl = import_dgl()``.

Why a shim: ``import dgl`` (dgl 2.1 from PyPI) ends with ``from . import distributed``, which
imports ``dgl.graphbolt``, DGL's sampling pipeline for graphs too large for memory.
GraphBolt fails to import next to molplat's torch for two reasons of its own: it builds on
``torchdata.datapipes``, which torchdata removed in 0.10, and it loads a C++ library compiled
for one torch release (``libgraphbolt_pytorch_X.Y.Z.so``; the wheel ships them up to 2.2.1,
molplat runs torch 2.13). The rest of DGL (graphs, message passing, readouts) does not need
it. So, when GraphBolt cannot load, an empty placeholder module is put at
``sys.modules["dgl.graphbolt"]`` before DGL is imported, and ``import dgl`` succeeds. Using
anything from the placeholder raises an error that says why; nothing of molplat-dgl does.
Where GraphBolt can load (a matching torch and an older torchdata), DGL is imported untouched.

``DGLBACKEND`` defaults to ``pytorch`` so that DGL neither prints a backend notice nor writes
``~/.dgl/config.json`` on first import.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path
from typing import Any

GRAPHBOLT = "dgl.graphbolt"


class _MissingGraphBolt(types.ModuleType):
    """Stands in for dgl.graphbolt: importable, and every use says why it is absent."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"dgl.graphbolt.{name} is unavailable: molplat-dgl imports DGL without GraphBolt, which cannot load "
            f"here ({self.reason}); molplat-dgl uses no GraphBolt (see molplat_dgl._dgl)")


def graphbolt_problem() -> str | None:
    """Why DGL's GraphBolt would fail to import here, or None when it would load.

    Found without importing DGL (whose own ``__init__`` would run into the failure): the
    torchdata module it builds on, and its C++ library for this torch release.
    """
    try:
        datapipes = importlib.util.find_spec("torchdata.datapipes")
    except ImportError:  # torchdata itself missing
        datapipes = None
    if datapipes is None:
        return "it needs torchdata.datapipes, which torchdata removed in 0.10"
    import torch

    version = torch.__version__.split("+", maxsplit=1)[0]
    spec = importlib.util.find_spec("dgl")
    folders = list(spec.submodule_search_locations or []) if spec else []
    if not any((Path(folder) / "graphbolt" / f"libgraphbolt_pytorch_{version}.so").exists() for folder in folders):
        return f"dgl ships no GraphBolt library for torch {version}"
    return None


def import_dgl() -> types.ModuleType:
    """Import and return ``dgl``, without GraphBolt where GraphBolt cannot load (module docstring)."""
    if "dgl" in sys.modules:
        return sys.modules["dgl"]
    os.environ.setdefault("DGLBACKEND", "pytorch")
    if GRAPHBOLT not in sys.modules:
        problem = graphbolt_problem()
        if problem is not None:
            placeholder = _MissingGraphBolt(GRAPHBOLT, "placeholder: GraphBolt cannot load here (see molplat_dgl._dgl)")
            placeholder.reason = problem
            sys.modules[GRAPHBOLT] = placeholder
    import dgl

    return dgl
