"""Input descriptors the landscape is also measured on, independent of any model.

Molecules: Morgan fingerprints (RDKit), compared by Tanimoto distance, with bonds
perceived from the coordinates (rdDetermineBonds; connectivity alone when bond orders
cannot be assigned). Crystals: the fraction of each element, compared by Euclidean
distance (the composition is what a model of a crystal can always see).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from molplat.errors import RunError

MAX_Z = 118


def choose_descriptor(structures: Sequence[Any], requested: str) -> str:
    """``morgan`` or ``composition``: ``auto`` picks composition when any structure is periodic."""
    if requested != "auto":
        return requested
    return "composition" if any(bool(np.any(s.pbc)) for s in structures) else "morgan"


def composition_vectors(structures: Sequence[Any]) -> np.ndarray:
    """``[n, 118]``: each structure's fraction of atoms of every element."""
    out = np.zeros((len(structures), MAX_Z))
    for row, structure in enumerate(structures):
        numbers = np.asarray(structure.numbers, dtype=int)
        counts = np.bincount(numbers, minlength=MAX_Z + 1)[1:MAX_Z + 1]
        out[row] = counts / max(len(numbers), 1)
    return out


def molecule_from_structure(structure: Any) -> Any:
    """An RDKit molecule with bonds perceived from the 3D coordinates (neutral molecules)."""
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    editable = Chem.RWMol()
    for z in structure.numbers:
        editable.AddAtom(Chem.Atom(int(z)))
    conformer = Chem.Conformer(len(structure.numbers))
    for index, position in enumerate(np.asarray(structure.positions, dtype=float)):
        conformer.SetAtomPosition(index, position.tolist())
    editable.AddConformer(conformer, assignId=True)
    molecule = editable.GetMol()
    try:
        with_orders = Chem.Mol(molecule)
        rdDetermineBonds.DetermineBonds(with_orders, charge=0)
        return with_orders
    except Exception:  # odd valences or charged species: the bond graph alone still fingerprints
        rdDetermineBonds.DetermineConnectivity(molecule)
        molecule.UpdatePropertyCache(strict=False)
        Chem.FastFindRings(molecule)
        return molecule


def morgan_fingerprints(structures: Sequence[Any], radius: int, n_bits: int) -> list[Any]:
    """RDKit ExplicitBitVect Morgan fingerprints of molecules given as 3D structures."""
    from rdkit import RDLogger
    from rdkit.Chem import rdFingerprintGenerator

    if any(bool(np.any(s.pbc)) for s in structures):
        raise RunError("[[explain]] rogi: descriptor = \"morgan\" needs molecules, but the structures are periodic; "
                       "use descriptor = \"composition\" (or \"auto\")")
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    RDLogger.DisableLog("rdApp.*")
    try:
        return [generator.GetFingerprint(molecule_from_structure(s)) for s in structures]
    finally:
        RDLogger.EnableLog("rdApp.*")


def descriptor_label(kind: str, radius: int, n_bits: int) -> str:
    if kind == "morgan":
        return f"Morgan fingerprint (radius {radius}, {n_bits} bits), Tanimoto distance"
    return "element fractions, Euclidean distance"
