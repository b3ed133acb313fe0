"""Attributions as science: completeness of integrated gradients, a model whose output depends on
one atom puts the attribution there, and maps are invariant under rotation and permutation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from molplat.models import Head, Heads
from molplat.representations import AdjacencyList
from molplat.representations.adjacency_list import edge_vectors
from molplat.structure import Structure
from molplat.training import AtomisticTask
from molplat_sdk.toy_components import ToyPairModel

from molplat_captum.attribution import METHODS, Attributor

torch.set_num_threads(1)
#: a water-like molecule and a bent chain of five atoms with one oxygen (index 2)
WATER = Structure([8, 1, 1], [[0.0, 0.0, 0.1], [0.76, 0.0, -0.46], [-0.76, 0.0, -0.46]], id="water")
CHAIN = Structure([6, 6, 8, 6, 1], [[0.0, 0.0, 0.0], [1.5, 0.1, 0.0], [2.3, 1.3, 0.2], [3.8, 1.2, -0.1],
                                    [4.4, 2.1, 0.3]], id="chain")


def task_of(model: nn.Module, n_outputs: int = 1) -> AtomisticTask:
    heads = Heads(tuple(Head(f"y{k}") for k in range(n_outputs)))
    return AtomisticTask(model, heads).eval()


def toy(n_outputs: int = 1, seed: int = 0) -> AtomisticTask:
    torch.manual_seed(seed)
    return task_of(ToyPairModel(n_outputs=n_outputs, hidden_channels=8, num_rbf=8, cutoff=4.0), n_outputs)


class OxygenOnly(nn.Module):
    """y = sum over oxygen atoms of w . e_O + distances from the oxygen to its neighbours: the output
    depends on the oxygen's embedding and position alone (other atoms move only through it)."""

    accepts = ("adjacency_list",)
    embedding_layer = "embedding"

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10, 4)
        self.weight = nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 3.0]))

    def forward(self, batch):
        e = self.embedding(batch["numbers"])
        oxygen = (batch["numbers"] == 8).to(e.dtype)
        per_atom = (e @ self.weight.to(e.dtype)) * oxygen
        graph = batch.atom_graph_index()
        y = torch.zeros(batch.num_graphs, dtype=e.dtype).index_add(0, graph, per_atom)[:, None]
        return {"y": y, "atom_embedding": e, "graph_embedding": y}


REP = AdjacencyList(cutoff=4.0)


def attribute(task, structure, method, kind, target=0, **kw):
    return Attributor(task, REP).use(structure).attribute(method, kind, target, **kw)


@pytest.mark.parametrize("kind, scale", [("numbers", 0.0), ("positions", 0.0), ("positions", 2.0)])
def test_integrated_gradients_sum_to_the_change_in_prediction(kind, scale):
    """Completeness: sum_i IG_i = f(x) - f(baseline), within the quadrature's error (the embedding's
    baseline is the zero embedding; the positions' is the geometry shrunk to its centre or spread out)."""
    task = toy(n_outputs=2)
    for target in (0, 1):
        result = attribute(task, CHAIN, "integrated_gradients", kind, target, n_steps=64, baseline_scale=scale)
        assert abs(result.difference) > 1e-4  # the baseline really differs from the structure
        assert result.values.sum() == pytest.approx(result.difference, rel=1e-3, abs=1e-6)
        assert abs(result.completeness_error) <= 1e-3 * abs(result.difference) + 1e-6


def test_a_model_that_reads_one_atom_puts_every_attribution_on_it():
    task = task_of(OxygenOnly())
    for method in ("saliency", "input_x_gradient", "integrated_gradients"):
        values = attribute(task, CHAIN, method, "numbers").values
        assert abs(values[2]) > 1e-3, method
        np.testing.assert_allclose(np.delete(values, 2), 0.0, atol=1e-12, err_msg=method)
    # integrated gradients from the zero embedding recover the oxygen's whole contribution
    result = attribute(task, CHAIN, "integrated_gradients", "numbers", n_steps=8)
    assert result.values[2] == pytest.approx(result.prediction - float(task.scaler.graph_shift[0]), rel=1e-6)


def test_cam_weighs_every_atom_by_the_mean_gradient():
    """(Grad-)CAM's channel weights are the gradient averaged over the atoms (Pope et al. 2019), shared by
    all atoms: with y = w . e_O, atom n gets w . e_n / N, so atoms the output never reads light up too,
    and Grad-CAM keeps the positive part."""
    model = OxygenOnly()
    task = task_of(model)
    with torch.no_grad():
        expected = (model.embedding(torch.as_tensor(CHAIN.numbers)) @ model.weight).double().numpy() / len(CHAIN)
    scale = float(task.scaler.graph_scale[0])
    np.testing.assert_allclose(attribute(task, CHAIN, "cam", "numbers").values, scale * expected, rtol=1e-6)
    np.testing.assert_allclose(attribute(task, CHAIN, "grad_cam", "numbers").values,
                               np.maximum(scale * expected, 0.0), rtol=1e-6)


def test_position_attributions_land_on_the_atoms_that_move_the_output():
    """y depends on the distance between atoms 0 and 1 only: their gradients are equal and opposite,
    the rest get nothing."""

    class BondLength(OxygenOnly):
        def forward(self, batch):
            out = super().forward(batch)
            pos = batch["positions"].reshape(-1, 3)
            first = torch.cumsum(batch["natoms"], 0) - batch["natoms"]
            d = (pos[first + 1] - pos[first]).norm(dim=-1)
            return {**out, "y": out["y"] + d[:, None] ** 2}

    task = task_of(BondLength())
    values = attribute(task, CHAIN, "saliency", "positions").values
    assert values[0] == pytest.approx(values[1]) and values[0] > 0
    np.testing.assert_allclose(values[2:], 0.0, atol=1e-12)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("method", METHODS)
def test_attributions_are_invariant_under_rotation_and_permutation(method):
    task = toy(n_outputs=1, seed=3)
    rng = np.random.default_rng(0)
    rotation = random_rotation(rng)
    order = rng.permutation(len(CHAIN))
    moved = CHAIN.transformed(rotation=rotation, translation=rng.normal(size=3) * 4.0)
    reordered = CHAIN.transformed(permutation=order)
    kinds = ["numbers"] if method in ("cam", "grad_cam") else ["numbers", "positions"]
    for kind in kinds:
        settings = {"n_steps": 24, "baseline_scale": 0.5} if method == "integrated_gradients" else {}
        reference = attribute(task, CHAIN, method, kind, **settings).values
        assert np.abs(reference).max() > 1e-6, (method, kind)
        np.testing.assert_allclose(attribute(task, moved, method, kind, **settings).values, reference,
                                   rtol=1e-7, atol=1e-10, err_msg=f"{method} {kind}: rotation")
        np.testing.assert_allclose(attribute(task, reordered, method, kind, **settings).values, reference[order],
                                   rtol=1e-7, atol=1e-10, err_msg=f"{method} {kind}: permutation")


def test_one_map_per_target_and_input():
    task = toy(n_outputs=2, seed=1)
    a = Attributor(task, REP).use(WATER)
    maps = {(t, k): a.attribute("input_x_gradient", k, t).values for t in (0, 1) for k in ("numbers", "positions")}
    assert all(v.shape == (3,) for v in maps.values())
    assert not np.allclose(maps[(0, "numbers")], maps[(1, "numbers")])


def test_a_model_without_an_embedding_layer_is_named():
    class Undeclared(OxygenOnly):
        embedding_layer = ""

    with pytest.raises(ValueError, match="declares no embedding_layer"):
        Attributor(task_of(Undeclared()), REP)


@pytest.mark.parametrize("method", METHODS)
def test_a_padded_layout_gives_the_same_maps_as_a_flat_one(method):
    """CGCNN computes the same function on adjacency lists ([N, F] embeddings) and on padded
    adjacency matrices ([G, N_max, F]): the attributions agree atom by atom."""
    pytest.importorskip("molplat_cgcnn")
    from molplat.representations import AdjacencyMatrix
    from molplat_cgcnn.model import CGCNN

    torch.manual_seed(0)
    task = task_of(CGCNN(atom_features=8, num_convs=2, num_gaussians=8, cutoff=4.0, hidden=8))
    kinds = ["numbers"] if method in ("cam", "grad_cam") else ["numbers", "positions"]
    settings = {"n_steps": 16, "baseline_scale": 1.5} if method == "integrated_gradients" else {}
    for kind in kinds:
        flat = Attributor(task, REP).use(CHAIN).attribute(method, kind, 0, **settings).values
        padded = Attributor(task, AdjacencyMatrix(cutoff=4.0)).use(CHAIN).attribute(method, kind, 0, **settings).values
        assert np.abs(flat).max() > 1e-8, (method, kind)
        np.testing.assert_allclose(padded, flat, rtol=1e-6, atol=1e-10, err_msg=f"{method} {kind}")


def test_integrated_gradients_in_chunks_equal_one_forward(monkeypatch):
    """Large structures run the integration steps in chunks of copies; the result is the same."""
    import molplat_captum.attribution as attribution

    task = toy(n_outputs=1, seed=2)
    whole = {k: attribute(task, CHAIN, "integrated_gradients", k, n_steps=12).values for k in ("numbers", "positions")}
    monkeypatch.setattr(attribution, "ATOMS_PER_FORWARD", 2 * len(CHAIN))  # two copies per forward
    for kind, values in whole.items():
        np.testing.assert_allclose(attribute(task, CHAIN, "integrated_gradients", kind, n_steps=12).values, values,
                                   rtol=1e-9, atol=1e-12)
