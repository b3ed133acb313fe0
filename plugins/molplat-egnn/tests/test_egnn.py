"""EGNN: the paper's equations, equivariance of the updated coordinates and of forces,
invariance of the outputs, periodic images, smoothness and clear errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import molplat
from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.batch import Batch
from molplat.structure import Structure
from molplat_egnn.model import EGNN

CUTOFF = 4.0
SMALL = dict(hidden_channels=16, num_layers=3, num_radial=8, cutoff=CUTOFF)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second thread only adds overhead."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def ethanol() -> Structure:
    return Structure(
        [6, 6, 8, 1, 1, 1, 1, 1, 1],
        [[-0.048, 0.55, 0.0], [-1.23, -0.41, 0.0], [1.18, -0.23, 0.0], [-0.08, 1.19, 0.89],
         [-0.08, 1.19, -0.89], [-2.17, 0.15, 0.0], [-1.2, -1.05, 0.88], [-1.2, -1.05, -0.88],
         [1.94, 0.38, 0.0]],
        id="ethanol",
    )


def rocksalt(rng: np.random.Generator) -> Structure:
    """A rattled, sheared two-atom cell: most neighbours are periodic images."""
    a = 3.0
    cell = np.array([[a, 0.0, 0.0], [0.3, a, 0.0], [0.2, 0.1, a]])
    positions = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]) @ cell + rng.normal(scale=0.05, size=(2, 3))
    return Structure([11, 17], positions, cell=cell, pbc=True, id="NaCl")


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def collate(structures: list[Structure], cutoff: float = CUTOFF) -> Batch:
    rep = AdjacencyList(cutoff=cutoff)
    return rep.collate([rep.featurize(s) for s in structures])


def build(seed: int = 0, **settings) -> EGNN:
    torch.manual_seed(seed)
    model = EGNN(n_outputs=1, **{**SMALL, "attention": True, **settings}).double().eval()
    # The coordinate networks start near zero (as in the authors' code); scale them up so that the
    # coordinates really move and the equivariance tests have something to check.
    for layer in model.layers:
        if layer.coord_mlp is not None:
            torch.nn.init.normal_(layer.coord_mlp[-1].weight, std=1.0)
    return model


def coordinates(model: EGNN, structures: list[Structure]) -> torch.Tensor:
    with torch.no_grad():
        return model.embed(collate(structures))[1]


def energy_and_forces(model: EGNN, structures: list[Structure]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = collate(structures)
    batch.positions.requires_grad_(True)
    energy = model(batch)["y"][:, 0]
    (grad,) = torch.autograd.grad(energy.sum(), batch.positions)
    return energy.detach(), -grad


# -- the paper's equations --------------------------------------------------------------------------
def dense_reference(model: EGNN, structure: Structure) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs. 3-6 of the paper on the fully connected molecule, with dense [N, N] tensors and no
    neighbour list: the sparse model must compute the same h and x when every pair is in the cutoff."""
    x = torch.from_numpy(structure.positions)
    n = len(structure)
    d0 = torch.cdist(x, x)
    off_diagonal = ~torch.eye(n, dtype=torch.bool)
    envelope = (0.5 * (torch.cos(math.pi * d0 / model.cutoff) + 1.0) * off_diagonal)[..., None]
    radial = torch.exp(model.radial.coeff * (d0[..., None] - model.radial.offset) ** 2)
    h = model.embedding(torch.from_numpy(structure.numbers))
    for layer in model.layers:
        diff = x[:, None, :] - x[None, :, :]  # [i, j] = x_i - x_j
        d2 = (diff**2).sum(-1, keepdim=True) / model.cutoff**2
        pair = torch.cat([h[:, None].expand(n, n, -1), h[None, :].expand(n, n, -1), d2, radial], -1)
        m = layer.edge_mlp(pair) * envelope
        m = m * torch.sigmoid(layer.attention(m))
        if layer.coord_mlp is not None:
            x = x + model.neighbor_scale * (diff * torch.tanh(layer.coord_mlp(m)) * envelope).sum(1)
        h = h + layer.node_mlp(torch.cat([h, m.sum(1)], -1))
    return h, x


def test_matches_the_papers_equations_written_densely():
    model = build(cutoff=6.0)
    model.neighbor_scale = 0.25
    molecule = ethanol()
    pairs = molecule.positions[:, None] - molecule.positions[None]
    assert np.linalg.norm(pairs, axis=-1).max() < 6.0  # every pair within the cutoff: the graph is complete
    with torch.no_grad():
        h, x = model.embed(collate([molecule], cutoff=6.0))
        h_ref, x_ref = dense_reference(model, molecule)
    torch.testing.assert_close(x, x_ref)
    torch.testing.assert_close(h, h_ref)
    assert (x - torch.from_numpy(molecule.positions)).abs().max() > 1e-3  # the coordinates did move


# -- equivariance and invariance ---------------------------------------------------------------------
@pytest.mark.parametrize("periodic", [False, True], ids=["molecule", "crystal"])
def test_updated_coordinates_are_equivariant(periodic):
    """x'(R x + t) = R x'(x) + t, for a molecule and for a crystal (whose cell rotates too)."""
    rng = np.random.default_rng(0)
    model = build()
    structure = rocksalt(rng) if periodic else ethanol()
    rotation, translation = random_rotation(rng), rng.normal(scale=2.0, size=3)
    x = coordinates(model, [structure])
    moved = coordinates(model, [structure.transformed(rotation=rotation, translation=translation)])
    torch.testing.assert_close(moved, x @ torch.from_numpy(rotation.T) + torch.from_numpy(translation))
    assert (x - torch.from_numpy(structure.positions)).abs().max() > 1e-3


def test_updated_coordinates_follow_a_permutation_and_a_lattice_shift():
    rng = np.random.default_rng(1)
    model = build()
    crystal = rocksalt(rng)
    x = coordinates(model, [crystal])
    order = np.array([1, 0])
    torch.testing.assert_close(coordinates(model, [crystal.transformed(permutation=order)]), x[order])
    lattice = crystal.cell[0] - crystal.cell[2]
    positions = crystal.positions.copy()
    positions[1] += lattice  # the same crystal: the atom's image moved, and with it its updated coordinate
    shifted = Structure(crystal.numbers, positions, crystal.cell, crystal.pbc, id="shifted")
    want = x.clone()
    want[1] += torch.from_numpy(lattice)
    torch.testing.assert_close(coordinates(model, [shifted]), want)


def test_coordinates_stay_put_without_updates():
    model = build(update_coords=False)
    assert all(layer.coord_mlp is None for layer in model.layers)
    molecule = ethanol()
    assert torch.equal(coordinates(model, [molecule]), torch.from_numpy(molecule.positions))


def test_only_layers_whose_coordinates_are_read_update_them():
    model = build(num_layers=3)
    assert [layer.coord_mlp is not None for layer in model.layers] == [True, True, False]


@pytest.mark.parametrize("update_coords", [True, False])
def test_forces_rotate_and_outputs_are_invariant(update_coords):
    rng = np.random.default_rng(2)
    model = build(update_coords=update_coords, n_atom_outputs=1)
    structures = [ethanol(), rocksalt(rng)]
    energy, forces = energy_and_forces(model, structures)
    rotation = random_rotation(rng)
    moved = [s.transformed(rotation=rotation, translation=rng.normal(size=3)) for s in structures]
    moved_energy, moved_forces = energy_and_forces(model, moved)
    torch.testing.assert_close(moved_energy, energy)
    torch.testing.assert_close(moved_forces, forces @ torch.from_numpy(rotation.T))
    with torch.no_grad():
        out, moved_out = model(collate(structures)), model(collate(moved))
    for key in ("atom_y", "atom_embedding", "graph_embedding"):
        torch.testing.assert_close(moved_out[key], out[key])
    assert forces.abs().max() > 1e-6


def test_forces_match_finite_differences_with_coordinate_updates():
    rng = np.random.default_rng(3)
    model = build()
    crystal = rocksalt(rng)
    _, forces = energy_and_forces(model, [crystal])
    h = 1e-5
    for atom, axis in ((0, 0), (1, 2)):
        energies = []
        for sign in (1, -1):
            positions = crystal.positions.copy()
            positions[atom, axis] += sign * h
            moved = Structure(crystal.numbers, positions, crystal.cell, crystal.pbc)
            energies.append(energy_and_forces(model, [moved])[0].item())
        assert forces[atom, axis].item() == pytest.approx(-(energies[0] - energies[1]) / (2 * h), rel=1e-5, abs=1e-7)


def test_energy_and_forces_smooth_across_the_cutoff():
    """An atom crossing the cutoff sphere: energy and forces change continuously, also after
    coordinate updates have moved the pair (the envelope reads the input distance)."""
    model = build()
    energies, forces = [], []
    for d in np.linspace(CUTOFF - 1e-3, CUTOFF + 1e-3, 5):
        structure = Structure([6, 1, 8], [[0.0, 0.0, 0.0], [-0.6, 0.9, 0.0], [d, 0.0, 0.0]])
        energy, force = energy_and_forces(model, [structure])
        energies.append(energy.item())
        forces.append(force)
    assert max(abs(a - b) for a, b in zip(energies, energies[1:])) < 1e-8
    assert max(float((a - b).abs().max()) for a, b in zip(forces, forces[1:])) < 1e-5


# -- readout, settings and learning ------------------------------------------------------------------
def test_mean_readout_is_sum_over_atoms():
    torch.manual_seed(1)
    summed = build(readout="sum")
    mean = build(readout="mean")
    mean.load_state_dict(summed.state_dict())
    structures = [ethanol(), rocksalt(np.random.default_rng(4))]
    with torch.no_grad():
        ratio = summed(collate(structures))["y"] / mean(collate(structures))["y"]
    torch.testing.assert_close(ratio.squeeze(-1), torch.tensor([9.0, 2.0], dtype=torch.float64))


def test_neighbour_scale_comes_from_the_training_statistics():
    from types import SimpleNamespace

    assert EGNN(**SMALL).neighbor_scale == 1.0
    assert EGNN(**SMALL, statistics=SimpleNamespace(avg_num_neighbors=16.0)).neighbor_scale == 1 / 16


@pytest.mark.parametrize("settings, message", [
    ({"readout": "max"}, "readout must be 'sum' or 'mean'"),
    ({"num_radial": 1}, "num_radial must be 0"),
    ({"num_layers": 0}, "num_layers must be at least 1"),
])
def test_bad_settings_are_clear_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        EGNN(**{**SMALL, **settings})


@pytest.mark.parametrize("model, message", [
    ({"num_radial": 1}, "num_radial must be 0"),
    ({"readout": "max"}, "readout"),
    ({"hidden_channels": 0}, "hidden_channels"),
    ({"cutoff": 6.0}, "cutoff"),
])
def test_bad_pipeline_settings_are_one_line(tmp_path, model, message):
    pipeline = {
        "dataset": {"name": "qm9", "target": "homo", "cache_dir": str(tmp_path)},
        "representation": {"name": "adjacency_list", "cutoff": 5.0},
        "model": {"name": "egnn", "cutoff": 4.0, **model},
        "output": {"dir": str(tmp_path)},
    }
    with pytest.raises(molplat.ValidationError, match=message) as error:
        molplat.load_pipeline(pipeline)
    assert "\n" not in str(error.value).strip() or "[model]" in str(error.value)


def test_overfits_a_handful_of_structures():
    torch.manual_seed(6)
    rng = np.random.default_rng(7)
    structures = [Structure(rng.choice([1, 6, 8], size=n), rng.uniform(-1.5, 1.5, size=(n, 3))) for n in (3, 4, 5, 6)]
    structures.append(rocksalt(rng))
    batch = collate(structures)
    batch = Batch({k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in batch.items()})
    targets = torch.from_numpy(rng.normal(size=(len(structures), 1)).astype(np.float32))
    model = EGNN(n_outputs=1, **SMALL)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch)["y"], targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
