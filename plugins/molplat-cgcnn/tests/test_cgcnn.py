"""Behaviour of the CGCNN model on both batch forms (list and matrix)."""
from __future__ import annotations

import pytest
import torch
from ase.build import bulk, molecule

from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.adjacency_matrix import AdjacencyMatrix
from molplat.representations.batch import Batch
from molplat.models import Head, Heads
from molplat.structure import Structure
from molplat_cgcnn.model import CGCNN

CUTOFF = 4.0
FORMS = ("adjacency_list", "adjacency_matrix")


def _representation(form: str, cutoff: float = CUTOFF):
    return AdjacencyList(cutoff=cutoff) if form == "adjacency_list" else AdjacencyMatrix(cutoff=cutoff)


def _batch(structures, form, dtype=torch.float32, cutoff=CUTOFF):
    """A batch as training sees it: representations collate in float64, the core casts once."""
    rep = _representation(form, cutoff)
    batch = rep.collate([rep.featurize(s) for s in structures])
    return Batch({k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                  for k, v in batch.items()})


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


# -- energy+forces runs: per-structure normalisation --------------------------------------------------
FORCES = Heads.single("energy", forces=True)


def _copper(rattle_seed: int = 3) -> Structure:
    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    cu.rattle(0.05, seed=rattle_seed)
    return Structure.from_atoms(cu)


def _train_mode_forces(net, structures, form):
    batch = _batch(structures, form, torch.float64)
    batch["positions"].requires_grad_(True)
    energies = net(batch)["y"][:, 0]
    (grad,) = torch.autograd.grad(energies.sum(), batch["positions"])
    return energies.detach(), -batch.flat_atoms(grad)


@pytest.mark.parametrize("form", FORMS)
def test_forces_mode_keeps_each_structure_to_itself_in_training(structures, form):
    """The same Cu crystal next to different structures, in train mode: same energy and forces."""
    cu = _copper()
    net = _model(readout="sum", heads=FORCES).double().train()
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules())
    alone_e, alone_f = _train_mode_forces(net, [cu], form)
    for neighbours in ([structures[0], structures[2]], [structures[3]], [structures[4], structures[1]]):
        energies, forces = _train_mode_forces(net, [*neighbours, cu], form)
        torch.testing.assert_close(energies[-1:], alone_e, atol=1e-6, rtol=0)
        torch.testing.assert_close(forces[-len(cu):], alone_f, atol=1e-6, rtol=0)
    assert alone_f.abs().max() > 1e-3  # a rattled crystal feels forces: the comparison means something


def test_property_mode_keeps_the_papers_batch_norm(structures):
    """Without forces the model is the paper's: batch norm, whose training statistics couple the batch."""
    cu = _copper()
    net = _model(readout="sum").double().train()
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules()) == 2
    _, alone = _train_mode_forces(net, [cu], "adjacency_list")
    _, batched = _train_mode_forces(net, [structures[3], cu], "adjacency_list")
    assert (batched[-len(cu):] - alone).abs().max() > 1e-3
    assert _model(heads=Heads.single("gap")).state_dict().keys() == net.state_dict().keys()


@pytest.mark.parametrize("form", FORMS)
def test_forces_mode_forces_are_minus_the_energy_gradient(structures, form):
    net = _model(readout="sum", heads=FORCES).double().train()
    nacl = structures[3]
    energy, forces = _train_mode_forces(net, [nacl], form)
    h = 1e-5
    for atom, axis in ((0, 0), (1, 2)):
        shifted = []
        for sign in (1, -1):
            positions = nacl.positions.copy()
            positions[atom, axis] += sign * h
            moved = Structure(nacl.numbers, positions, cell=nacl.cell, pbc=nacl.pbc)
            with torch.no_grad():
                shifted.append(float(net(_batch([moved], form, torch.float64))["y"][0, 0]))
        assert float(forces[atom, axis]) == pytest.approx(-(shifted[0] - shifted[1]) / (2 * h), rel=1e-5, abs=1e-7)


def test_forces_mode_energy_is_continuous_at_the_cutoff():
    """A lone neighbour leaving the cutoff: the layer norm sits after the residual sum, so it never
    sees vanishing messages and the energy stays flat across the cutoff."""
    net = _model(readout="sum", heads=FORCES).double().train()
    energies = []
    for r in (CUTOFF - 1e-4, CUTOFF + 1e-4):
        dimer = Structure([6, 8], [[0, 0, 0], [r, 0, 0]])
        energies.append(net(_batch([dimer], "adjacency_list", torch.float64, cutoff=CUTOFF + 1))["y"])
    torch.testing.assert_close(energies[0], energies[1], atol=1e-7, rtol=0)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_forces_mode_list_and_matrix_agree(structures, mode):
    net = _model(readout="sum", heads=FORCES).train(mode == "train")
    a = net(_batch(structures, "adjacency_list"))
    b = net(_batch(structures, "adjacency_matrix"))
    for key in ("y", "atom_embedding", "graph_embedding"):
        torch.testing.assert_close(a[key], b[key], atol=2e-5, rtol=1e-4)


# -- per-atom targets ---------------------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS)
def test_per_atom_outputs(structures, form):
    heads = Heads((Head("gap"), Head("charge", level="atom")))
    net = _warm_batchnorm(_model(n_outputs=1, n_atom_outputs=1, heads=heads), structures)
    out = net(_batch(structures, form))
    assert out["atom_y"].shape == (sum(len(s) for s in structures), 1) and torch.isfinite(out["atom_y"]).all()
    alone = torch.cat([net(_batch([s], form))["atom_y"] for s in structures])
    torch.testing.assert_close(out["atom_y"], alone, atol=2e-5, rtol=1e-4)  # eval mode: per structure
    assert "atom_y" not in _model().eval()(_batch(structures[:1], form))


def test_settings_are_bounded_like_the_representations_they_read():
    from molplat.plugins import PluginManager

    from molplat_cgcnn import plugin

    (spec,) = plugin.molplat_models()
    assert all(s.bounded for s in spec.settings)
    representations = PluginManager().components("representation")
    for name in spec.accepts:
        assert spec.setting("cutoff").maximum == representations[name].setting("cutoff").maximum
    assert spec.setting("max_atomic_number").maximum == 118
    assert "atom_property" in spec.outputs
