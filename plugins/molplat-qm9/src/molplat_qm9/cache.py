"""The on-disk cache of parsed QM9 arrays: one uncompressed .npz per selection.

Files are written through ``molplat.files.atomic_save_npz`` (a temporary name moved into
place, with a SHA-256 of the contents inside), so a crash or a concurrent run never
leaves half a cache behind, and a truncated, bit-flipped or edited file is noticed on
load, deleted with a one-line notice and rebuilt.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from molplat.files import atomic_save_npz, cache_dir, load_npz
from molplat_qm9.source import QM9Arrays

#: 2: per-atom targets (Mulliken charges) and checksummed files
CACHE_VERSION = "2"
_FIELDS = ("ids", "numbers", "positions", "offsets", "targets", "target_names", "atom_targets", "atom_target_names")


def cache_root(setting: str | os.PathLike | None) -> Path:
    """The ``qm9`` folder of molplat's cache (the ``cache_dir`` setting, else $MOLPLAT_CACHE, else ~/.cache/molplat)."""
    return cache_dir(setting, "qm9")


def cache_path(root: Path, selection: str, fingerprint: str) -> Path:
    digest = hashlib.sha256(f"{CACHE_VERSION}|{fingerprint}".encode()).hexdigest()[:12]
    return root / f"{selection}-{digest}.npz"


def save(path: Path, arrays: QM9Arrays) -> None:
    atomic_save_npz(path, **{name: getattr(arrays, name) for name in _FIELDS})


def load(path: Path, target_names: list[str], atom_target_names: list[str]) -> QM9Arrays | None:
    """The cached arrays, or None when the file is missing, damaged (then deleted, after a
    one-line notice) or from another target layout."""
    data = load_npz(path, "QM9 cache")
    if data is None or any(name not in data for name in _FIELDS):
        return None
    arrays = QM9Arrays(**{name: data[name] for name in _FIELDS})
    if arrays.target_names.tolist() != list(target_names) or \
            arrays.atom_target_names.tolist() != list(atom_target_names):
        return None
    return arrays
