"""Ways a cache file gets damaged, for testing that a plugin's cache notices and rebuilds.

Use them with caches written by ``molplat.files.atomic_save_npz``::

    @pytest.mark.parametrize("damage", CACHE_DAMAGE, ids=CACHE_DAMAGE_IDS)
    def test_a_damaged_cache_is_rebuilt(damage, tmp_path): ...
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np


def truncate(path: Path) -> None:
    """The first half of the file, as a killed writer without atomic writes leaves it."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def flip_a_byte(path: Path) -> None:
    """One bit changed in the middle, as a failing disk gives it."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def edit_a_value(path: Path) -> None:
    """A well-formed .npz whose first float array has one value changed and whose stored digest was
    left alone: a cache someone edited, which must never train silently on wrong data."""
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    name = next(k for k, v in arrays.items() if v.dtype.kind == "f" and v.size)
    arrays[name] = arrays[name].copy()
    arrays[name].flat[0] += 1.0
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


CACHE_DAMAGE: list[Callable[[Path], None]] = [truncate, empty, flip_a_byte, edit_a_value]
CACHE_DAMAGE_IDS = ["truncated", "empty", "flipped-byte", "edited-value"]
