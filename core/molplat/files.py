"""Writing files so that a crash never leaves half of one, and where caches live.

Light on purpose (no torch): dataset plugins use it while parsing.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

CACHE_ENV = "MOLPLAT_CACHE"


def cache_dir(setting: str | os.PathLike | None, name: str) -> Path:
    """A plugin's cache folder: the ``cache_dir`` setting, else $MOLPLAT_CACHE, else ~/.cache/molplat; then ``name``."""
    base = setting or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "molplat"
    return Path(base).expanduser() / name


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write`` on a temporary file beside ``path``, flush it to disk, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    return atomic_write(path, lambda handle: np.savez(handle, **arrays))
