"""The on-disk cache of parsed QM9 arrays: one uncompressed .npz per selection.

Files are written to a temporary name and moved into place with os.replace, so
a crash or a concurrent run never leaves a half-written cache behind.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from molplat.files import atomic_save_npz, cache_dir
from molplat_qm9.source import QM9Arrays

CACHE_VERSION = "1"
_FIELDS = ("ids", "numbers", "positions", "offsets", "targets", "target_names")


def cache_root(setting: str | os.PathLike | None) -> Path:
    """The ``qm9`` folder of molplat's cache (the ``cache_dir`` setting, else $MOLPLAT_CACHE, else ~/.cache/molplat)."""
    return cache_dir(setting, "qm9")


def cache_path(root: Path, selection: str, fingerprint: str) -> Path:
    digest = hashlib.sha256(f"{CACHE_VERSION}|{fingerprint}".encode()).hexdigest()[:12]
    return root / f"{selection}-{digest}.npz"


def save(path: Path, arrays: QM9Arrays) -> None:
    atomic_save_npz(path, **{name: getattr(arrays, name) for name in _FIELDS})


def load(path: Path, target_names: list[str]) -> QM9Arrays | None:
    """The cached arrays, or None when the file is missing, unreadable or from another target layout."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = QM9Arrays(**{name: data[name] for name in _FIELDS})
    except (OSError, ValueError, KeyError):
        return None
    if arrays.target_names.tolist() != list(target_names):
        return None
    return arrays
