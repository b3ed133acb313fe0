"""The run directory: where every artifact of a run lands."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import tomli_w

from molplat.errors import ValidationError
from molplat.files import atomic_write_text

PIPELINE_FILE = "pipeline.toml"
SUMMARY_FILE = "summary.json"


def new_run_dir(base: str | Path, name: str) -> Path:
    """A fresh ``base/name-YYYYmmdd-HHMMSS`` folder (suffixed if two runs start in the same second)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(base) / f"{name}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(base) / f"{name}-{stamp}-{suffix}"
    path.mkdir(parents=True)
    return path


def write_pipeline(run_dir: Path, resolved: dict[str, Any]) -> None:
    atomic_write_text(run_dir / PIPELINE_FILE, tomli_w.dumps(resolved))


def read_pipeline(run_dir: Path) -> dict[str, Any]:
    import tomllib

    path = Path(run_dir) / PIPELINE_FILE
    if not path.is_file():
        raise ValidationError(f"{path}: not a molplat run directory (no {PIPELINE_FILE}); pass the folder "
                              f"that `molplat run` printed")
    return tomllib.loads(path.read_text())


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
