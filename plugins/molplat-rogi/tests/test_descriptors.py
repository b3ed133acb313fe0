"""Descriptors: fingerprints from 3D coordinates are the molecule's, compositions are fractions."""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from molplat.errors import RunError
from molplat.structure import Structure
from molplat_rogi.descriptors import choose_descriptor, composition_vectors, morgan_fingerprints
from molplat_rogi.roughness import roughness_index


@pytest.mark.parametrize(("name", "smiles"), [("C6H6", "c1ccccc1"), ("CH3CH2OH", "CCO"), ("CH3COOH", "CC(=O)O"),
                                              ("HCN", "C#N")])
def test_bonds_perceived_from_coordinates_give_the_molecules_fingerprint(name, smiles):
    (found,) = morgan_fingerprints([Structure.from_atoms(molecule(name), id=name)], radius=2, n_bits=2048)
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    expected = generator.GetFingerprint(Chem.AddHs(Chem.MolFromSmiles(smiles)))
    assert list(found.GetOnBits()) == list(expected.GetOnBits())


def test_similar_molecules_are_close_in_tanimoto_distance_and_the_landscape_follows():
    names = ["CH4", "C2H6", "C3H8", "CH3OH", "CH3CH2OH", "C6H6"]
    structures = [Structure.from_atoms(molecule(n), id=n) for n in names]
    fingerprints = morgan_fingerprints(structures, radius=2, n_bits=1024)
    carbons = np.array([sum(1 for z in s.numbers if z == 6) for s in structures], dtype=float)
    result = roughness_index(carbons, fingerprints=fingerprints)
    assert 0.0 <= result.rogi <= 1.0 and result.n == 6


def test_crystals_get_composition_vectors():
    structures = [Structure.from_atoms(bulk("NaCl", "rocksalt", a=5.6), id="nacl"),
                  Structure.from_atoms(bulk("Si", "diamond", a=5.43), id="si")]
    assert choose_descriptor(structures, "auto") == "composition"
    vectors = composition_vectors(structures)
    assert vectors.shape == (2, 118)
    np.testing.assert_allclose(vectors.sum(axis=1), 1.0)
    assert vectors[0, 10] == pytest.approx(0.5) and vectors[0, 16] == pytest.approx(0.5)  # Na (Z=11), Cl (Z=17)
    assert vectors[1, 13] == pytest.approx(1.0)
    with pytest.raises(RunError, match="needs molecules, but the structures are periodic"):
        morgan_fingerprints(structures, radius=2, n_bits=64)


def test_molecules_get_fingerprints_by_default():
    assert choose_descriptor([Structure.from_atoms(molecule("H2O"), id="w")], "auto") == "morgan"
