"""The equivariant transformer: equivariance of its vector features and forces, invariances,
forces against finite differences, smoothness at the cutoff, periodic crystals, per-atom
targets, bad settings, and a small overfit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import molplat
from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.batch import Batch
from molplat.structure import Structure
from molplat_torchmdnet.model import EquivariantTransformer

CUTOFF = 4.0
SMALL = dict(hidden_channels=16, num_layers=2, num_heads=2, num_rbf=8, cutoff=CUTOFF)


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
    """A rattled, sheared NaCl-like cell: every neighbour is a periodic image or comes through one."""
    a = 3.0
    cell = np.array([[a, 0.0, 0.0], [0.3, a, 0.0], [0.2, 0.1, a]])
    frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    positions = frac @ cell + rng.normal(scale=0.05, size=(2, 3))
    return Structure([11, 17], positions, cell=cell, pbc=True, id="NaCl")


def rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def collate(structures: list[Structure], dtype=torch.float64) -> Batch:
    """A batch as training sees it: representations collate in float64, the core casts once."""
    rep = AdjacencyList(cutoff=CUTOFF)
    batch = rep.collate([rep.featurize(s) for s in structures])
    return Batch({k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                  for k, v in batch.items()})


def build(seed: int = 0, **settings) -> EquivariantTransformer:
    """A float64 model whose biases are random, as after training: zero biases (the initial
    state) would hide terms that do not vanish at the cutoff, since SiLU(0) = 0."""
    torch.manual_seed(seed)
    model = EquivariantTransformer(**{"n_outputs": 1, **SMALL, **settings}).double().eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(std=0.5)
    return model


def energy_and_forces(model: EquivariantTransformer, structures: list[Structure]):
    batch = collate(structures)
    batch.positions.requires_grad_(True)
    energy = model(batch)["y"][:, 0]
    (grad,) = torch.autograd.grad(energy.sum(), batch.positions)
    return energy.detach(), -grad


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second thread only adds overhead (20x on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- symmetry -------------------------------------------------------------------------------------
@pytest.mark.parametrize("head", ["scalar", "gated"])
@pytest.mark.parametrize("structure", [ethanol(), rocksalt(np.random.default_rng(0))], ids=lambda s: s.id)
def test_vector_features_rotate_with_the_structure_channel_by_channel(head, structure):
    """vec(R pos) = R vec(pos) for each of the F channels; x(R pos) = x(pos)."""
    model = build(output_head=head, num_layers=3)
    rng = np.random.default_rng(1)
    with torch.no_grad():
        x, vec = model.features(collate([structure]))
        for _ in range(2):
            r = rotation(rng)
            x_rot, vec_rot = model.features(collate([structure.transformed(rotation=r)]))
            torch.testing.assert_close(x_rot, x, rtol=1e-9, atol=1e-10)
            want = torch.einsum("ab,nbf->naf", torch.from_numpy(r), vec)
            torch.testing.assert_close(vec_rot, want, rtol=1e-9, atol=1e-10)
    assert vec.shape == (len(structure), 3, SMALL["hidden_channels"])
    assert vec.abs().max() > 1e-3  # a real test: the vectors are not zero


def test_vector_features_flip_under_inversion():
    """vec is built from edge directions, so it is a polar vector: vec(-pos) = -vec(pos)."""
    model = build(output_head="gated")
    molecule = ethanol()
    with torch.no_grad():
        x, vec = model.features(collate([molecule]))
        x_inv, vec_inv = model.features(collate([molecule.transformed(rotation=-np.eye(3))]))
    torch.testing.assert_close(x_inv, x, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(vec_inv, -vec, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("head", ["scalar", "gated"])
def test_energy_invariant_and_forces_equivariant(head):
    """E(R pos + t) = E(pos), F(R pos + t) = R F(pos); a permutation permutes the forces."""
    model = build(output_head=head, n_atom_outputs=1)
    rng = np.random.default_rng(2)
    structures = [ethanol(), rocksalt(rng)]
    energy, forces = energy_and_forces(model, structures)
    assert forces.abs().max() > 1e-4
    r = rotation(rng)
    moved = [s.transformed(rotation=r, translation=rng.normal(scale=2.0, size=3)) for s in structures]
    moved_energy, moved_forces = energy_and_forces(model, moved)
    torch.testing.assert_close(moved_energy, energy, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(moved_forces, forces @ torch.from_numpy(r).T, rtol=1e-8, atol=1e-10)

    orders = [rng.permutation(len(s)) for s in structures]
    permuted = [s.transformed(permutation=p) for s, p in zip(structures, orders)]
    permuted_energy, permuted_forces = energy_and_forces(model, permuted)
    torch.testing.assert_close(permuted_energy, energy, rtol=1e-9, atol=1e-10)
    offsets = np.cumsum([0] + [len(s) for s in structures[:-1]])
    index = torch.from_numpy(np.concatenate([o + p for o, p in zip(offsets, orders)]))
    torch.testing.assert_close(permuted_forces, forces[index], rtol=1e-8, atol=1e-10)
    # per-atom outputs are invariant and follow the atoms
    with torch.no_grad():
        atom_y = model(collate(structures))["atom_y"]
        torch.testing.assert_close(model(collate(moved))["atom_y"], atom_y, rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(model(collate(permuted))["atom_y"], atom_y[index], rtol=1e-9, atol=1e-10)


# -- forces and smoothness ------------------------------------------------------------------------
@pytest.mark.parametrize("head", ["scalar", "gated"])
def test_forces_are_minus_the_energy_gradient_for_every_coordinate(head):
    """Central differences in float64 on every coordinate of a molecule and of a crystal."""
    model = build(output_head=head)
    for structure in (water(), rocksalt(np.random.default_rng(3))):
        _, forces = energy_and_forces(model, [structure])
        batch = collate([structure])
        h = 1e-5
        numeric = torch.zeros_like(forces)
        with torch.no_grad():
            for atom in range(len(structure)):
                for axis in range(3):
                    values = []
                    for sign in (1.0, -1.0):
                        moved = Batch(batch)
                        moved["positions"] = batch.positions.clone()
                        moved["positions"][atom, axis] += sign * h
                        values.append(float(model(moved)["y"].sum()))
                    numeric[atom, axis] = -(values[0] - values[1]) / (2 * h)
        torch.testing.assert_close(forces, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("head", ["scalar", "gated"])
def test_energy_and_forces_are_smooth_across_the_cutoff(head):
    """An O pulled through the cutoff sphere of a C: energy and forces change continuously,
    and just outside the model sees two separate atoms."""
    model = build(output_head=head)
    energies, forces = [], []
    for d in np.linspace(CUTOFF - 1e-4, CUTOFF + 1e-4, 5):
        e, f = energy_and_forces(model, [Structure([6, 8], [[0, 0, 0], [d, 0, 0]])])
        energies.append(float(e))
        forces.append(f)
    assert max(abs(a - b) for a, b in zip(energies, energies[1:])) < 1e-9
    # The cosine envelope has zero slope at the cutoff, so the force fades out like (rc - d):
    # 1e-4 Å inside it is tiny, and outside it is exactly zero.
    assert max(float(f.abs().max()) for f in forces) < 1e-3
    assert float(forces[-1].abs().max()) == 0.0
    inside, _ = energy_and_forces(model, [Structure([6, 8], [[0, 0, 0], [CUTOFF - 0.5, 0, 0]])])
    assert abs(float(inside) - energies[0]) > 1e-3  # the O does interact, well inside
    apart, _ = energy_and_forces(model, [Structure([6], [[0, 0, 0]]), Structure([8], [[0, 0, 0]])])
    assert abs(energies[-1] - float(apart.sum())) < 1e-12


# -- periodic crystals ----------------------------------------------------------------------------
def test_supercell_energy_is_the_sum_over_its_cells():
    """With readout sum, a 2x1x1 supercell holds exactly twice the energy of its cell: periodic
    images enter through edge_shift as ordinary neighbours."""
    model = build()
    cell = rocksalt(np.random.default_rng(4))
    doubled = Structure(np.tile(cell.numbers, 2), np.concatenate([cell.positions, cell.positions + cell.cell[0]]),
                        cell=cell.cell * np.array([[2.0], [1.0], [1.0]]), pbc=True, id="NaCl x2")
    energy, forces = energy_and_forces(model, [cell, doubled])
    torch.testing.assert_close(energy[1], 2 * energy[0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(forces[2:], forces[:2].repeat(2, 1), rtol=1e-8, atol=1e-10)


def test_mean_readout_divides_the_sum_by_the_atom_count():
    summed = build(seed=1, readout="sum")
    mean = build(seed=2, readout="mean")
    mean.load_state_dict(summed.state_dict())
    batch = collate([water(), ethanol()])
    with torch.no_grad():
        ratio = summed(batch)["y"] / mean(batch)["y"]
    torch.testing.assert_close(ratio.squeeze(-1), torch.tensor([3.0, 9.0], dtype=torch.float64))


# -- heads, layers and settings -------------------------------------------------------------------
def test_parameters_only_where_they_can_reach_the_output():
    scalar = build(num_layers=3)
    assert scalar.layers[0].vector_proj is None and not scalar.layers[0].vector_in
    assert scalar.layers[1].vector_in and scalar.layers[1].vector_out and not scalar.layers[2].vector_out
    gated = build(num_layers=3, output_head="gated")
    assert gated.layers[2].vector_out
    one = build(num_layers=1)
    with torch.no_grad():
        x, vec = one.features(collate([water()]))
    assert vec is None and x.shape == (3, SMALL["hidden_channels"])
    plain = build()
    assert plain.atom_output is None and "atom_y" not in plain(collate([water()]))
    assert not any(k.startswith("atom_output") for k in plain.state_dict())


def test_per_atom_predictions_do_not_depend_on_batch_neighbours():
    model = build(n_atom_outputs=2, output_head="gated")
    with torch.no_grad():
        together = model(collate([water(), ethanol()]))
        alone = model(collate([ethanol()]))
    assert together["atom_y"].shape == (12, 2)
    torch.testing.assert_close(alone["atom_y"], together["atom_y"][3:], rtol=1e-10, atol=1e-12)


def test_runs_under_bf16_autocast():
    """The CPU trainer's ``amp`` setting wraps the model in bf16 autocast."""
    torch.manual_seed(0)
    model = EquivariantTransformer(n_outputs=1, n_atom_outputs=1, output_head="gated", **SMALL).eval()
    batch = collate([water(), ethanol()], torch.float32)
    with torch.no_grad():
        want = model(batch)["y"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(batch)
    assert torch.isfinite(out["atom_y"]).all()
    torch.testing.assert_close(out["y"].float(), want, rtol=0.1, atol=0.1)


@pytest.mark.parametrize("settings, message", [
    ({"hidden_channels": 10, "num_heads": 4}, "hidden_channels (10) must be a multiple of num_heads (4)"),
    ({"readout": "max"}, "readout must be 'sum' or 'mean'"),
    ({"output_head": "vector"}, "output_head must be one of"),
    ({"num_layers": 0}, "num_layers must be at least 1"),
])
def test_bad_settings_are_clear_errors(settings, message):
    with pytest.raises(ValueError) as info:
        EquivariantTransformer(**{**SMALL, **settings})
    assert message in str(info.value)


def test_pipeline_validation_names_the_bad_setting(tmp_path):
    """Through a pipeline, the user sees one message naming the section and what to change."""
    spec = {
        "dataset": {"name": "qm9", "target": "gap"},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": "torchmdnet", "hidden_channels": 30, "num_heads": 8, "cutoff": 4.0},
        "output": {"dir": str(tmp_path)},
    }
    pytest.importorskip("molplat_qm9")
    with pytest.raises(molplat.MolplatError) as info:
        molplat.load_pipeline(spec)
    text = str(info.value)
    assert "[model]" in text and "must be a multiple of num_heads (8)" in text and "\n" not in text
    spec["model"].update(hidden_channels=32, cutoff=6.0)
    with pytest.raises(molplat.MolplatError, match="cutoff"):
        molplat.load_pipeline(spec)  # beyond the representation's radius


def test_settings_are_bounded_like_the_representations_they_read():
    from molplat.plugins import PluginManager

    from molplat_torchmdnet import plugin

    (spec,) = plugin.molplat_models()
    assert all(s.bounded for s in spec.settings)
    representation = PluginManager().components("representation")["adjacency_list"]
    assert spec.setting("cutoff").maximum == representation.setting("cutoff").maximum
    assert spec.setting("max_atomic_number").maximum == 118
    assert "atom_property" in spec.outputs and "forces" in spec.outputs


# -- learning -------------------------------------------------------------------------------------
def test_overfits_a_handful_of_molecules():
    torch.manual_seed(6)
    rng = np.random.default_rng(7)
    structures = [Structure(rng.choice([1, 6, 7, 8], size=n), rng.uniform(-2.0, 2.0, size=(n, 3)))
                  for n in (4, 5, 6, 7, 8, 9)]
    batch = collate(structures, torch.float32)
    targets = torch.from_numpy(rng.normal(size=(len(structures), 1)).astype(np.float32))
    model = EquivariantTransformer(n_outputs=1, **SMALL)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch)["y"], targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
