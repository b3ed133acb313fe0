"""Drawings of structures with atoms coloured by attribution, bonds perceived from coordinates.

Molecules: RDKit perceives the bonds from the coordinates (``rdDetermineBonds``, covalent
radii) and lays the molecule out in 2D (``rdDepictor``). Crystals, and molecules RDKit
cannot lay out: bonds from ASE's natural cutoffs (periodic images included), drawn on
the plane of the two widest principal axes of the geometry.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from molplat.files import atomic_write_bytes
from molplat.structure import Structure


def bonds_and_layout(structure: Structure) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The bonds (atom index pairs) and 2D coordinates to draw ``structure`` with."""
    if not structure.periodic:
        drawn = _rdkit_layout(structure)
        if drawn is not None:
            return drawn
    return _ase_bonds(structure), _projection(structure.positions)


def _rdkit_layout(structure: Structure) -> tuple[list[tuple[int, int]], np.ndarray] | None:
    from rdkit import Chem, RDLogger
    from rdkit.Chem import rdDepictor, rdDetermineBonds

    RDLogger.DisableLog("rdApp.*")
    try:
        symbols = [Chem.GetPeriodicTable().GetElementSymbol(int(z)) for z in structure.numbers]
        block = f"{len(symbols)}\n\n" + "\n".join(f"{s} {x:.6f} {y:.6f} {z:.6f}"
                                                  for s, (x, y, z) in zip(symbols, structure.positions))
        mol = Chem.MolFromXYZBlock(block)
        if mol is None:
            return None
        rdDetermineBonds.DetermineConnectivity(mol)
        mol.UpdatePropertyCache(strict=False)
        Chem.FastFindRings(mol)
        rdDepictor.Compute2DCoords(mol)
        xy = mol.GetConformer().GetPositions()[:, :2]
        bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()]
    except Exception:  # RDKit refuses some geometries; the projection below draws them all
        return None
    return bonds, np.asarray(xy, dtype=float)


def _ase_bonds(structure: Structure) -> list[tuple[int, int]]:
    from ase.neighborlist import NeighborList, natural_cutoffs

    atoms = structure.to_atoms()
    neighbours = NeighborList(natural_cutoffs(atoms), self_interaction=False, bothways=False, skin=0.0)
    neighbours.update(atoms)
    pairs: set[tuple[int, int]] = set()
    for i in range(len(atoms)):
        for j in neighbours.get_neighbors(i)[0]:
            pairs.add((min(i, int(j)), max(i, int(j))))
    return sorted(pairs)


def _projection(positions: np.ndarray) -> np.ndarray:
    """Positions on the plane of their two widest principal axes."""
    centred = positions - positions.mean(axis=0)
    if len(centred) < 2:
        return np.zeros((len(centred), 2))
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ axes[:2].T
    return np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))


def draw(path: Path, structure: Structure, panels: list[tuple[str, np.ndarray, str]], non_negative: bool) -> Path:
    """One PNG: a panel per (title, per-atom values, colour-bar label), atoms coloured by value."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ase.data import chemical_symbols
    from matplotlib.colors import Normalize, TwoSlopeNorm

    bonds, xy = bonds_and_layout(structure)
    span = float(np.ptp(xy, axis=0).max()) if len(xy) > 1 else 1.0
    size = 2600.0 / max(len(structure), 8) ** 0.8
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.0), squeeze=False)
    for axis, (title, values, label) in zip(axes[0], panels):
        limit = float(np.abs(values).max()) or 1.0
        if non_negative:
            norm, cmap = Normalize(0.0, limit), "Reds"
        else:
            norm, cmap = TwoSlopeNorm(0.0, -limit, limit), "coolwarm"
        for i, j in bonds:
            axis.plot(xy[[i, j], 0], xy[[i, j], 1], color="0.55", linewidth=1.6, zorder=1)
        dots = axis.scatter(xy[:, 0], xy[:, 1], c=values, cmap=cmap, norm=norm, s=size, edgecolors="0.2",
                            linewidths=0.8, zorder=2)
        for (x, y), z in zip(xy, structure.numbers):
            axis.text(x, y, chemical_symbols[int(z)], ha="center", va="center", fontsize=7, zorder=3)
        axis.set_title(title, fontsize=9)
        axis.set_aspect("equal")
        axis.margins(0.12 if span > 0 else 0.5)
        axis.axis("off")
        figure.colorbar(dots, ax=axis, shrink=0.8, label=label)
    figure.suptitle(structure.id, fontsize=10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
