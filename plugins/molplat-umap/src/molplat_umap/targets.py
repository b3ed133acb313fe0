"""Which target a map is coloured by."""
from __future__ import annotations

from typing import Any

from molplat.errors import RunError


def graph_target(heads: Any, requested: str, where: str) -> str:
    """The target to colour by: ``requested``, or the first graph-level target."""
    names = [h.name for h in heads.graph]
    if not names:
        raise RunError(f"{where}: the run predicts no graph-level target, so there is nothing to colour by")
    if not requested:
        return names[0]
    if requested not in names:
        raise RunError(f"{where}: target {requested!r} is not one the run predicts; use one of {names}")
    return requested
