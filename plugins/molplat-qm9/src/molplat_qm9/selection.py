"""Seeded, machine-independent draws of molecules by id.

Each id is ranked by a keyed BLAKE2b hash, and a draw of ``size`` takes the
lowest ranks. Unlike a numpy RNG stream this gives the same molecules on every
platform and numpy version, and smaller draws are subsets of larger ones.
"""
from __future__ import annotations

import hashlib

import numpy as np

SEED = "molplat-qm9"


def rank_keys(ids: np.ndarray, seed: str = SEED) -> np.ndarray:
    digests = b"".join(hashlib.blake2b(str(i).encode(), digest_size=8, key=seed.encode()).digest() for i in ids)
    return np.frombuffer(digests, dtype=">u8")


def draw(ids: np.ndarray, size: int, seed: str = SEED) -> np.ndarray:
    """Row indices of ``size`` molecules drawn from ``ids``, in file order."""
    if size >= len(ids):
        return np.arange(len(ids))
    order = np.argsort(rank_keys(ids, seed), kind="stable")
    return np.sort(order[:size])
