"""Behaviour of the CGCNN model on both batch forms (list and matrix)."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.adjacency_matrix import AdjacencyMatrix
from molplat.structure import Structure
from molplat_cgcnn.model import CGCNN

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


def _energy_and_forces(net, structure, form, dtype=torch.float64):
    batch = _batch([structure], form, dtype)
    batch["positions"].requires_grad_(True)
    energy = net(batch)["y"][:, 0].sum()
    (grad,) = torch.autograd.grad(energy, batch["positions"])
    return energy.detach(), -batch.flat_atoms(grad)


def test_energy_continuous_at_cutoff():
    net = _model(readout="sum").double().eval()
    energies = []
    for r in (CUTOFF - 1e-4, CUTOFF + 1e-4):
        dimer = Structure([6, 8], [[0, 0, 0], [r, 0, 0]])
        energies.append(net(_batch([dimer], "adjacency_list", torch.float64, cutoff=CUTOFF + 1))["y"])
    torch.testing.assert_close(energies[0], energies[1], atol=1e-7, rtol=0)


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
