"""Starting structures and reference frames: from the run's splits or from a user's file, checked.

Files are read with ASE, limited to text and ASE's own formats (no format that unpickles);
every problem is one ValidationError naming the file, the setting and the fix.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from molplat.errors import ValidationError

#: ASE format names a structure or reference file may have
READABLE_FORMATS = ("extxyz", "xyz", "traj", "cif", "vasp", "proteindatabank")
#: most frames read from a reference file
MAX_REFERENCE_FRAMES = 100_000


def read_frames(path: str | Path, setting: str, index: Any = ":") -> list[Any]:
    """Frames of an ASE-readable file, or one ValidationError naming ``[simulate] setting`` and the file."""
    import ase.io
    from ase.io.formats import filetype

    path = Path(path)
    where = f"[simulate] {setting}: {path}"
    if not path.is_file():
        raise ValidationError(f"{where} is not a file; give an ASE-readable structure file")
    if path.stat().st_size == 0:
        raise ValidationError(f"{where} is empty; it holds no structures")
    try:
        fmt = filetype(str(path), read=True)
    except Exception:  # ASE raises UnknownFileTypeError, or an IO error for odd files
        fmt = None
    if fmt not in READABLE_FORMATS:
        raise ValidationError(f"{where}: the format is {fmt or 'not recognised'}; use one of "
                              f"{', '.join(READABLE_FORMATS)} (for example extxyz, written by ase.io.write)")
    try:
        frames = ase.io.read(str(path), index=index, format=fmt)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ValidationError(f"{where} cannot be read as {fmt}: {first}; fix the file or write it again with "
                              f"ase.io.write") from None
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise ValidationError(f"{where} holds no structures")
    for k, atoms in enumerate(frames[:MAX_REFERENCE_FRAMES]):
        if len(atoms) == 0:
            raise ValidationError(f"{where}: frame {k} has no atoms")
        if not np.isfinite(atoms.positions).all():
            raise ValidationError(f"{where}: frame {k} has positions that are not finite numbers")
        if any(atoms.pbc) and abs(atoms.cell.volume) < 1e-6:
            raise ValidationError(f"{where}: frame {k} is periodic but has no cell; give its lattice or set pbc "
                                  f"to False")
    return frames[:MAX_REFERENCE_FRAMES]


def starting_atoms(splits: dict[str, Sequence[Any]], split: str, file_frames: list[Any] | None,
                   count: int) -> list[tuple[str, Any]]:
    """``(id, Atoms)`` of the first ``count`` starting structures: the file's frames, else the split's."""
    if file_frames is not None:
        return [(f"frame{k}", atoms.copy()) for k, atoms in enumerate(file_frames[:count])]
    structures = splits.get(split) or []
    if len(structures) == 0:
        from molplat.errors import RunError

        raise RunError(f"[simulate] split: the {split!r} split holds no structures; choose another split or give "
                       f"structures_file")
    picked = [structures[k] for k in range(min(count, len(structures)))]
    return [(s.id or f"{split}{k}", s.to_atoms()) for k, s in enumerate(picked)]


def composition(atoms: Any) -> tuple[int, ...]:
    return tuple(sorted(int(z) for z in atoms.numbers))


def dataset_reference(splits: dict[str, Sequence[Any]], atoms: Any, limit: int = 5000,
                      scan: int = 50_000) -> list[Any]:
    """The dataset's own frames with the same composition and periodicity as ``atoms`` (every split), at
    most ``limit``, looking at no more than ``scan`` structures (a large dataset is read lazily)."""
    wanted, periodic = composition(atoms), bool(all(atoms.pbc))
    frames = []
    seen = 0
    for name in ("train", "val", "test"):
        for structure in splits.get(name) or []:
            seen += 1
            if seen > scan:
                return frames
            if len(structure) == len(atoms) and composition(structure) == wanted \
                    and bool(np.all(structure.pbc)) == periodic:
                frames.append(structure.to_atoms())
                if len(frames) >= limit:
                    return frames
    return frames


def safe_name(text: str) -> str:
    """A file-name-safe version of a structure id."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return cleaned.strip("._")[:60] or "structure"
