"""The three built-in representations against a brute-force neighbour search."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from molplat.representations.adjacency_list import AdjacencyList, edge_vectors
from molplat.representations.adjacency_matrix import AdjacencyMatrix, pair_vectors
from molplat.representations.point_cloud import PointCloud
from molplat.structure import Structure
from molplat_sdk.checks.representation import brute_force_images


def brute_force_pairs(s: Structure, cutoff: float) -> dict[tuple, float]:
    """Every (i, j, image) within the cutoff and its distance, from the SDK's brute-force search."""
    return {key: float(np.linalg.norm(v)) for key, v in brute_force_images(s, cutoff).items()}


def list_pairs(item: dict) -> set[tuple]:
    return {(int(i), int(j), tuple(int(x) for x in o))
            for (i, j), o in zip(item["edge_index"].T, item["cell_offsets"])}


def matrix_pairs(batch, g: int) -> set[tuple]:
    idx = torch.nonzero(batch.pair_mask[g])
    return {(int(i), int(j), tuple(int(x) for x in batch.image_offsets[s])) for i, j, s in idx}


@pytest.mark.parametrize("name", ["ethanol", "silicon", "slab"])
@pytest.mark.parametrize("cutoff", [2.5, 4.0])
def test_list_and_matrix_match_brute_force(name, cutoff, request):
    s = request.getfixturevalue(name)
    expected = set(brute_force_pairs(s, cutoff))
    assert expected, "the fixture should have neighbours within the cutoff"
    item = AdjacencyList(cutoff=cutoff).featurize(s)
    assert list_pairs(item) == expected
    batch = AdjacencyMatrix(cutoff=cutoff).collate([AdjacencyMatrix(cutoff=cutoff).featurize(s)])
    assert matrix_pairs(batch, 0) == expected


def test_edge_and_pair_vectors_have_brute_force_lengths(silicon):
    cutoff = 4.0
    expected = brute_force_pairs(silicon, cutoff)
    rep = AdjacencyList(cutoff=cutoff)
    batch = rep.collate([rep.featurize(silicon)])
    lengths = edge_vectors(batch).norm(dim=1).numpy()
    for (i, j), o, d in zip(batch.edge_index.T.tolist(), batch.cell_offsets.tolist(), lengths):
        assert d == pytest.approx(expected[(i, j, tuple(o))], abs=1e-4)
    dense = AdjacencyMatrix(cutoff=cutoff)
    mb = dense.collate([dense.featurize(silicon)])
    vec = pair_vectors(mb)[0]
    for i, j, s in torch.nonzero(mb.pair_mask[0]).tolist():
        key = (i, j, tuple(mb.image_offsets[s].tolist()))
        assert float(vec[i, j, s].norm()) == pytest.approx(expected[key], abs=1e-4)


def test_max_neighbors_keeps_the_nearest_and_both_forms_agree(silicon):
    full = brute_force_pairs(silicon, 5.0)
    rep = AdjacencyList(cutoff=5.0, max_neighbors=6)
    item = rep.featurize(silicon)
    kept = list_pairs(item)
    for i in range(len(silicon)):
        mine = sorted(full[p] for p in kept if p[0] == i)
        everything = sorted(d for p, d in full.items() if p[0] == i)
        assert len(mine) == 6
        assert mine == pytest.approx(everything[:6])
    dense = AdjacencyMatrix(cutoff=5.0, max_neighbors=6)
    assert matrix_pairs(dense.collate([dense.featurize(silicon)]), 0) == kept


def test_collate_of_a_list_is_the_concatenation_of_single_items(water, ethanol, silicon):
    rep = AdjacencyList(cutoff=3.0)
    items = [rep.featurize(s) for s in (water, ethanol, silicon)]
    batch = rep.collate(items)
    singles = [rep.collate([it]) for it in items]
    offset = 0
    edges = []
    for single in singles:
        edges.append(single.edge_index + offset)
        offset += len(single.numbers)
    assert torch.equal(batch.edge_index, torch.cat(edges, dim=1))
    assert torch.equal(batch.positions, torch.cat([s.positions for s in singles]))
    assert torch.allclose(batch.edge_shift, torch.cat([s.edge_shift for s in singles]))
    assert batch.batch.tolist() == [g for g, s in enumerate(singles) for _ in range(len(s.numbers))]
    assert torch.allclose(edge_vectors(batch), torch.cat([edge_vectors(s) for s in singles]))


def test_dense_collate_pads_and_masks(water, ethanol):
    for rep in (AdjacencyMatrix(cutoff=3.0), PointCloud()):
        batch = rep.collate([rep.featurize(water), rep.featurize(ethanol)])
        assert batch.atom_mask.sum(1).tolist() == [3, 9]
        assert batch.numbers[0, 3:].eq(0).all()
        flat = batch.flat_atoms(batch.positions)
        expected = np.concatenate([water.positions, ethanol.positions])
        assert np.allclose(flat.numpy(), expected, atol=1e-5)
        assert batch.atom_graph_index().tolist() == [0] * 3 + [1] * 9
    cloud = PointCloud(max_atomic_number=10)
    b = cloud.collate([cloud.featurize(ethanol)])
    assert b.species.shape == (1, 9, 10)
    assert torch.equal(b.species[0].argmax(-1) + 1, b.numbers[0])


def test_pair_mask_never_marks_padding(water, ethanol):
    rep = AdjacencyMatrix(cutoff=3.0)
    batch = rep.collate([rep.featurize(water), rep.featurize(ethanol)])
    padded = ~batch.atom_mask
    assert not batch.pair_mask[0, 3:].any() and not batch.pair_mask[0, :, 3:].any()
    assert padded.sum() == 6


def test_point_cloud_rejects_unknown_elements(water):
    with pytest.raises(ValueError, match="max_atomic_number"):
        PointCloud(max_atomic_number=4).featurize(water)
