"""PhysNet: charges, electrostatics, dispersion, periodic crystals, readouts and settings."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from molplat.data import compute_statistics, make_sample
from molplat.errors import ValidationError
from molplat.models import Head, Heads
from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.batch import Batch
from molplat.structure import Structure
from molplat_physnet.model import COULOMB_CONSTANT, PhysNet, intramolecular_pairs, polynomial_cutoff

CUTOFF = 4.0
SMALL = dict(hidden_channels=16, num_rbf=16, num_modules=2, num_residual_interaction=1, num_residual_atomic=1,
             num_residual_output=1, cutoff=CUTOFF)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second thread only adds overhead (20x on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def molecules() -> list[Structure]:
    return [Structure.from_atoms(molecule(name), id=name) for name in ("H2O", "CH3CH2OH", "C5H5N")]


def rocksalt() -> Structure:
    """A sheared, rattled NaCl cell: neighbours come from periodic images."""
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    atoms.set_cell(atoms.cell.array + np.array([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.2, 0.1, 0.0]]),
                   scale_atoms=True)
    atoms.rattle(0.05, seed=2)
    return Structure.from_atoms(atoms, id="nacl")


def silicon() -> Structure:
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.rattle(0.05, seed=1)
    return Structure.from_atoms(atoms, id="si")


def collate(structures: list[Structure], dtype=torch.float64) -> Batch:
    """A batch as training sees it: the representation collates in float64, the core casts once."""
    rep = AdjacencyList(cutoff=CUTOFF + 1.0)
    batch = rep.collate([rep.featurize(s) for s in structures])
    return Batch({k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                  for k, v in batch.items()})


def build(seed: int = 0, **settings) -> PhysNet:
    torch.manual_seed(seed)
    return PhysNet(**{**SMALL, **settings}).double().eval()


def energy_and_forces(model: PhysNet, structures: list[Structure]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = collate(structures)
    batch["positions"] = batch["positions"].detach().requires_grad_(True)
    energy = model(batch)["y"][:, 0]
    (grad,) = torch.autograd.grad(energy.sum(), batch["positions"])
    return energy.detach(), -grad


def rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


# -- charges ------------------------------------------------------------------------------------
@pytest.mark.parametrize("total_charge", [0.0, 1.0, -2.0])
def test_charges_sum_to_the_total_charge(total_charge):
    model = build(electrostatics=False, charge_output="first", n_atom_outputs=1, total_charge=total_charge)
    structures = molecules() + [rocksalt()]
    batch = collate(structures)
    raw = model(batch)["atom_y"][:, 0]  # standardised with scale 1 and no reference: the charges themselves
    sums = torch.zeros(len(structures), dtype=raw.dtype).index_add_(0, batch["batch"], raw)
    torch.testing.assert_close(sums, torch.full_like(sums, total_charge), rtol=0, atol=1e-12)


def test_charge_output_is_standardised_like_the_target():
    """With training statistics, atom_y[:, 0] = (q - per-element mean) / std, so the trainer's
    de-standardisation gives back charges that sum to the total charge."""
    rep = AdjacencyList(cutoff=CUTOFF)
    heads = Heads((Head("energy", units="eV", extensive=True), Head("charge", level="atom", units="e")))
    structures = []
    for s in molecules():
        charges = np.where(s.numbers == 1, 0.2, -0.2 * (s.numbers == 1).sum() / max((s.numbers != 1).sum(), 1))
        structures.append(Structure(s.numbers, s.positions, targets={"energy": -1.0 * len(s)},
                                    atom_targets={"charge": charges + 0.01 * np.arange(len(s))}, id=s.id))
    statistics = compute_statistics([make_sample(s, rep, heads) for s in structures], heads)
    torch.manual_seed(0)
    model = PhysNet(**SMALL, n_outputs=1, n_atom_outputs=1, heads=heads, statistics=statistics,
                    electrostatics=True).double().eval()
    assert model.charges_are_atom_output  # auto: the first per-atom target is in e
    stats = statistics.targets["charge"]
    assert float(model.charge_scale) == pytest.approx(stats.residual_std)
    batch = collate(structures)
    standardised = model(batch)["atom_y"][:, 0]
    reference = torch.tensor([stats.references[str(int(z))] for z in batch["numbers"]], dtype=torch.float64)
    charges = standardised * stats.residual_std + reference
    sums = torch.zeros(len(structures), dtype=charges.dtype).index_add_(0, batch["batch"], charges)
    # the model's buffers hold the references in float32 (rounded ~1e-8), the trainer's in float64
    torch.testing.assert_close(sums, torch.zeros_like(sums), rtol=0, atol=1e-6)
    # the energy term is divided by the energy's scale, so it comes out in eV after de-standardisation
    assert float(model.energy_scale) == pytest.approx(statistics.targets["energy"].residual_std)


def test_charge_output_auto_needs_a_target_in_e():
    other = Heads((Head("u0", units="eV", extensive=True), Head("spin", level="atom", units="")))
    assert not PhysNet(**SMALL, n_atom_outputs=1, heads=other).charges_are_atom_output
    charge = Heads((Head("u0", units="eV"), Head("mulliken_charge", level="atom", units="e")))
    model = PhysNet(**SMALL, n_atom_outputs=1, heads=charge)
    assert model.charges_are_atom_output and model.has_charges
    assert not PhysNet(**SMALL, n_atom_outputs=1, heads=charge, charge_output="none").has_charges


def test_per_atom_outputs_beyond_the_charge():
    model = build(n_outputs=2, n_atom_outputs=3, charge_output="first")
    out = model(collate(molecules()))
    n = sum(len(s) for s in molecules())
    assert out["y"].shape == (3, 2) and out["atom_y"].shape == (n, 3)
    plain = build(n_outputs=1)
    assert not plain.has_charges and "atom_y" not in plain(collate(molecules()))


# -- electrostatics -----------------------------------------------------------------------------
def test_intramolecular_pairs_are_every_pair_of_each_structure():
    natoms = torch.tensor([3, 1, 4, 2])
    first, second = intramolecular_pairs(natoms)
    graph = torch.repeat_interleave(torch.arange(4), natoms)
    want = {(i, j) for i in range(10) for j in range(i + 1, 10) if graph[i] == graph[j]}
    assert set(zip(first.tolist(), second.tolist())) == want and len(first) == len(want)


def test_coulomb_term_is_the_papers_shielded_law():
    """E = k_e sum_{i<j} q_i q_j chi(r): shielded 1/sqrt(r^2+1) below, bare 1/r beyond rc/2."""
    model = build(electrostatics=True)
    structures = molecules()
    batch = collate(structures)
    charges = torch.linspace(-0.5, 0.5, batch["numbers"].shape[0], dtype=torch.float64)
    energy = model.electrostatic_energy(batch, charges, len(structures))
    pos, graph = batch["positions"], batch["batch"]
    want = torch.zeros(len(structures), dtype=torch.float64)
    for i in range(len(pos)):
        for j in range(i + 1, len(pos)):
            if graph[i] != graph[j]:
                continue
            r = (pos[i] - pos[j]).norm()
            phi = polynomial_cutoff(2 * r, CUTOFF)
            want[graph[i]] += COULOMB_CONSTANT * charges[i] * charges[j] * (phi / torch.sqrt(r * r + 1) + (1 - phi) / r)
    torch.testing.assert_close(energy, want)
    far = torch.tensor([CUTOFF / 2, CUTOFF, 10.0], dtype=torch.float64)
    assert torch.all(polynomial_cutoff(2 * far, CUTOFF) == 0)  # bare Coulomb from rc/2 on


def test_energy_with_electrostatics_is_smooth_and_forces_are_minus_its_gradient():
    model = build(electrostatics=True, dispersion=True, n_outputs=2)
    structures = molecules()
    _, forces = energy_and_forces(model, structures)
    batch = collate(structures)
    h = 1e-5
    rng = np.random.default_rng(3)
    for atom in rng.choice(len(batch["numbers"]), size=4, replace=False):
        for axis in range(3):
            energies = []
            for sign in (1, -1):
                moved = Batch(batch)
                moved["positions"] = batch["positions"].clone()
                moved["positions"][atom, axis] += sign * h
                with torch.no_grad():
                    energies.append(float(model(moved)["y"][:, 0].sum()))
            numeric = -(energies[0] - energies[1]) / (2 * h)
            assert forces[atom, axis].item() == pytest.approx(numeric, rel=1e-6, abs=1e-7)


def test_electrostatic_energy_continuous_as_an_atom_crosses_the_cutoff():
    """The Coulomb term spans every pair (no cutoff); the charges depend on the radius graph,
    which is smooth at its cutoff: the slope of the energy is the same on both sides of the
    model's cutoff, of the representation's (where the pair leaves the graph) and of rc/2
    (where the shielding ends). A jump J would show as a slope difference J / h."""
    model = build(electrostatics=True)
    h = 1e-5
    for r0 in (CUTOFF + 1.0, CUTOFF, CUTOFF / 2):
        energies = []
        for r in (r0 - h, r0, r0 + h):
            s = Structure([6, 1, 8], [[0.0, 0.0, 0.0], [-0.6, 0.9, 0.0], [r, 0.0, 0.0]])
            with torch.no_grad():
                energies.append(float(model(collate([s]))["y"][0, 0]))
        left, right = (energies[1] - energies[0]) / h, (energies[2] - energies[1]) / h
        assert abs(left - right) < 1e-3, (r0, left, right)


def test_electrostatics_changes_the_energy_and_is_invariant():
    plain, charged = build(seed=4, n_outputs=1), build(seed=4, n_outputs=1, electrostatics=True)
    structures = molecules()
    with torch.no_grad():
        reference = charged(collate(structures))["y"]
        assert not torch.allclose(reference, plain(collate(structures))["y"][:, :1])
        q = rotation(5)
        moved = [s.transformed(rotation=q, translation=[1.0, -2.0, 3.0],
                               permutation=np.random.default_rng(k).permutation(len(s)))
                 for k, s in enumerate(structures)]
        torch.testing.assert_close(charged(collate(moved))["y"], reference)
        alone = torch.cat([charged(collate([s]))["y"] for s in structures])
    torch.testing.assert_close(alone, reference)


def test_electrostatics_refuses_periodic_structures_with_a_clear_message():
    model = build(electrostatics=True)
    with pytest.raises(ValidationError, match="molecules only.*Ewald.*electrostatics = false"):
        model(collate([molecules()[0], rocksalt()]))


# -- periodic crystals ---------------------------------------------------------------------------
@pytest.mark.parametrize("dispersion", [False, True])
def test_crystal_energy_invariant_when_cell_and_positions_rotate(dispersion):
    model = build(n_outputs=1, dispersion=dispersion)
    for crystal in (rocksalt(), silicon()):
        energy, forces = energy_and_forces(model, [crystal])
        q = rotation(7)
        rotated = Structure(crystal.numbers, crystal.positions @ q.T, cell=crystal.cell @ q.T, pbc=crystal.pbc,
                            id=crystal.id)
        rotated_energy, rotated_forces = energy_and_forces(model, [rotated])
        torch.testing.assert_close(rotated_energy, energy, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(rotated_forces, forces @ torch.from_numpy(q.T), rtol=1e-8, atol=1e-10)
        # wrapping an atom back into the cell (a lattice vector) changes nothing
        shifted = crystal.positions.copy()
        shifted[0] += crystal.cell[0] - crystal.cell[2]
        wrapped = Structure(crystal.numbers, shifted, cell=crystal.cell, pbc=crystal.pbc)
        torch.testing.assert_close(energy_and_forces(model, [wrapped])[0], energy, rtol=1e-10, atol=1e-10)


def test_crystal_forces_are_minus_the_gradient():
    model = build(n_outputs=1, dispersion=True)
    crystal = rocksalt()
    _, forces = energy_and_forces(model, [crystal])
    batch = collate([crystal])
    h = 1e-5
    for axis in range(3):
        energies = []
        for sign in (1, -1):
            moved = Batch(batch)
            moved["positions"] = batch["positions"].clone()
            moved["positions"][1, axis] += sign * h
            with torch.no_grad():
                energies.append(float(model(moved)["y"][0, 0]))
        assert forces[1, axis].item() == pytest.approx(-(energies[0] - energies[1]) / (2 * h), rel=1e-6, abs=1e-7)


# -- dispersion -----------------------------------------------------------------------------------
def test_dispersion_is_grimme_d2_for_a_pair():
    """Two argon atoms 3.5 Å apart: -s6 C6 / r^6 f_damp(r) phi(r), with D2's Ar values."""
    plain, dispersed = build(seed=2, n_outputs=1), build(seed=2, n_outputs=1, dispersion=True)
    r = 3.5
    with torch.no_grad():
        batch = collate([Structure([18, 18], [[0.0, 0.0, 0.0], [r, 0.0, 0.0]])])
        delta = float(dispersed(batch)["y"][0, 0] - plain(batch)["y"][0, 0])
    c6 = 4.61 * 10.364269  # J nm^6/mol -> eV Å^6
    damping = 1.0 / (1.0 + math.exp(-20.0 * (r / (2 * 1.595) - 1.0)))
    x = r / CUTOFF
    phi = 1 - 6 * x**5 + 15 * x**4 - 10 * x**3
    assert delta == pytest.approx(-0.75 * c6 / r**6 * damping * phi, rel=1e-6)  # float32 table, s6
    assert delta < 0


# -- readouts and settings -----------------------------------------------------------------------------
def test_mean_readout_is_sum_over_atoms():
    summed, mean = build(seed=1, readout="sum"), build(seed=1, readout="mean")
    mean.load_state_dict(summed.state_dict())
    structures = molecules()
    with torch.no_grad():
        ratio = summed(collate(structures))["y"] / mean(collate(structures))["y"]
    torch.testing.assert_close(ratio[:, 0], torch.tensor([3.0, 9.0, 11.0], dtype=torch.float64))


def test_auto_readout_sums_extensive_targets_and_averages_the_others():
    heads = Heads((Head("homo", units="eV"), Head("zpve", units="eV", extensive=True)))
    auto = build(seed=1, readout="auto", n_outputs=2, heads=heads)
    summed = build(seed=1, readout="sum", n_outputs=2)
    summed.load_state_dict(auto.state_dict())
    with torch.no_grad():
        a, s = auto(collate(molecules()))["y"], summed(collate(molecules()))["y"]
    torch.testing.assert_close(a[:, 1], s[:, 1])
    torch.testing.assert_close(a[:, 0] * torch.tensor([3.0, 9.0, 11.0], dtype=torch.float64), s[:, 0])


@pytest.mark.parametrize("settings, heads, message", [
    (dict(readout="max"), None, "readout: must be one of"),
    (dict(charge_output="yes"), None, "charge_output: must be one of"),
    (dict(charge_output="first"), None, "the run has none"),
    (dict(electrostatics=True, readout="mean"), None, "pooled by a sum"),
    (dict(dispersion=True, readout="auto"), Heads((Head("gap", units="eV"),)), "pooled by a sum"),
    (dict(electrostatics=True), Heads((Head("alpha", units="bohr^3"),)), "in 'bohr\\^3'"),
    (dict(dispersion=True), Heads((Head("toxic", loss="bce"),)), "classification"),
    (dict(electrostatics=True, n_outputs=0, n_atom_outputs=1), None, "has none"),
])
def test_bad_settings_are_one_clear_error(settings, heads, message):
    with pytest.raises(ValidationError, match=message):
        PhysNet(**{**SMALL, **settings}, heads=heads)


def test_settings_are_bounded_like_the_representations_they_read():
    from molplat.plugins import PluginManager

    from molplat_physnet import plugin

    (spec,) = plugin.molplat_models()
    assert all(s.bounded for s in spec.settings)
    representation = PluginManager().components("representation")["adjacency_list"]
    assert spec.setting("cutoff").maximum == representation.setting("cutoff").maximum
    assert spec.setting("max_atomic_number").maximum == 118
    assert {"atom_property", "energy", "forces"} <= set(spec.outputs)


def test_overfits_a_handful_of_molecules():
    torch.manual_seed(6)
    rng = np.random.default_rng(7)
    structures = [Structure(rng.choice([1, 6, 7, 8], size=n), rng.uniform(-2.0, 2.0, size=(n, 3)))
                  for n in (4, 5, 6, 7, 8, 9)]
    batch = collate(structures, torch.float32)
    targets = torch.from_numpy(rng.normal(size=(len(structures), 1)).astype(np.float32))
    model = PhysNet(**SMALL, electrostatics=True, dispersion=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch)["y"], targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
