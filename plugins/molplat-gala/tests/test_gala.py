"""Gala: equivariance of its vectors and forces, invariances, padding, the cutoff, crystals, settings."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from molplat.representations.batch import Batch
from molplat.representations.point_cloud import PointCloud
from molplat.structure import Structure
from molplat_gala.model import Gala

SMALL = dict(hidden_channels=12, num_layers=2, dilation=1.0)


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
    """A rattled, sheared NaCl-like cell whose neighbours are mostly periodic images."""
    a = 3.0
    cell = np.array([[a, 0.0, 0.0], [0.3, a, 0.0], [0.2, 0.1, a]])
    positions = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]) @ cell + rng.normal(scale=0.05, size=(2, 3))
    return Structure([11, 17], positions, cell=cell, pbc=True, id="NaCl")


def rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def collate(structures: list[Structure], dtype=torch.float64) -> Batch:
    rep = PointCloud()
    batch = rep.collate([rep.featurize(s) for s in structures])
    return Batch({k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                  for k, v in batch.items()})


def run(model: Gala, structures: list[Structure], forces: bool = False) -> dict[str, torch.Tensor]:
    """Outputs in float64; with ``forces``, also minus the gradient of y[:, 0] ([atoms, 3])."""
    batch = collate(structures)
    batch.positions.requires_grad_(forces)
    out = model(batch)
    if forces:
        (grad,) = torch.autograd.grad(out["y"][:, 0].sum(), batch.positions)
        out["forces"] = batch.flat_atoms(-grad)
    return {k: v.detach() for k, v in out.items()}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second thread only adds overhead (20x on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build(seed: int = 0, **settings) -> Gala:
    torch.manual_seed(seed)
    return Gala(n_outputs=2, **{**SMALL, **settings}).double().eval()


MODES = [dict(rank=2), dict(rank=1), dict(rank=2, cutoff=2.5)]
IDS = ["rank2-global", "rank1-global", "rank2-cutoff"]


# -- symmetry -----------------------------------------------------------------------------------
@pytest.mark.parametrize("settings", MODES, ids=IDS)
def test_vectors_and_forces_rotate_with_the_molecule(settings):
    """v(Rx) = R v(x) for the per-atom vectors, F(Rx) = R F(x) for the forces; y does not change."""
    model = build(1, **settings)
    rng = np.random.default_rng(0)
    molecules = [water(), ethanol()]
    before = run(model, molecules, forces=True)
    assert before["atom_vectors"].shape == (12, 3) and before["atom_vectors"].abs().max() > 1e-6
    q = rotation(rng)
    after = run(model, [m.transformed(rotation=q, translation=rng.normal(size=3)) for m in molecules], forces=True)
    rot = torch.from_numpy(q)
    torch.testing.assert_close(after["y"], before["y"], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(after["atom_vectors"], before["atom_vectors"] @ rot.T, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(after["forces"], before["forces"] @ rot.T, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("settings", MODES, ids=IDS)
def test_permuting_atoms_permutes_every_per_atom_output(settings):
    model = Gala(n_outputs=1, n_atom_outputs=2, **{**SMALL, **settings}).double().eval()
    rng = np.random.default_rng(3)
    molecule = ethanol()
    order = rng.permutation(len(molecule))
    before = run(model, [molecule], forces=True)
    after = run(model, [molecule.transformed(permutation=order)], forces=True)
    torch.testing.assert_close(after["y"], before["y"], rtol=1e-9, atol=1e-10)
    for key in ("atom_y", "atom_vectors", "forces", "atom_embedding"):
        torch.testing.assert_close(after[key], before[key][order], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("settings", MODES, ids=IDS)
def test_padding_atoms_change_nothing(settings, train):
    """Water alone, and padded to ethanol's size in a batch with it, gives the same outputs."""
    torch.manual_seed(2)
    model = Gala(n_outputs=2, n_atom_outputs=1, **{**SMALL, **settings}).double().train(train)
    alone = run(model, [water()], forces=True)
    together = run(model, [ethanol(), water()], forces=True)
    torch.testing.assert_close(together["y"][1:], alone["y"], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(together["graph_embedding"][1:], alone["graph_embedding"], rtol=1e-10, atol=1e-12)
    for key in ("atom_y", "atom_vectors", "forces", "atom_embedding"):
        torch.testing.assert_close(together[key][9:], alone[key], rtol=1e-10, atol=1e-12)


def test_energy_and_forces_are_continuous_at_the_cutoff():
    """An O pulled through the C's cutoff sphere: no jump in the energy or the forces."""
    cutoff = 2.5
    model = build(3, cutoff=cutoff)
    energies, forces = [], []
    for d in np.linspace(cutoff - 1e-4, cutoff + 1e-4, 5):
        out = run(model, [Structure([6, 1, 8], [[0, 0, 0], [-0.6, 0.9, 0.0], [d, 0, 0]])], forces=True)
        energies.append(out["y"][0, 0].item())
        forces.append(out["forces"])
    assert max(abs(a - b) for a, b in zip(energies, energies[1:])) < 1e-7
    assert max(float((a - b).abs().max()) for a, b in zip(forces, forces[1:])) < 1e-5
    # ... and the O does count inside the cutoff
    near = run(model, [Structure([6, 1, 8], [[0, 0, 0], [-0.6, 0.9, 0.0], [1.5, 0, 0]])])["y"]
    assert abs(near[0, 0].item() - energies[-1]) > 1e-4


def test_forces_are_minus_the_energy_gradient():
    model = build(4, cutoff=3.0)
    molecule = ethanol()
    out = run(model, [molecule], forces=True)
    h, atom = 1e-5, 2
    for axis in range(3):
        energies = []
        for sign in (1, -1):
            positions = molecule.positions.copy()
            positions[atom, axis] += sign * h
            energies.append(run(model, [Structure(molecule.numbers, positions)])["y"][0, 0].item())
        assert abs(-(energies[0] - energies[1]) / (2 * h) - out["forces"][atom, axis].item()) < 1e-6


def test_a_lone_atom_gets_finite_outputs():
    out = run(build(5, cutoff=2.0), [Structure([6], [[0.0, 0.0, 0.0]]), Structure([6, 8], [[0, 0, 0], [5.0, 0, 0]])],
              forces=True)
    assert all(torch.isfinite(v).all() for v in out.values())
    torch.testing.assert_close(out["atom_vectors"], torch.zeros(3, 3, dtype=torch.float64))


def test_mean_readout_divides_the_sum_by_the_atom_count():
    summed = build(6, readout="sum")
    mean = build(7, readout="mean")
    mean.load_state_dict(summed.state_dict())
    ratio = run(summed, [water(), ethanol()])["y"] / run(mean, [water(), ethanol()])["y"]
    torch.testing.assert_close(ratio, torch.tensor([[3.0, 3.0], [9.0, 9.0]], dtype=torch.float64))


def test_auto_readout_sums_extensive_heads_and_averages_the_others():
    from molplat.models import Head, Heads

    heads = Heads((Head("energy", extensive=True), Head("homo")))
    torch.manual_seed(8)
    auto = Gala(n_outputs=2, heads=heads, **SMALL).double().eval()
    summed = Gala(n_outputs=2, readout="sum", **SMALL).double().eval()
    summed.load_state_dict(auto.state_dict())
    structures = [water(), ethanol()]
    y, total = run(auto, structures)["y"], run(summed, structures)["y"]
    torch.testing.assert_close(y[:, 0], total[:, 0])
    torch.testing.assert_close(y[:, 1], total[:, 1] / torch.tensor([3.0, 9.0], dtype=torch.float64))


# -- crystals -----------------------------------------------------------------------------------
def test_crystals_need_a_cutoff():
    with pytest.raises(ValueError, match="cutoff"):
        build(0)(collate([rocksalt(np.random.default_rng(0))]))


def test_crystal_energy_is_extensive_and_periodic():
    """A 2x1x1 supercell has twice the energy of its cell (images found correctly), and moving one
    atom by a lattice vector or rotating the crystal changes nothing."""
    rng = np.random.default_rng(1)
    model = build(8, cutoff=3.5)
    cell = rocksalt(rng)
    base = run(model, [cell], forces=True)
    double_cell = cell.cell * np.array([[2.0], [1.0], [1.0]])
    supercell = Structure(np.tile(cell.numbers, 2), np.concatenate([cell.positions, cell.positions + cell.cell[0]]),
                          cell=double_cell, pbc=True)
    big = run(model, [supercell], forces=True)
    torch.testing.assert_close(big["y"], 2 * base["y"], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(big["forces"], torch.cat([base["forces"]] * 2), rtol=1e-8, atol=1e-9)
    positions = cell.positions.copy()
    positions[1] += cell.cell[0] - 2 * cell.cell[2]
    moved = run(model, [Structure(cell.numbers, positions, cell=cell.cell, pbc=True)], forces=True)
    torch.testing.assert_close(moved["y"], base["y"], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(moved["forces"], base["forces"], rtol=1e-8, atol=1e-9)
    q = rotation(rng)
    turned = run(model, [cell.transformed(rotation=q)], forces=True)
    torch.testing.assert_close(turned["y"], base["y"], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(turned["forces"], base["forces"] @ torch.from_numpy(q).T, rtol=1e-8, atol=1e-9)


def test_crystal_and_molecule_batch_independently():
    rng = np.random.default_rng(2)
    model = build(9, cutoff=3.0)
    crystal = rocksalt(rng)
    together = run(model, [ethanol(), crystal])["y"]
    torch.testing.assert_close(together[1:], run(model, [crystal])["y"], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(together[:1], run(model, [ethanol()])["y"], rtol=1e-10, atol=1e-12)


# -- settings -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, message", [
    (dict(readout="max"), "readout"), (dict(rank=3), "rank"), (dict(cutoff=-1.0), "cutoff"),
    (dict(hidden_channels=0), "hidden_channels"), (dict(dilation=0.0), "dilation"),
])
def test_bad_settings_are_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        Gala(**bad)


def test_settings_are_bounded_like_the_representation_they_read():
    from molplat.plugins import PluginManager
    from molplat.specs import MAX_CUTOFF

    from molplat_gala import plugin

    (spec,) = plugin.molplat_models()
    assert all(s.bounded for s in spec.settings)
    assert spec.accepts == ("point_cloud",) and "point_cloud" in PluginManager().components("representation")
    assert spec.setting("cutoff").maximum == MAX_CUTOFF and spec.setting("max_atomic_number").maximum == 118
    assert "atom_property" in spec.outputs and "forces" in spec.outputs


def test_pipeline_validation_names_a_bad_setting():
    import molplat

    with pytest.raises(molplat.MolplatError, match="rank"):
        molplat.load_pipeline({"dataset": {"name": "qm9", "target": "homo"},
                               "representation": {"name": "point_cloud"}, "model": {"name": "gala", "rank": 3}})


def test_overfits_a_handful_of_molecules():
    torch.manual_seed(6)
    rng = np.random.default_rng(7)
    structures = [Structure(rng.choice([1, 6, 7, 8], size=n), rng.uniform(-2, 2, size=(n, 3))) for n in (3, 4, 5, 6)]
    batch = collate(structures, torch.float32)
    targets = torch.from_numpy(rng.normal(size=(len(structures), 1)).astype(np.float32))
    model = Gala(n_outputs=1, **SMALL)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch)["y"], targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0], losses[::10]
