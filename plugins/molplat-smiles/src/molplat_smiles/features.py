"""One SMILES string to flat arrays: atoms, positions, RDKit atom and bond features.

Every feature is a small integer category (the model embeds each column and sums the
embeddings), so samples stay compact and can be stored. The vocabularies are fixed here;
a value beyond a vocabulary is clipped into its last bin. Functions at module level only,
so worker processes can run them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: atom feature columns and the number of categories of each
ATOM_FEATURES = ("element", "degree", "formal_charge", "hybridization", "aromatic", "num_hs", "in_ring")
ATOM_VOCAB = (119, 7, 7, 7, 2, 5, 2)
#: bond feature columns and their category counts; bond type 0 = unknown (perceived from geometry)
BOND_FEATURES = ("bond_type", "conjugated", "in_ring")
BOND_VOCAB = (5, 2, 2)

_HYBRIDIZATION = {"S": 1, "SP": 2, "SP2": 3, "SP3": 4, "SP3D": 5, "SP3D2": 6}
_BOND_TYPE = {"SINGLE": 1, "DOUBLE": 2, "TRIPLE": 3, "AROMATIC": 4}


class InvalidSmiles(ValueError):
    """A row whose SMILES RDKit cannot turn into a molecule (or a conformer, in 3d mode)."""


def _clip(value: int, size: int) -> int:
    return min(max(int(value), 0), size - 1)


def atom_features(mol: Any) -> np.ndarray:
    """[n, 7] int8 categories per atom of an RDKit molecule."""
    rows = []
    for atom in mol.GetAtoms():
        rows.append((
            _clip(atom.GetAtomicNum(), ATOM_VOCAB[0]),
            _clip(atom.GetDegree(), ATOM_VOCAB[1]),
            _clip(atom.GetFormalCharge() + 3, ATOM_VOCAB[2]),  # -3..+3
            _HYBRIDIZATION.get(str(atom.GetHybridization()), 0),
            int(atom.GetIsAromatic()),
            _clip(atom.GetTotalNumHs(includeNeighbors=True), ATOM_VOCAB[5]),
            int(atom.IsInRing()),
        ))
    return np.asarray(rows, dtype=np.int8).reshape(-1, len(ATOM_VOCAB))


def bond_arrays(mol: Any) -> tuple[np.ndarray, np.ndarray]:
    """Bonds once each ([B, 2] int32 atom pairs) and their [B, 3] int8 categories."""
    pairs, features = [], []
    for bond in mol.GetBonds():
        pairs.append((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()))
        features.append((_BOND_TYPE.get(str(bond.GetBondType()), 0), int(bond.GetIsConjugated()),
                         int(bond.IsInRing())))
    return (np.asarray(pairs, dtype=np.int32).reshape(-1, 2),
            np.asarray(features, dtype=np.int8).reshape(-1, len(BOND_VOCAB)))


def _parse(smiles: str) -> Any:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")  # a bad row is reported once by the dataset, not by RDKit per atom
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None or mol.GetNumAtoms() == 0:
        raise InvalidSmiles("RDKit cannot parse it")
    return mol


def _conformer(mol: Any, seed: int) -> tuple[Any, np.ndarray]:
    """All atoms (hydrogens added) with an ETKDG conformer, relaxed with MMFF94 where it has parameters."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True  # the documented fallback for molecules ETKDG's distance bounds reject
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise InvalidSmiles("ETKDG finds no conformer")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=500)
    return mol, np.asarray(mol.GetConformer().GetPositions(), dtype=np.float64)


#: atoms of a depiction closer than this (Å) overlap (cages drawn flat): such molecules get a conformer instead
MIN_LAYOUT_DISTANCE = 0.5


def _layout(mol: Any, seed: int) -> np.ndarray:
    """A 2-D depiction (z = 0): cheap and deterministic; a drawing, not a geometry. Cages whose
    drawing puts two atoms on top of each other get the heavy atoms of an ETKDG conformer."""
    from rdkit.Chem import rdDepictor

    rdDepictor.Compute2DCoords(mol)
    positions = np.asarray(mol.GetConformer().GetPositions(), dtype=np.float64)
    if _overlap(positions) is None:
        return positions
    try:
        _, conformer = _conformer(mol, seed)  # hydrogens are appended after the heavy atoms
        return conformer[:len(positions)]
    except InvalidSmiles:  # a strained cage ETKDG cannot embed: lift overlapping atoms out of the plane
        for _ in range(len(positions)):
            pair = _overlap(positions)
            if pair is None:
                break
            positions[pair[1], 2] += 1.0
        return positions


def _overlap(positions: np.ndarray) -> tuple[int, int] | None:
    """Two atoms closer than MIN_LAYOUT_DISTANCE, or None."""
    if len(positions) < 2:
        return None
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    i, j = np.triu_indices(len(positions), 1)
    k = int(np.argmin(d[i, j]))
    return (int(i[k]), int(j[k])) if d[i[k], j[k]] < MIN_LAYOUT_DISTANCE else None


def featurize_smiles(smiles: str, mode: str = "graph", seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays of one molecule; raises InvalidSmiles with a reason when RDKit cannot build it."""
    mol = _parse(smiles)
    if mode == "3d":
        mol, positions = _conformer(mol, seed)
    else:
        positions = _layout(mol, seed)
    bonds, bond_features = bond_arrays(mol)
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.uint8)
    return {"numbers": numbers, "positions": positions, "atom_features": atom_features(mol),
            "bonds": bonds, "bond_features": bond_features}


def featurize_chunk(task: tuple[list[str], str, int]) -> list[dict[str, np.ndarray] | str]:
    """Featurise a list of SMILES: arrays per molecule, or the reason a row is left out."""
    smiles, mode, seed = task
    out: list[dict[str, np.ndarray] | str] = []
    for text in smiles:
        try:
            out.append(featurize_smiles(text, mode, seed))
        except InvalidSmiles as exc:
            out.append(str(exc))
        except Exception as exc:  # RDKit raises its own types on odd input (valence, kekulisation)
            out.append(f"RDKit fails on it: {type(exc).__name__}: {exc}")
    return out


def perceive(numbers: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], distances: np.ndarray,
             tolerance: float) -> np.ndarray:
    """Which of the candidate pairs (i, j) are bonds: closer than ``tolerance`` x (r_cov i + r_cov j)."""
    from ase.data import covalent_radii

    i, j = pairs
    limit = tolerance * (covalent_radii[numbers[i]] + covalent_radii[numbers[j]])
    return distances < limit
