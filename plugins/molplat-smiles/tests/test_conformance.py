"""The dataset, the bond-graph representation and the GINE model pass the molplat-sdk conformance suite.

One SDK check does not fit a bond graph and is replaced here: it compares a representation's
pairs with every pair within a radius, while ``molecular_graph``'s pairs are bonds. The
replacement compares them with a brute-force bond search by covalent radii (periodic images
included), which is what the representation promises for structures without a SMILES.
"""
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from ase.data import covalent_radii

from molplat_sdk import PluginConformance
from molplat_sdk.checks.representation import batch_pairs, brute_force_pairs
from molplat_sdk.suite import applies_to


class TestSmilesConformance(PluginConformance):
    plugin = "molplat-smiles"

    @pytest.fixture
    def molplat_settings(self, smiles_cache: Path) -> dict:
        return {"smiles_csv": {"size": 60, "cache_dir": str(smiles_cache)},
                "gine": {"hidden_channels": 16, "num_layers": 2}}

    @applies_to("representation")
    def test_representation_neighbors_match_brute_force(self, component, tiny_structures: list) -> None:
        rep = component.build()
        batch = rep.collate([rep.featurize(s) for s in tiny_structures])
        found = batch_pairs(rep, batch)
        for g, structure in enumerate(tiny_structures):
            expected = [(i, j, v) for i, j, v in brute_force_pairs(structure, 6.0)
                        if np.linalg.norm(v) < 1.2 * (covalent_radii[structure.numbers[i]]
                                                      + covalent_radii[structure.numbers[j]])]
            describe = lambda pairs: sorted((i, j, *np.round(v, 3).tolist()) for i, j, v in pairs)  # noqa: E731
            assert describe(found[g]) == describe(expected), structure.id
            assert expected, f"{structure.id}: no bonds perceived"


def test_ethanol_bonds_are_found_from_geometry() -> None:
    from molplat_sdk.structures import molecules

    from molplat_smiles.representation import MolecularGraph

    ethanol = molecules()[1]
    features = MolecularGraph().featurize(ethanol)
    pairs = {tuple(p) for p in features["edge_index"].T.tolist()}
    assert len(pairs) == 2 * 8  # 8 bonds of C2H5OH, both directions
    assert all((j, i) in pairs for i, j in pairs)
    assert not any(ethanol.numbers[i] == 1 and ethanol.numbers[j] == 1 for i, j in combinations(range(9), 2)
                   if (i, j) in pairs)
