"""Writing files so that a crash never leaves half of one, and caches that notice damage.

Light on purpose (no torch): dataset plugins use it while parsing.
"""
from __future__ import annotations

import hashlib
import io
import os
import secrets
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

CACHE_ENV = "MOLPLAT_CACHE"
#: name of the array inside a cached .npz that holds the digest of all the others
DIGEST_KEY = "__molplat_sha256__"
#: how stray temporary files of :func:`atomic_write` are named: ``.NAME.<random>.tmp``
TEMPORARY_SUFFIX = ".tmp"


def cache_dir(setting: str | os.PathLike | None, name: str) -> Path:
    """A plugin's cache folder: the ``cache_dir`` setting, else $MOLPLAT_CACHE, else ~/.cache/molplat; then ``name``."""
    base = setting or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "molplat"
    return Path(base).expanduser() / name


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write`` on a temporary file beside ``path``, flush it to disk, then rename it into place.

    The temporary file is created with mode 0666 minus the user's umask, like any
    file the user writes (``tempfile.mkstemp`` would make it 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{TEMPORARY_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a leftover of an interrupted atomic write."""
    return path.name.startswith(".") and (path.name.endswith(TEMPORARY_SUFFIX) or ".tmp." in path.name)


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete what interrupted atomic writes left under ``folder``; only call it while holding the folder's lock."""
    removed = []
    for path in Path(folder).rglob(".*"):
        if path.is_file() and is_temporary(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _digest(arrays: dict[str, np.ndarray]) -> str:
    sha = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        sha.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        sha.update(array.tobytes() if array.dtype.kind not in "OU" else str(array.tolist()).encode())
    return sha.hexdigest()


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Save arrays with a SHA-256 digest of their contents, so :func:`load_npz` notices any damage."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    digest = np.array(_digest(arrays))
    return atomic_write(path, lambda handle: np.savez(handle, **arrays, **{DIGEST_KEY: digest}))


def load_npz(path: str | os.PathLike, what: str = "cache") -> dict[str, np.ndarray] | None:
    """The arrays of a file written by :func:`atomic_save_npz`, or None when it is missing or damaged.

    A truncated, empty, bit-flipped or edited file fails its digest; it is deleted with
    a one-line notice so that the caller rebuilds it, and no later run trips over it.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        stored = str(arrays.pop(DIGEST_KEY))
        ok = stored == _digest(arrays)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        ok, arrays = False, {}
        reason = f"unreadable ({type(exc).__name__})"
    else:
        reason = "its checksum does not match its contents"
    if not ok:
        print(f"notice: {what} {path} is damaged ({reason}); rebuilding it", file=sys.stderr, flush=True)
        path.unlink(missing_ok=True)
        return None
    return arrays
