"""Behaviour of the CGCNN model on both batch forms (list and matrix)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.adjacency_matrix import AdjacencyMatrix
from molplat.structure import Structure
from molplat_cgcnn.model import CGCNN
from molplat_cgcnn.plugin import molplat_models

CUTOFF = 4.0
FORMS = ("adjacency_list", "adjacency_matrix")
FLOAT_FIELDS = ("positions", "edge_shift", "image_shifts", "cell")


def _representation(form: str, cutoff: float = CUTOFF):
    return AdjacencyList(cutoff=cutoff) if form == "adjacency_list" else AdjacencyMatrix(cutoff=cutoff)


def _batch(structures, form, dtype=torch.float32, cutoff=CUTOFF):
    rep = _representation(form, cutoff)
    batch = rep.collate([rep.featurize(s) for s in structures])
    for key in FLOAT_FIELDS:
        if key in batch:
            batch[key] = batch[key].to(dtype)
    if dtype == torch.float64:  # collation rounds to float32; rebuild the geometry exactly
        cells = torch.from_numpy(np.stack([s.cell if s.cell is not None else np.zeros((3, 3)) for s in structures]))
        batch["cell"] = cells
        if batch.dense:
            batch["positions"] = torch.zeros_like(batch["positions"])
            for g, s in enumerate(structures):
                batch["positions"][g, : len(s)] = torch.from_numpy(s.positions)
            batch["image_shifts"] = torch.einsum("sk,gkl->gsl", batch["image_offsets"].double(), cells)
        else:
            batch["positions"] = torch.from_numpy(np.concatenate([s.positions for s in structures]))
            edge_cells = cells[batch["batch"][batch["edge_index"][0]]]
            batch["edge_shift"] = torch.einsum("ek,ekl->el", batch["cell_offsets"].double(), edge_cells)
    return batch


def _model(seed=0, **kw) -> CGCNN:
    torch.manual_seed(seed)
    settings = dict(n_outputs=2, atom_features=16, num_convs=2, num_gaussians=12, cutoff=CUTOFF, hidden=24)
    settings.update(kw)
    return CGCNN(**settings)


def _warm_batchnorm(model: CGCNN, structures) -> CGCNN:
    """Give the batch norms non-trivial running statistics, then switch to eval mode."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(_batch(structures, "adjacency_list"))
    return model.eval()


def _random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second thread only adds overhead (and stalls on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def structures() -> list[Structure]:
    water = Structure.from_atoms(molecule("H2O"))
    ethanol = Structure.from_atoms(molecule("CH3CH2OH"))
    si = Structure.from_atoms(bulk("Si", "diamond", a=5.43, cubic=True))
    nacl = bulk("NaCl", "rocksalt", a=4.2)  # 2-atom primitive cell: many images within 4 Å
    nacl.rattle(0.1, seed=1)
    nacl_s = Structure.from_atoms(nacl)
    fe = bulk("Fe", "bcc", a=2.87).repeat((2, 1, 1))
    fe.rattle(0.05, seed=2)
    structs = [water, ethanol, si, nacl_s, Structure.from_atoms(fe)]
    assert _batch([nacl_s], "adjacency_matrix")["image_shifts"].shape[1] > 8, "NaCl should see many images"
    return structs


@pytest.fixture(scope="module")
def model(structures) -> CGCNN:
    return _warm_batchnorm(_model(), structures)


def test_spec_matches_constructor():
    spec = molplat_models()[0]
    assert spec.name == "cgcnn" and spec.kind == "model"
    assert set(spec.accepts) == set(FORMS) == set(CGCNN.accepts)
    net = spec.build(n_outputs=3)
    assert isinstance(net, CGCNN) and net.n_outputs == 3 and len(net.convs) == 3
    assert net.embedding.weight.shape == (101, 64) and net.cutoff == 6.0


@pytest.mark.parametrize("form", FORMS)
def test_shapes(model, structures, form):
    out = model(_batch(structures, form))
    n_atoms = sum(len(s) for s in structures)
    assert out["y"].shape == (len(structures), 2)
    assert out["atom_embedding"].shape == (n_atoms, 16)
    assert out["graph_embedding"].shape == (len(structures), 16)
    assert torch.isfinite(out["y"]).all()


@pytest.mark.parametrize("readout", ["mean", "sum"])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_list_and_matrix_agree(structures, readout, mode):
    net = _warm_batchnorm(_model(readout=readout), structures)
    net.train(mode == "train")
    a = net(_batch(structures, "adjacency_list"))
    b = net(_batch(structures, "adjacency_matrix"))
    for key in ("y", "atom_embedding", "graph_embedding"):
        torch.testing.assert_close(a[key], b[key], atol=2e-5, rtol=1e-4)
    # each crystal alone as well (no padding, a different image set)
    net.eval()
    for s in structures[2:]:
        torch.testing.assert_close(net(_batch([s], "adjacency_list"))["y"],
                                   net(_batch([s], "adjacency_matrix"))["y"], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("form", FORMS)
def test_invariance_rotation_translation_permutation(model, structures, form):
    rng = np.random.default_rng(42)
    moved = []
    for s in structures:
        rotation = _random_rotation(rng)
        moved.append(s.transformed(rotation=rotation, translation=rng.normal(size=3) * 3,
                                   permutation=rng.permutation(len(s))))
    a = model(_batch(structures, form))["y"]
    b = model(_batch(moved, form))["y"]
    torch.testing.assert_close(a, b, atol=5e-5, rtol=1e-4)


@pytest.mark.parametrize("form", FORMS)
def test_invariance_lattice_translation_of_one_atom(model, structures, form):
    for s in structures[2:]:
        shifted = Structure(s.numbers, s.positions.copy(), s.cell, s.pbc)
        shifted.positions[0] += s.cell[0] - 2 * s.cell[2]
        a = model(_batch([s], form))["y"]
        b = model(_batch([shifted], form))["y"]
        torch.testing.assert_close(a, b, atol=5e-5, rtol=1e-4)


def _energy_and_forces(net, structure, form, dtype=torch.float64):
    batch = _batch([structure], form, dtype)
    batch["positions"].requires_grad_(True)
    energy = net(batch)["y"][:, 0].sum()
    (grad,) = torch.autograd.grad(energy, batch["positions"])
    return energy.detach(), -batch.flat_atoms(grad)


@pytest.mark.parametrize("form", FORMS)
def test_forces_match_finite_differences_and_rotate(structures, form):
    net = _warm_batchnorm(_model(readout="sum"), structures).double()
    rng = np.random.default_rng(3)
    for s in (structures[1], structures[3]):  # a molecule and the rattled NaCl crystal
        _, forces = _energy_and_forces(net, s, form)
        h, numeric = 1e-5, np.zeros_like(s.positions)
        for a in range(len(s)):
            for k in range(3):
                plus, minus = s.positions.copy(), s.positions.copy()
                plus[a, k] += h
                minus[a, k] -= h
                e_plus, _ = _energy_and_forces(net, Structure(s.numbers, plus, s.cell, s.pbc), form)
                e_minus, _ = _energy_and_forces(net, Structure(s.numbers, minus, s.cell, s.pbc), form)
                numeric[a, k] = -(e_plus - e_minus).item() / (2 * h)
        np.testing.assert_allclose(forces.numpy(), numeric, atol=1e-6, rtol=1e-5)
        assert np.abs(numeric).max() > 1e-4, "forces should not vanish"
        rotation = _random_rotation(rng)
        _, rotated = _energy_and_forces(net, s.transformed(rotation=rotation), form)
        np.testing.assert_allclose(rotated.numpy(), forces.numpy() @ rotation.T, atol=1e-9)


def test_energy_continuous_at_cutoff():
    net = _model(readout="sum").double().eval()
    energies = []
    for r in (CUTOFF - 1e-4, CUTOFF + 1e-4):
        dimer = Structure([6, 8], [[0, 0, 0], [r, 0, 0]])
        energies.append(net(_batch([dimer], "adjacency_list", torch.float64, cutoff=CUTOFF + 1))["y"])
    torch.testing.assert_close(energies[0], energies[1], atol=1e-7, rtol=0)


@pytest.mark.parametrize("form", FORMS)
def test_gradients_reach_every_parameter(structures, form):
    net = _model().train()
    out = net(_batch(structures, form))
    out["y"].square().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_state_dict_round_trip(model, structures):
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = _model(seed=123)
    fresh.load_state_dict(torch.load(buffer))
    fresh.eval()
    for form in FORMS:
        batch = _batch(structures, form)
        torch.testing.assert_close(model(batch)["y"], fresh(batch)["y"])


@pytest.mark.parametrize("form", FORMS)
def test_tiny_overfit(structures, form):
    net = _model(n_outputs=1).train()
    batch = _batch(structures, form)
    target = torch.linspace(-1, 1, len(structures))[:, None]
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(batch)["y"], target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], losses[::10]


def test_rejects_unknown_element(structures):
    net = _model(max_atomic_number=10).eval()
    with pytest.raises(ValueError, match="max_atomic_number"):
        net(_batch([structures[2]], "adjacency_list"))


@pytest.mark.parametrize("form", FORMS)
def test_force_loss_trains_parameters(structures, form):
    """Energy+forces training differentiates the forces again (double backward)."""
    net = _model(n_outputs=1, readout="sum").train()
    batch = _batch(structures, form)
    batch["positions"].requires_grad_(True)
    energy = net(batch)["y"][:, 0].sum()
    (grad,) = torch.autograd.grad(energy, batch["positions"], create_graph=True)
    forces = -batch.flat_atoms(grad)
    forces.square().mean().backward()
    assert torch.isfinite(forces).all()
    for name, p in net.named_parameters():
        if name == "head.3.bias":  # the last bias shifts the energy, not the forces
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
