"""Reading one CIF into a checked periodic Structure.

ASE's CIF reader expands symmetry with a pairwise duplicate check, so its cost
grows with the square of the cell size; ``count_sites`` reads the atom-site
table cheaply first so that cells over the atom limit are never handed to it.
"""
from __future__ import annotations

import io
import warnings

import numpy as np

from molplat.structure import Structure

MIN_DISTANCE = 0.5  # Å; closer pairs mean overlapping (disordered) sites, unusable as a graph


class BadCIF(ValueError):
    """A CIF that cannot be used; the message says why, for the skip log."""


def count_sites(text: str) -> int | None:
    """Rows of the atom-site loop (a lower bound on atoms per cell), or None without one."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip().lower() != "loop_":
            i += 1
            continue
        i += 1
        headers = []
        while i < len(lines) and lines[i].lstrip().startswith("_"):
            headers.append(lines[i].split()[0].lower())
            i += 1
        rows = 0
        while i < len(lines):
            line = lines[i].strip()
            lowered = line.lower()
            if line.startswith("_") or lowered == "loop_" or lowered.startswith("data_"):
                break
            if line and not line.startswith("#"):
                rows += 1
            i += 1
        if "_atom_site_fract_x" in headers or "_atom_site_cartn_x" in headers:
            return rows
    return None


def parse_cif(text: str, name: str, targets: dict[str, float] | None = None,
              max_atoms: int | None = None) -> Structure:
    """A periodic Structure from CIF text; raises BadCIF with the reason when it is unusable."""
    import ase.io

    sites = count_sites(text)
    if sites is None:
        raise BadCIF("no atom-site table")
    if max_atoms is not None and sites > max_atoms:
        raise BadCIF(f"{sites} sites > max_atoms {max_atoms}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ASE warns about every P1 'triclinic' setting
            atoms = ase.io.read(io.StringIO(text), format="cif")
    except Exception as exc:  # any reader failure only skips this file
        raise BadCIF(f"unreadable: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if max_atoms is not None and len(atoms) > max_atoms:
        raise BadCIF(f"{len(atoms)} atoms > max_atoms {max_atoms}")
    if len(atoms) == 0 or (atoms.numbers <= 0).any():
        raise BadCIF("no atoms, or unknown elements")
    if not atoms.pbc.all() or atoms.cell.volume < 1.0:
        raise BadCIF("no valid 3D cell")
    if not np.isfinite(atoms.positions).all():
        raise BadCIF("non-finite coordinates")
    atoms.wrap()
    closest = _closest_pair(atoms)
    if closest < MIN_DISTANCE:
        raise BadCIF(f"overlapping atoms ({closest:.2f} Å apart)")
    return Structure(numbers=atoms.numbers, positions=atoms.positions, cell=np.asarray(atoms.cell),
                     pbc=np.ones(3, dtype=bool), targets=dict(targets or {}), id=name)


def _closest_pair(atoms) -> float:
    """Shortest interatomic distance under periodic boundaries (inf for one atom in a large cell)."""
    from ase.neighborlist import neighbor_list

    distances = neighbor_list("d", atoms, MIN_DISTANCE * 2, self_interaction=False)
    return float(distances.min()) if len(distances) else float("inf")
