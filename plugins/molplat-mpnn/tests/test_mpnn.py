"""MPNN and MPNN-transformer: edge direction, the function against plain references, smoothness
at the cutoff, readouts, per-atom heads, bad settings and a small overfit."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import molplat
from molplat.errors import MolplatError
from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.batch import Batch
from molplat.structure import Structure
from molplat_mpnn.model import MPNN, MPNNTransformer

CUTOFF = 4.0
TINY = dict(hidden_channels=8, num_steps=2, num_gaussians=8, cutoff=CUTOFF, set2set_steps=2)
MODELS = {
    "mpnn": lambda **kw: MPNN(**{**TINY, "edge_hidden": 8, **kw}),
    "mpnn_transformer": lambda **kw: MPNNTransformer(**{**TINY, "attention_heads": 2, **kw}),
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second thread only adds overhead."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def water() -> Structure:
    return Structure([8, 1, 1], [[0.0, 0.0, 0.117], [0.0, 0.757, -0.469], [0.0, -0.757, -0.469]], id="H2O")


def ethanol() -> Structure:
    return Structure(
        [6, 6, 8, 1, 1, 1, 1, 1, 1],
        [[-0.048, 0.55, 0.0], [-1.23, -0.41, 0.0], [1.18, -0.23, 0.0], [-0.08, 1.19, 0.89],
         [-0.08, 1.19, -0.89], [-2.17, 0.15, 0.0], [-1.2, -1.05, 0.88], [-1.2, -1.05, -0.88],
         [1.94, 0.38, 0.0]],
        id="ethanol",
    )


def rocksalt(rng: np.random.Generator) -> Structure:
    """A rattled, sheared NaCl-like cell: neighbours come from periodic images."""
    cell = np.array([[3.0, 0.0, 0.0], [0.3, 3.0, 0.0], [0.2, 0.1, 3.0]])
    positions = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]) @ cell + rng.normal(scale=0.05, size=(2, 3))
    return Structure([11, 17], positions, cell=cell, pbc=True, id="NaCl")


def collate(structures: list[Structure], dtype=torch.float64, cutoff: float = CUTOFF, **settings) -> Batch:
    rep = AdjacencyList(cutoff=cutoff, **settings)
    batch = rep.collate([rep.featurize(s) for s in structures])
    return Batch({k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                  for k, v in batch.items()})


def build(name: str, seed: int = 0, **settings) -> torch.nn.Module:
    torch.manual_seed(seed)
    return MODELS[name](**settings).double().eval()


# -- edge direction ---------------------------------------------------------------------------------
def chain(last: int) -> Structure:
    """A, B, C on a line; with max_neighbors=1 C hears B but B hears only A: a one-way edge B -> C."""
    return Structure([6, 7, last], [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.5, 0.0, 0.0]], id=f"chain-{last}")


@pytest.mark.parametrize("name", MODELS)
def test_messages_flow_from_neighbour_to_centre(name):
    """molplat's edge (i, j) sends j's message to i. On a neighbour list truncated to one neighbour
    per atom, C receives from B but nobody receives from C: changing C's element must change C's
    state only. Reading the edges in PyG's default direction would change B's (and A's) instead."""
    batch = collate([chain(8)], max_neighbors=1)
    assert batch.edge_index.tolist() == [[0, 1, 2], [1, 0, 1]]  # (centre, neighbour): C <- B is one-way
    model = build(name, num_steps=3)
    with torch.no_grad():
        before = model(batch)["atom_embedding"]
        after = model(collate([chain(9)], max_neighbors=1))["atom_embedding"]
    torch.testing.assert_close(after[:2], before[:2], rtol=0, atol=0)  # A and B never hear from C
    assert (after[2] - before[2]).abs().max() > 1e-3  # C's own element changed; C still hears B

    # ...and B's element reaches C: the receiver gets the message
    swapped = Structure([6, 9, 8], chain(8).positions)
    with torch.no_grad():
        moved = model(collate([swapped], max_neighbors=1))["atom_embedding"]
    assert (moved[2] - before[2]).abs().max() > 1e-3


def reference_mpnn(model: MPNN, batch: Batch) -> dict[str, torch.Tensor]:
    """Gilmer's MPNN written plainly per directed edge (centre i receives A(e_ij) h_j), no PyG."""
    i, j = batch.edge_index
    d = (batch.positions[j] - batch.positions[i] + batch.edge_shift).norm(dim=-1)
    offsets = model.rbf.offset
    rbf = torch.exp(-0.5 / (offsets[1] - offsets[0]) ** 2 * (d[:, None] - offsets) ** 2)
    envelope = 0.5 * (torch.cos(math.pi * d / model.cutoff) + 1.0) * (d < model.cutoff)
    n = model.hidden_channels
    matrices = model.conv.nn(rbf).view(-1, n, n) * (envelope * model.neighbor_scale)[:, None, None]
    h = model.embedding(batch.numbers)
    for _ in range(model.num_steps):
        messages = torch.einsum("ea,eab->eb", h[j], matrices)
        m = torch.zeros_like(h).index_add_(0, i, messages) + model.conv.bias
        h = model.gru(m, h)
    return {"h": h, "y": reference_readout(model, h, batch)}


def reference_transformer(model: MPNNTransformer, batch: Batch) -> dict[str, torch.Tensor]:
    """Attention written plainly: centre i attends to its neighbours j and to itself, each weight
    envelope x exp(q_i . (k_j + W e_ij) / sqrt(c)), normalised; no PyG."""
    i, j = batch.edge_index
    n_atoms = batch.numbers.shape[0]
    d = (batch.positions[j] - batch.positions[i] + batch.edge_shift).norm(dim=-1)
    offsets = model.rbf.offset
    rbf = torch.exp(-0.5 / (offsets[1] - offsets[0]) ** 2 * (d[:, None] - offsets) ** 2)
    envelope = 0.5 * (torch.cos(math.pi * d / model.cutoff) + 1.0) * (d < model.cutoff)
    conv, heads = model.conv, model.attention_heads
    c = model.hidden_channels // heads
    h = model.embedding(batch.numbers)
    for _ in range(model.num_steps):
        q, k, v = (lin(h).view(-1, heads, c) for lin in (conv.lin_query, conv.lin_key, conv.lin_value))
        e = conv.lin_edge(rbf).view(-1, heads, c)
        weight_edges = envelope[:, None] * torch.exp(((q[i] * (k[j] + e)).sum(-1) / math.sqrt(c)))
        weight_self = torch.exp((q * k).sum(-1) / math.sqrt(c))
        norm = weight_self.clone().index_add_(0, i, weight_edges)
        out = (weight_self[..., None] * v).index_add_(0, i, weight_edges[..., None] * (v[j] + e))
        out = (out / norm[..., None]).reshape(n_atoms, -1) + conv.lin_skip(h)
        h = model.gru(out, h)
    return {"h": h, "y": reference_readout(model, h, batch)}


def reference_readout(model, h: torch.Tensor, batch: Batch) -> torch.Tensor:
    """set2set written plainly per structure: q from an LSTM, softmax over the structure's atoms."""
    rows = []
    for g in range(batch.num_graphs):
        x = h[batch.batch == g]
        state = (x.new_zeros(1, x.shape[1]), x.new_zeros(1, x.shape[1]))
        q_star = x.new_zeros(1, 2 * x.shape[1])
        lstm = model.set2set.lstm
        for _ in range(model.set2set.processing_steps):
            gates = q_star @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + state[0] @ lstm.weight_hh_l0.T + lstm.bias_hh_l0
            a, f, cell, o = gates.chunk(4, dim=1)
            c_new = torch.sigmoid(f) * state[1] + torch.sigmoid(a) * torch.tanh(cell)
            q = torch.sigmoid(o) * torch.tanh(c_new)
            state = (q, c_new)
            attention = torch.softmax(x @ q[0], dim=0)
            q_star = torch.cat([q, (attention[:, None] * x).sum(0, keepdim=True)], dim=1)
        y = model.output(q_star)
        if model.contributions is not None:
            y = y + model.contributions(x).sum(0, keepdim=True)
        rows.append(y)
    return torch.cat(rows)


REFERENCES = {"mpnn": reference_mpnn, "mpnn_transformer": reference_transformer}


@pytest.mark.parametrize("max_neighbors", [None, 3], ids=["full-list", "truncated-list"])
@pytest.mark.parametrize("name", MODELS)
def test_matches_a_plain_reference(name, max_neighbors):
    """The PyG layers compute the paper's function in molplat's edge direction, on molecules and a
    crystal, with full and truncated (partly one-way) neighbour lists."""
    rng = np.random.default_rng(8)
    model = build(name, readout="sum", cutoff=3.5)  # some edges lie between the model's cutoff and the list's
    batch = collate([ethanol(), rocksalt(rng), water()], max_neighbors=max_neighbors)
    with torch.no_grad():
        out, want = model(batch), REFERENCES[name](model, batch)
    torch.testing.assert_close(out["atom_embedding"], want["h"], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(out["y"], want["y"], rtol=1e-9, atol=1e-10)


# -- smoothness ---------------------------------------------------------------------------------------
def energy_and_forces(model, structure: Structure) -> tuple[float, torch.Tensor]:
    batch = collate([structure], cutoff=CUTOFF + 0.5)  # the list reaches beyond the model's cutoff
    batch.positions.requires_grad_(True)
    energy = model(batch)["y"][:, 0].sum()
    (grad,) = torch.autograd.grad(energy, batch.positions)
    return energy.item(), -grad


@pytest.mark.parametrize("name", MODELS)
def test_energy_and_forces_smooth_across_the_cutoff(name):
    """An atom pulled through the model's cutoff: no jump in the energy or the forces, also when it
    is its partner's only neighbour (attention's normaliser then holds the self-loop alone)."""
    model = build(name, readout="sum")
    for others in ([], [[-0.6, 0.9, 0.0]]):
        results = []
        for r in (CUTOFF - 1e-6, CUTOFF + 1e-6):  # the slope falls linearly to 0: forces differ by O(step)
            structure = Structure([6, *[1] * len(others), 8], [[0.0, 0.0, 0.0], *others, [r, 0.0, 0.0]])
            results.append(energy_and_forces(model, structure))
        (e_in, f_in), (e_out, f_out) = results
        assert abs(e_in - e_out) < 1e-10, (e_in, e_out)
        torch.testing.assert_close(f_in, f_out, rtol=0, atol=1e-7)


# -- readouts -----------------------------------------------------------------------------------------
def two_copies(structure: Structure, gap: float = 50.0) -> Structure:
    shifted = structure.positions + np.array([gap, 0.0, 0.0])
    return Structure(np.concatenate([structure.numbers] * 2), np.concatenate([structure.positions, shifted]))


@pytest.mark.parametrize("name", MODELS)
def test_mean_readout_is_intensive_and_sum_adds_an_extensive_term(name):
    """Two far-apart copies of ethanol: set2set (readout mean) predicts the same as for one copy;
    readout sum adds the per-atom contributions, so the pair gets twice one copy's share."""
    one, two = collate([ethanol()]), collate([two_copies(ethanol())])
    with torch.no_grad():
        mean = build(name, readout="mean")
        torch.testing.assert_close(mean(two)["y"], mean(one)["y"], rtol=1e-9, atol=1e-10)
        summed = build(name, readout="sum")
        single = summed(one)
        intensive = summed.output(single["graph_embedding"])
        torch.testing.assert_close(summed(two)["y"], 2 * single["y"] - intensive, rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(summed(two)["graph_embedding"], single["graph_embedding"], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", MODELS)
def test_per_atom_head_only_when_asked_for(name):
    plain = build(name)
    assert plain.atom_output is None and "atom_y" not in plain(collate([water()]))
    assert not any(k.startswith(("atom_output", "contributions")) for k in plain.state_dict())
    model = build(name, n_atom_outputs=2)
    out = model(collate([water(), ethanol()]))
    assert out["atom_y"].shape == (12, 2) and torch.isfinite(out["atom_y"]).all()


def test_neighbour_scale_comes_from_the_training_statistics():
    from molplat.data import TrainingStatistics

    statistics = TrainingStatistics(num_structures=1, num_atoms=3, element_counts={"1": 2, "8": 1}, targets={},
                                    avg_num_neighbors=4.0)
    model = MPNN(**TINY, statistics=statistics)
    assert float(model.neighbor_scale) == 0.25
    assert float(MPNN(**TINY).neighbor_scale) == 1.0
    assert "neighbor_scale" in model.state_dict()  # a checkpoint rebuilds the same function


@pytest.mark.parametrize("name", MODELS)
def test_runs_under_bf16_autocast(name):
    """The CPU trainer's ``amp`` setting wraps the model in bf16 autocast."""
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    batch = collate([water(), ethanol()], torch.float32)
    with torch.no_grad():
        reference = model(batch)["y"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(batch)["y"]
    torch.testing.assert_close(y.float(), reference, rtol=0.1, atol=0.1)


# -- settings ------------------------------------------------------------------------------------------
def pipeline(model: dict) -> dict:
    return {"dataset": {"name": "qm9", "target": "gap"}, "representation": {"name": "adjacency_list", "cutoff": 5.0},
            "model": model, "trainer": {"max_epochs": 1}}


@pytest.mark.parametrize("model, message", [
    ({"name": "mpnn_transformer", "hidden_channels": 10, "attention_heads": 4}, "multiple of attention_heads"),
    ({"name": "mpnn", "readout": "set2set"}, "readout"),
    ({"name": "mpnn", "num_gaussians": 1}, "num_gaussians"),
    ({"name": "mpnn", "hidden_channels": 1024}, "hidden_channels"),
    ({"name": "mpnn_transformer", "heads": 2}, "heads"),
])
def test_bad_settings_are_one_clear_error(model, message):
    pytest.importorskip("molplat_qm9")
    with pytest.raises(MolplatError, match=message):
        molplat.load_pipeline(pipeline(model))


def test_settings_are_bounded_like_the_representation_they_read():
    from molplat.plugins import PluginManager

    from molplat_mpnn import plugin

    representation = PluginManager().components("representation")["adjacency_list"]
    for spec in plugin.molplat_models():
        assert all(s.bounded for s in spec.settings)
        assert spec.setting("cutoff").maximum == representation.setting("cutoff").maximum
        assert "atom_property" in spec.outputs and "forces" in spec.outputs


# -- learning --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_overfits_a_handful_of_molecules(name):
    torch.manual_seed(6)
    rng = np.random.default_rng(7)
    structures = [Structure(rng.choice([1, 6, 7, 8], size=n), rng.uniform(-2.0, 2.0, size=(n, 3)))
                  for n in (4, 5, 6, 7, 8, 9)]
    batch = collate(structures, torch.float32)
    targets = torch.from_numpy(rng.normal(size=(len(structures), 1)).astype(np.float32))
    model = MODELS[name](hidden_channels=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(120):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch)["y"], targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0], losses[::20]
