"""to_pyg: an adjacency_list batch as a PyTorch Geometric batch, sharing its tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from molplat.representations import AdjacencyList, PointCloud, edge_vectors, to_pyg
from molplat.structure import Structure

torch_geometric = pytest.importorskip("torch_geometric")
from torch_geometric.nn import SimpleConv  # noqa: E402


def water() -> Structure:
    return Structure([8, 1, 1], [[0.0, 0.0, 0.117], [0.0, 0.757, -0.469], [0.0, -0.757, -0.469]], id="H2O")


def rattled(seed: int, n: int) -> Structure:
    rng = np.random.default_rng(seed)
    return Structure(rng.choice([1, 6, 8], size=n), rng.uniform(-1.5, 1.5, size=(n, 3)), id=f"m{seed}")


def crystal() -> Structure:
    cell = np.array([[3.0, 0.0, 0.0], [0.3, 3.0, 0.0], [0.2, 0.1, 3.0]])
    return Structure([11, 17], np.array([[0.0, 0.0, 0.0], [1.6, 1.5, 1.55]]), cell=cell, pbc=True, id="NaCl")


def collate(structures, **settings):
    rep = AdjacencyList(cutoff=3.5, **settings)
    return rep.collate([rep.featurize(s) for s in structures])


def test_every_tensor_is_shared_not_copied():
    batch = collate([water(), rattled(1, 6), crystal()])
    pyg = to_pyg(batch)
    assert pyg.num_graphs == 3 and pyg.num_nodes == 11
    assert pyg.pos is batch.positions and pyg.z is batch.numbers and pyg.batch is batch.batch
    for name in ("edge_shift", "cell_offsets", "cell", "pbc", "natoms"):
        assert pyg[name] is batch[name], name
    assert torch.equal(pyg.ptr, torch.tensor([0, 3, 9, 11]))


def test_target_to_source_shares_the_edge_index_too():
    batch = collate([water(), rattled(2, 5)])
    assert to_pyg(batch, flow="target_to_source").edge_index is batch.edge_index
    swapped = to_pyg(batch).edge_index
    assert torch.equal(swapped[0], batch.edge_index[1]) and torch.equal(swapped[1], batch.edge_index[0])


def test_messages_reach_the_centre_atom_in_both_flows():
    """One nearest neighbour per atom makes the graph one-directional: the sum PyG's layer
    collects at atom i must be the features of the neighbours j that molplat lists for centre i."""
    batch = collate([rattled(3, 7), rattled(4, 5)], max_neighbors=1)
    i, j = batch.edge_index
    assert not torch.equal(torch.sort(i).values, torch.sort(j).values)  # really one-directional
    x = torch.randn(batch.numbers.shape[0], 4, dtype=torch.float64)
    expected = torch.zeros_like(x).index_add_(0, i, x[j])

    default = to_pyg(batch)
    got = SimpleConv(aggr="sum")(x, default.edge_index)
    shared = to_pyg(batch, flow="target_to_source")
    got_shared = SimpleConv(aggr="sum", flow="target_to_source")(x, shared.edge_index)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got_shared, expected)


def test_gradients_flow_back_to_the_batch_positions():
    """Forces are -dE/d(batch.positions): a PyG layer fed by pyg.pos must reach that tensor."""
    batch = collate([water(), crystal()])
    batch.positions.requires_grad_(True)
    pyg = to_pyg(batch)
    distance = edge_vectors(batch).norm(dim=-1)
    energy = SimpleConv(aggr="sum")(pyg.pos, pyg.edge_index, torch.exp(-distance)).pow(2).sum()
    (grad,) = torch.autograd.grad(energy, batch.positions)
    assert grad.shape == batch.positions.shape and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_to_data_list_gives_each_structure_alone():
    structures = [water(), rattled(5, 6), crystal()]
    pyg = to_pyg(collate(structures))
    for structure, data in zip(structures, pyg.to_data_list()):
        alone = to_pyg(collate([structure]))
        assert torch.equal(data.z, alone.z) and torch.equal(data.pos, alone.pos)
        assert torch.equal(data.edge_index, alone.edge_index)
        assert torch.equal(data.edge_shift, alone.edge_shift) and torch.equal(data.cell, alone.cell)


def test_dense_batches_and_unknown_flows_are_refused():
    rep = PointCloud()
    dense = rep.collate([rep.featurize(water())])
    with pytest.raises(ValueError, match="adjacency_list"):
        to_pyg(dense)
    with pytest.raises(ValueError, match="flow must be one of"):
        to_pyg(collate([water()]), flow="sideways")
