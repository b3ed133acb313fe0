"""MEGNet: the global state, readouts, crystals, smoothness at the cutoff, per-atom targets, settings."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import molplat
from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.batch import Batch
from molplat.structure import Structure
from molplat_megnet.model import MEGNet

CUTOFF = 4.0
SMALL = dict(atom_features=8, hidden_channels=24, block_channels=12, set2set_channels=8, num_blocks=2,
             set2set_steps=2, num_gaussians=16, cutoff=CUTOFF)


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
    return Structure(rng.choice([1, 6, 7, 8], size=n), rng.uniform(-2.0, 2.0, size=(n, 3)), id=f"mol{n}")


def rocksalt(rng: np.random.Generator, rattle: float = 0.05) -> Structure:
    """A rattled, sheared NaCl-like cell: most neighbours are periodic images."""
    a = 3.0
    cell = np.array([[a, 0.0, 0.0], [0.3, a, 0.0], [0.2, 0.1, a]])
    positions = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]) @ cell + rng.normal(scale=rattle, size=(2, 3))
    return Structure([11, 17], positions, cell=cell, pbc=True, id="NaCl")


def collate(structures: list[Structure], dtype=torch.float64, cutoff: float = CUTOFF) -> Batch:
    """A batch as training sees it: representations collate in float64, the core casts once."""
    rep = AdjacencyList(cutoff=cutoff)
    batch = rep.collate([rep.featurize(s) for s in structures])
    return Batch({k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                  for k, v in batch.items()})


def build(seed: int = 0, **settings) -> MEGNet:
    torch.manual_seed(seed)
    return MEGNet(**{"n_outputs": 2, **SMALL, **settings}).double().eval()


def predict(model: MEGNet, structures: list[Structure], **kw) -> torch.Tensor:
    with torch.no_grad():
        return model(collate(structures, **kw))["y"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second thread only adds overhead (and stalls on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- the global state ---------------------------------------------------------------------------------
@pytest.mark.parametrize("readout", ["set2set", "sum", "mean"])
def test_the_initial_state_changes_every_output(readout):
    model = build(readout=readout, n_atom_outputs=1)
    structures = [water(), ethanol(), rocksalt(np.random.default_rng(0))]
    with torch.no_grad():
        before = model(collate(structures))
        model.initial_state.add_(torch.tensor([0.7, -1.3], dtype=torch.float64))
        after = model(collate(structures))
    for key in ("y", "atom_y", "atom_embedding", "graph_embedding"):
        assert (after[key] - before[key]).abs().min() > 1e-6, key  # every structure, atom and column moves


def test_the_state_is_updated_from_each_structure():
    """The state starts equal everywhere; after the blocks it carries each structure's own summary."""
    model = build()
    with torch.no_grad():
        out = model(collate([water(), ethanol()]))
    state = out["graph_embedding"][:, -SMALL["block_channels"]:]
    assert (state[0] - state[1]).abs().max() > 1e-3


def test_gradients_reach_the_initial_state():
    model = build().train()
    model(collate([water(), ethanol()]))["y"].sum().backward()
    assert model.initial_state.grad is not None and model.initial_state.grad.abs().sum() > 0


# -- readouts -----------------------------------------------------------------------------------------
def test_mean_readout_is_the_sum_over_atoms_divided_by_their_number():
    summed, mean = build(readout="sum"), build(readout="mean")
    mean.load_state_dict(summed.state_dict())
    structures = [water(), ethanol()]
    ratio = predict(summed, structures) / predict(mean, structures)
    torch.testing.assert_close(ratio, torch.tensor([[3.0, 3.0], [9.0, 9.0]], dtype=torch.float64))


def test_set2set_readout_is_a_separate_architecture():
    assert {"atom_set2set", "edge_set2set"} <= {name.split(".")[0] for name, _ in build().named_parameters()}
    assert not any(name.startswith(("atom_set2set", "edge_set2set")) for name, _ in build(readout="sum").named_parameters())


@pytest.mark.parametrize("readout,factor", [("set2set", 1.0), ("mean", 1.0), ("sum", 8.0)])
def test_a_supercell_is_the_same_crystal(readout, factor):
    """Every average (and Set2Set's attention) is per atom or per edge: replicating the cell 2x2x2
    leaves intensive readouts unchanged and multiplies the sum by 8."""
    crystal = rocksalt(np.random.default_rng(3))
    frac = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)], dtype=float)
    positions = (crystal.positions[None, :, :] + (frac @ crystal.cell)[:, None, :]).reshape(-1, 3)
    supercell = Structure(np.tile(crystal.numbers, 8), positions, cell=2 * crystal.cell, pbc=True)
    model = build(readout=readout)
    torch.testing.assert_close(predict(model, [supercell]), factor * predict(model, [crystal]), rtol=1e-9, atol=1e-9)


# -- crystals -----------------------------------------------------------------------------------------
def test_a_periodic_crystal_is_invariant_to_rotating_cell_and_positions():
    rng = np.random.default_rng(4)
    crystal = rocksalt(rng)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotated = Structure(crystal.numbers, crystal.positions @ q.T, cell=crystal.cell @ q.T, pbc=True)
    shifted = Structure(crystal.numbers, crystal.positions + [0.4, -1.1, 2.3], cell=crystal.cell, pbc=True)
    model = build(n_atom_outputs=1)
    with torch.no_grad():
        reference = model(collate([crystal]))
        for moved in (rotated, shifted):
            out = model(collate([moved]))
            torch.testing.assert_close(out["y"], reference["y"], rtol=1e-9, atol=1e-9)
            torch.testing.assert_close(out["atom_y"], reference["atom_y"], rtol=1e-9, atol=1e-9)


def test_crystal_forces_are_minus_the_energy_gradient_and_sum_to_zero():
    crystal = rocksalt(np.random.default_rng(5), rattle=0.3)
    model = build(readout="sum", n_outputs=1)
    batch = collate([crystal])
    batch.positions.requires_grad_(True)
    (grad,) = torch.autograd.grad(model(batch)["y"].sum(), batch.positions)
    forces = -grad
    assert forces.abs().max() > 1e-5  # a rattled crystal feels forces
    torch.testing.assert_close(forces.sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-10, rtol=0)
    h = 1e-5
    for axis in range(3):
        energies = []
        for sign in (1, -1):
            positions = crystal.positions.copy()
            positions[1, axis] += sign * h
            moved = Structure(crystal.numbers, positions, cell=crystal.cell, pbc=True)
            energies.append(float(predict(model, [moved])[0, 0]))
        assert float(forces[1, axis]) == pytest.approx(-(energies[0] - energies[1]) / (2 * h), rel=1e-5, abs=1e-10)


# -- the cutoff ---------------------------------------------------------------------------------------
def dimer(r: float) -> Structure:
    return Structure([6, 8], [[0.0, 0.0, 0.0], [r, 0.0, 0.0]])


@pytest.mark.parametrize("readout", ["set2set", "sum"])
def test_energy_and_forces_fade_smoothly_as_the_last_neighbour_leaves(readout):
    """An isolated pair: its atoms lose their only edges at the cutoff. The energy must reach the
    two lone atoms' energy continuously, and the force must go to zero."""
    model = build(readout=readout, n_outputs=1)
    apart = predict(model, [dimer(CUTOFF + 0.5)], cutoff=CUTOFF + 1)
    for gap in (1e-2, 1e-3, 1e-4):
        batch = collate([dimer(CUTOFF - gap)], cutoff=CUTOFF + 1)
        batch.positions.requires_grad_(True)
        energy = model(batch)["y"].sum()
        (grad,) = torch.autograd.grad(energy, batch.positions)
        assert abs(float(energy) - float(apart.sum())) < 50 * gap**2, gap  # cosine envelope: quadratic approach
        assert grad.abs().max() < 50 * gap, gap


def test_edges_between_the_models_and_the_representations_cutoff_count_for_nothing():
    """A longer neighbour list than the model's cutoff gives the same predictions (dead edges carry
    zero weight everywhere, the Set2Set attention included)."""
    structures = [ethanol(), rocksalt(np.random.default_rng(6)), random_molecule(np.random.default_rng(7), 6)]
    model = build(n_atom_outputs=1)
    with torch.no_grad():
        exact, longer = model(collate(structures)), model(collate(structures, cutoff=CUTOFF + 1.5))
    for key in ("y", "atom_y", "atom_embedding", "graph_embedding"):
        torch.testing.assert_close(longer[key], exact[key], rtol=1e-10, atol=1e-10)


def test_a_lone_atom_has_a_finite_prediction():
    model = build(n_atom_outputs=1)
    with torch.no_grad():
        out = model(collate([Structure([8], [[0.0, 0.0, 0.0]]), water()]))
    assert torch.isfinite(out["y"]).all() and torch.isfinite(out["atom_y"]).all()


# -- per-atom targets ---------------------------------------------------------------------------------
def test_per_atom_head_only_when_asked_for():
    plain = build()
    assert plain.atom_head is None and "atom_y" not in plain(collate([water()]))
    model = build(n_atom_outputs=2)
    structures = [water(), ethanol()]
    with torch.no_grad():
        out = model(collate(structures))
        alone = model(collate([ethanol()]))
    assert out["atom_y"].shape == (12, 2)
    torch.testing.assert_close(alone["atom_y"], out["atom_y"][3:], rtol=1e-10, atol=1e-10)


def test_per_atom_outputs_follow_the_atoms():
    rng = np.random.default_rng(2)
    model = build(n_atom_outputs=1)
    molecule = ethanol()
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    permutation = rng.permutation(len(molecule))
    moved = molecule.transformed(rotation=q, translation=[1.0, -2.0, 0.5], permutation=permutation)
    with torch.no_grad():
        reference = model(collate([molecule]))["atom_y"]
        torch.testing.assert_close(model(collate([moved]))["atom_y"], reference[permutation])


# -- learning -----------------------------------------------------------------------------------------
def test_overfits_a_handful_of_molecules_and_crystals():
    rng = np.random.default_rng(7)
    structures = [random_molecule(rng, n) for n in (4, 5, 6, 7)] + [rocksalt(rng), ethanol()]
    batch = collate(structures, torch.float32)
    targets = torch.from_numpy(rng.normal(size=(len(structures), 1)).astype(np.float32))
    torch.manual_seed(6)
    model = MEGNet(n_outputs=1, **SMALL)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(120):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch)["y"], targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0], losses[::20]


# -- settings -----------------------------------------------------------------------------------------
def test_settings_are_bounded_like_the_representations_they_read():
    from molplat.plugins import PluginManager

    from molplat_megnet import plugin

    (spec,) = plugin.molplat_models()
    assert all(s.bounded for s in spec.settings)
    representation = PluginManager().components("representation")["adjacency_list"]
    assert spec.setting("cutoff").maximum == representation.setting("cutoff").maximum
    assert spec.setting("max_atomic_number").maximum == 118
    assert spec.setting("readout").default == "set2set"
    assert "atom_property" in spec.outputs


@pytest.mark.parametrize("bad,message", [
    ({"readout": "max"}, "readout"),
    ({"num_blocks": 0}, "num_blocks"),
    ({"cutoff": -1.0}, "cutoff"),
    ({"gaussian_width": 0.0}, "gaussian_width"),
    ({"block_channels": 1.5}, "block_channels"),
    ({"hidden": 8}, "hidden"),
])
def test_bad_settings_are_refused_before_anything_runs(bad, message, tmp_path):
    with pytest.raises(molplat.MolplatError, match=message):
        molplat.load_pipeline({
            "dataset": {"name": "qm9", "target": "gap"},
            "representation": {"name": "adjacency_list", "cutoff": 4.0},
            "model": {"name": "megnet", **bad},
            "output": {"dir": str(tmp_path)},
        })


def test_the_class_refuses_bad_values_too():
    with pytest.raises(ValueError, match="readout"):
        MEGNet(readout="max")
    with pytest.raises(ValueError, match="num_blocks"):
        MEGNet(num_blocks=0)
