"""The CoRE MOF 2019 files that the core-mof distribution installs, read without importing it.

The CIFs sit in one .tar.xz per release; a pass streams it once and keeps only
the members asked for, since xz archives have no random access.
"""
from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np

from molplat.errors import MolplatError

DISTRIBUTION = "CoRE-MOF"
SEED = "molplat-coremof"


def data_files(release: str) -> tuple[Path, Path]:
    """(labels CSV, CIF archive) of a release, with a clear error when the package is missing."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise MolplatError(
            "dataset 'coremof' reads the CIF files of the core-mof package, which is not installed; "
            "install it with: pip install core-mof"
        ) from None
    csv = Path(str(dist.locate_file(f"CoRE_MOF/data/{release}.csv")))
    archive = csv.with_suffix(".tar.xz")
    missing = [p.name for p in (csv, archive) if not p.is_file()]
    if missing:
        raise MolplatError(f"core-mof {dist.version} has no {', '.join(missing)} in {csv.parent}; "
                           "reinstall it with: pip install --force-reinstall core-mof")
    return csv, archive


def fingerprint(*paths: Path) -> str:
    return ";".join(f"{p.name}:{p.stat().st_size}" for p in paths)


def ranked(names: list[str], seed: str = SEED) -> list[str]:
    """Names in a seeded order that is the same on every machine and numpy version (BLAKE2b keys)."""
    keys = [hashlib.blake2b(n.encode(), digest_size=8, key=seed.encode()).digest() for n in names]
    order = np.argsort(np.frombuffer(b"".join(keys), dtype=">u8"), kind="stable")
    return [names[i] for i in order]


def iter_cifs(archive: Path, wanted: set[str] | None = None) -> Iterator[tuple[str, str]]:
    """(name, CIF text) for the archive members named in ``wanted`` (all when None), in archive order."""
    with tarfile.open(archive, "r|*") as tar:
        for member in tar:
            base = member.name.rsplit("/", 1)[-1]
            if not member.isfile() or not base.endswith(".cif") or base.startswith("."):
                continue
            name = base[: -len(".cif")]
            if wanted is not None and name not in wanted:
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                yield name, handle.read().decode("utf-8", errors="replace")
