"""SchNet: shapes, symmetries, forces, gradient flow, persistence and learning."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.batch import Batch
from molplat.structure import Structure
from molplat_schnet.model import SchNet

CUTOFF = 4.0
SMALL = dict(hidden_channels=32, num_filters=32, num_interactions=2, num_gaussians=20, cutoff=CUTOFF)


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


def random_molecule(rng: np.random.Generator, n: int) -> Structure:
    positions = rng.uniform(-2.0, 2.0, size=(n, 3))
    return Structure(rng.choice([1, 6, 7, 8], size=n), positions, id=f"mol{n}")


def rocksalt(rng: np.random.Generator) -> Structure:
    """A slightly rattled, sheared NaCl-like cell: neighbours come from periodic images."""
    a = 3.0
    cell = np.array([[a, 0.0, 0.0], [0.3, a, 0.0], [0.2, 0.1, a]])
    frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    positions = frac @ cell + rng.normal(scale=0.05, size=(2, 3))
    return Structure([11, 17], positions, cell=cell, pbc=True, id="NaCl")


def collate(structures: list[Structure], dtype=torch.float32, **settings) -> Batch:
    """A batch as training sees it: representations collate in float64, the core casts once."""
    rep = AdjacencyList(cutoff=CUTOFF, **settings)
    batch = rep.collate([rep.featurize(s) for s in structures])
    return Batch({k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                  for k, v in batch.items()})


def predict(model: SchNet, structures: list[Structure], dtype=torch.float32) -> torch.Tensor:
    return model(collate(structures, dtype))["y"]


def energy_and_forces(model: SchNet, structure: Structure, dtype=torch.float64):
    batch = collate([structure], dtype)
    batch.positions.requires_grad_(True)
    energy = model(batch)["y"].sum()
    (grad,) = torch.autograd.grad(energy, batch.positions)
    return energy.detach(), -grad


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second thread only adds overhead (20x on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def model() -> SchNet:
    torch.manual_seed(0)
    return SchNet(n_outputs=2, **SMALL).eval()


def test_mean_readout_is_sum_over_atoms():
    torch.manual_seed(1)
    summed = SchNet(n_outputs=1, readout="sum", **{k: v for k, v in SMALL.items()})
    mean = SchNet(n_outputs=1, readout="mean", **SMALL)
    mean.load_state_dict(summed.state_dict())
    structures = [water(), ethanol()]
    ratio = predict(summed, structures) / predict(mean, structures)
    torch.testing.assert_close(ratio.squeeze(-1), torch.tensor([3.0, 9.0]), rtol=1e-4, atol=1e-4)


def reference_forward(model: SchNet, batch) -> torch.Tensor:
    """SchNet written plainly from the paper, one filter per directed edge: the fast model
    (filters per unordered pair, shift folded into biases) must compute the same function."""
    i, j = batch.edge_index
    vectors = batch.positions[j] - batch.positions[i] + batch.edge_shift
    d = vectors.norm(dim=-1)
    ssp = lambda x: torch.nn.functional.softplus(x) - np.log(2.0)  # noqa: E731
    rbf = torch.exp(-model.rbf.gamma * (d[:, None] - model.rbf.centers) ** 2)
    envelope = (0.5 * (torch.cos(np.pi * d / model.cutoff) + 1.0) * (d < model.cutoff))[:, None]
    h = model.embedding(batch.numbers)
    for block in model.interactions:
        w = ssp(block.filter_out(ssp(block.filter_in(rbf)))) * envelope
        conv = torch.zeros(h.shape[0], w.shape[1]).index_add_(0, i, block.in2f(h)[j] * w)
        h = h + block.dense(ssp(block.f2out(conv)))
    per_atom = model.output(h)
    return torch.zeros(batch.num_graphs, per_atom.shape[1]).index_add_(0, batch.batch, per_atom)


@pytest.mark.parametrize("max_neighbors", [None, 3], ids=["full-list", "truncated-list"])
def test_matches_plain_per_edge_reference(model, max_neighbors):
    rng = np.random.default_rng(8)
    batch = collate([ethanol(), rocksalt(rng), random_molecule(rng, 7)], max_neighbors=max_neighbors)
    torch.testing.assert_close(model(batch)["y"], reference_forward(model, batch), rtol=1e-4, atol=1e-5)


def test_energy_continuous_across_cutoff():
    """Pulling an atom through the cutoff sphere changes the energy smoothly (no jump)."""
    torch.manual_seed(3)
    model = SchNet(n_outputs=1, **SMALL).double().eval()
    energies = []
    for d in np.linspace(CUTOFF - 1e-3, CUTOFF + 1e-3, 5):
        energies.append(energy_and_forces(model, Structure([6, 8], [[0, 0, 0], [d, 0, 0]]))[0].item())
    assert max(abs(a - b) for a, b in zip(energies, energies[1:])) < 1e-7


def test_runs_under_bf16_autocast(model):
    """The CPU trainer's ``amp`` setting wraps the model in bf16 autocast."""
    structures = [water(), ethanol()]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = predict(model, structures)
    torch.testing.assert_close(y.float(), predict(model, structures), rtol=0.1, atol=0.1)


def test_overfits_a_handful_of_molecules():
    torch.manual_seed(6)
    rng = np.random.default_rng(7)
    structures = [random_molecule(rng, n) for n in (4, 5, 6, 7, 8, 9)]
    batch = collate(structures)
    targets = torch.from_numpy(rng.normal(size=(len(structures), 1)).astype(np.float32))
    model = SchNet(n_outputs=1, **SMALL)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch)["y"], targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


# -- per-atom targets ---------------------------------------------------------------------------
def test_per_atom_head_only_when_asked_for():
    torch.manual_seed(4)
    plain = SchNet(n_outputs=1, **SMALL)
    assert plain.atom_output is None and "atom_y" not in plain(collate([water()]))
    assert not any(k.startswith("atom_output") for k in plain.state_dict())  # old checkpoints still load
    model = SchNet(n_outputs=1, n_atom_outputs=2, **SMALL).eval()
    structures = [water(), ethanol()]
    out = model(collate(structures))
    assert out["atom_y"].shape == (12, 2) and torch.isfinite(out["atom_y"]).all()
    # a molecule's per-atom predictions do not depend on its batch neighbours
    torch.testing.assert_close(model(collate([ethanol()]))["atom_y"], out["atom_y"][3:], rtol=1e-5, atol=1e-6)


def test_per_atom_outputs_are_invariant_and_follow_the_atoms():
    torch.manual_seed(5)
    model = SchNet(n_outputs=1, n_atom_outputs=1, **SMALL).double().eval()
    rng = np.random.default_rng(2)
    molecule = ethanol()
    reference = model(collate([molecule], torch.float64))["atom_y"]
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    permutation = rng.permutation(len(molecule))
    moved = molecule.transformed(rotation=q, translation=[1.0, -2.0, 0.5], permutation=permutation)
    torch.testing.assert_close(model(collate([moved], torch.float64))["atom_y"], reference[permutation])


def test_settings_are_bounded_like_the_representations_they_read():
    from molplat.plugins import PluginManager

    from molplat_schnet import plugin

    (spec,) = plugin.molplat_models()
    assert all(s.bounded for s in spec.settings)
    representation = PluginManager().components("representation")["adjacency_list"]
    assert spec.setting("cutoff").maximum == representation.setting("cutoff").maximum
    assert spec.setting("max_atomic_number").maximum == 118
    assert "atom_property" in spec.outputs


# -- the static-shape path --------------------------------------------------------------------------
# The default path pairs i->j with j->i (torch.unique, bincount().max()): shapes that depend on the
# data, which PopTorch (IPUs) and torch.compile(fullgraph=True) refuse. The static path
# (static_shapes=True, or any fixed-size batch carrying graphs_mask) computes each directed
# edge's filter instead, and must be the same function.


def pair(**extra) -> tuple[SchNet, SchNet]:
    """The same weights on both paths, float64."""
    torch.manual_seed(0)
    dynamic = SchNet(**SMALL, **extra).double()
    static = SchNet(**SMALL, **extra, static_shapes=True).double()
    static.load_state_dict(dynamic.state_dict())
    return dynamic, static


@pytest.mark.parametrize("readout", ["sum", "mean"])
def test_static_path_gives_the_same_outputs_and_forces(readout):
    structures = [water(), ethanol(), rocksalt(np.random.default_rng(1))]
    dynamic, static = pair(readout=readout, n_atom_outputs=2)
    results = []
    for model in (dynamic, static):
        batch = collate(structures, torch.float64)
        batch.positions.requires_grad_(True)
        out = model(batch)
        (grad,) = torch.autograd.grad(out["y"].sum(), batch.positions)
        results.append((out["y"].detach(), out["atom_y"].detach(), grad))
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)


def test_truncated_neighbour_lists_agree_too():
    """max_neighbors leaves some pairs one-directional: the default path's general case."""
    dynamic, static = pair()
    batch = collate([ethanol()], torch.float64, max_neighbors=3)
    torch.testing.assert_close(static(batch)["y"], dynamic(batch)["y"], rtol=1e-10, atol=1e-12)


def test_static_path_compiles_with_fullgraph_where_the_default_path_breaks():
    """Dynamo traces the whole static forward as one graph (no graph break, no data-dependent shape)."""
    dynamic, static = pair()
    batch = collate([water(), ethanol()], torch.float64)
    compiled = torch.compile(static, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(batch)["y"], static(batch)["y"], rtol=1e-12, atol=1e-12)
    torch._dynamo.reset()
    with pytest.raises(Exception, match="data-dependent"):
        torch.compile(dynamic, fullgraph=True, backend="eager")(batch)
    torch._dynamo.reset()


class Positional(torch.nn.Module):
    """SchNet with tensors in and out, as torch.export (and PopTorch) take a model."""

    def __init__(self, model: SchNet, num_graphs: int) -> None:
        super().__init__()
        self.model, self.num_graphs = model, num_graphs

    def forward(self, numbers, positions, batch, edge_index, edge_shift, cell_offsets, natoms):
        return self.model({"numbers": numbers, "positions": positions, "batch": batch, "edge_index": edge_index,
                           "edge_shift": edge_shift, "cell_offsets": cell_offsets, "natoms": natoms,
                           "num_graphs": self.num_graphs})["y"]


def test_static_path_exports_where_the_default_path_cannot():
    dynamic, static = pair()
    batch = collate([water(), ethanol()], torch.float64)
    args = tuple(batch[k] for k in ("numbers", "positions", "batch", "edge_index", "edge_shift", "cell_offsets",
                                    "natoms"))
    exported = torch.export.export(Positional(static, 2), args)
    torch.testing.assert_close(exported.module()(*args), static(batch)["y"], rtol=1e-12, atol=1e-12)
    with pytest.raises(Exception, match="data-dependent"):
        torch.export.export(Positional(dynamic, 2), args)
