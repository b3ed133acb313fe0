"""PaiNN: equivariance of its vector features and forces, invariance of its energies, forces
against finite differences, smoothness at the cutoff, periodic crystals, readouts, settings,
and energy+forces learning on EMT-labelled metal clusters."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from molplat.models import Head, Heads
from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.batch import Batch
from molplat.structure import Structure
from molplat_painn.model import PaiNN

CUTOFF = 4.0
SMALL = dict(hidden_channels=16, num_interactions=2, num_radial=8, cutoff=CUTOFF)
VARIANTS = [dict(), dict(output_head="gated"), dict(shared_filters=True)]
VARIANT_IDS = ["mlp", "gated", "shared-filters"]


def ethanol() -> Structure:
    return Structure(
        [6, 6, 8, 1, 1, 1, 1, 1, 1],
        [[-0.048, 0.55, 0.0], [-1.23, -0.41, 0.0], [1.18, -0.23, 0.0], [-0.08, 1.19, 0.89],
         [-0.08, 1.19, -0.89], [-2.17, 0.15, 0.0], [-1.2, -1.05, 0.88], [-1.2, -1.05, -0.88],
         [1.94, 0.38, 0.0]],
        id="ethanol",
    )


def water() -> Structure:
    return Structure([8, 1, 1], [[0.0, 0.0, 0.117], [0.0, 0.757, -0.469], [0.0, -0.757, -0.469]], id="H2O")


def rocksalt(seed: int = 0) -> Structure:
    """A rattled, sheared NaCl-like cell: most neighbours are periodic images."""
    rng = np.random.default_rng(seed)
    cell = np.array([[3.0, 0.0, 0.0], [0.3, 3.0, 0.0], [0.2, 0.1, 3.0]])
    positions = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]) @ cell + rng.normal(scale=0.05, size=(2, 3))
    return Structure([11, 17], positions, cell=cell, pbc=True, id="NaCl")


def rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def collate(structures: list[Structure], dtype=torch.float64) -> Batch:
    """A batch as training sees it: representations collate in float64, the core casts once."""
    rep = AdjacencyList(cutoff=CUTOFF)
    batch = rep.collate([rep.featurize(s) for s in structures])
    return Batch({k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                  for k, v in batch.items()})


def energies_and_forces(model: PaiNN, structures: list[Structure]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = collate(structures)
    batch["positions"] = batch["positions"].requires_grad_(True)
    energy = model(batch)["y"][:, 0]
    (grad,) = torch.autograd.grad(energy.sum(), batch["positions"])
    return energy.detach(), -grad


def build(seed: int = 0, **settings) -> PaiNN:
    torch.manual_seed(seed)
    return PaiNN(n_outputs=2, **{**SMALL, **settings}).double().eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second thread only adds overhead."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- symmetry -----------------------------------------------------------------------------------
@pytest.mark.parametrize("settings", VARIANTS, ids=VARIANT_IDS)
def test_vector_features_rotate_with_the_structure(settings):
    """v(R x) = R v(x) for every atom and channel; s(R x) = s(x); translations change neither."""
    model = build(**settings)
    structures = [ethanol(), rocksalt()]
    with torch.no_grad():
        s, v = model.features(collate(structures))
        assert v.shape == (11, 3, SMALL["hidden_channels"]) and float(v.abs().max()) > 1e-2  # not trivially zero
        for seed in (1, 2):
            r = rotation(seed)
            moved = [x.transformed(rotation=r, translation=[0.7, -1.3, 2.1]) for x in structures]
            s_rot, v_rot = model.features(collate(moved))
            torch.testing.assert_close(s_rot, s, rtol=1e-10, atol=1e-10)
            torch.testing.assert_close(v_rot, torch.einsum("ij,njf->nif", torch.from_numpy(r), v),
                                       rtol=1e-10, atol=1e-10)


def test_vector_features_flip_under_inversion():
    """v is a polar vector: inverting the structure through a point negates it."""
    model = build()
    molecule = ethanol()
    inverted = Structure(molecule.numbers, -molecule.positions, id="inverted")
    with torch.no_grad():
        s, v = model.features(collate([molecule]))
        s_inv, v_inv = model.features(collate([inverted]))
    torch.testing.assert_close(s_inv, s, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(v_inv, -v, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("settings", VARIANTS, ids=VARIANT_IDS)
def test_energy_invariant_and_forces_equivariant(settings):
    """E is unchanged by rotation, translation and permutation; F(R x) = R F(x) and the forces
    follow a permutation of the atoms."""
    model = build(**settings)
    structures = [ethanol(), rocksalt(), water()]
    energy, forces = energies_and_forces(model, structures)
    r = rotation(3)
    e_rot, f_rot = energies_and_forces(model, [s.transformed(rotation=r, translation=[3.0, 1.0, -2.0])
                                               for s in structures])
    torch.testing.assert_close(e_rot, energy, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(f_rot, forces @ torch.from_numpy(r).T, rtol=1e-9, atol=1e-10)
    rng = np.random.default_rng(4)
    orders = [rng.permutation(len(s)) for s in structures]
    e_perm, f_perm = energies_and_forces(model, [s.transformed(permutation=p) for s, p in zip(structures, orders)])
    torch.testing.assert_close(e_perm, energy, rtol=1e-10, atol=1e-10)
    offsets = np.cumsum([0] + [len(s) for s in structures])[:-1]
    index = torch.from_numpy(np.concatenate([p + o for p, o in zip(orders, offsets)]))
    torch.testing.assert_close(f_perm, forces[index], rtol=1e-9, atol=1e-10)


# -- forces and smoothness ----------------------------------------------------------------------
@pytest.mark.parametrize("structure", [ethanol(), rocksalt()], ids=["molecule", "crystal"])
def test_forces_are_minus_the_energy_gradient(structure):
    """Central finite differences of the energy, float64, every coordinate of every atom."""
    model = build(output_head="gated")
    _, forces = energies_and_forces(model, [structure])
    batch = collate([structure])
    h = 1e-5
    numeric = torch.zeros_like(forces)
    with torch.no_grad():
        for atom in range(len(structure)):
            for axis in range(3):
                values = []
                for sign in (1.0, -1.0):
                    moved = Batch(batch)
                    moved["positions"] = batch["positions"].clone()
                    moved["positions"][atom, axis] += sign * h
                    values.append(float(model(moved)["y"][0, 0]))
                numeric[atom, axis] = -(values[0] - values[1]) / (2 * h)
    torch.testing.assert_close(forces, numeric, rtol=1e-6, atol=1e-7)


def test_energy_and_forces_smooth_across_the_cutoff():
    """A dimer pulled through the cutoff sphere: the energy has no jump and the force falls
    continuously to zero (the cosine cutoff's slope vanishes at the cutoff)."""
    model = build(output_head="gated")

    def dimer(d: float) -> Structure:
        return Structure([29, 78], [[0.0, 0.0, 0.0], [d, 0.0, 0.0]], id=f"CuPt at {d}")

    distances = [CUTOFF - 1e-2, CUTOFF - 1e-3, CUTOFF - 1e-5, CUTOFF + 1e-5, CUTOFF + 1e-2]
    energy, forces = energies_and_forces(model, [dimer(d) for d in distances])
    forces = forces.reshape(len(distances), 2, 3)
    apart = energy[-1]
    assert abs(float(energy[2] - apart)) < 1e-9 and float(energy[3] - apart) == 0.0
    # inside, a real force that shrinks like (rc - d): 10x closer, ~10x smaller
    f = forces[:, 1, 0].abs()
    assert float(f[0]) > 1e-8 and float(f[1]) < 0.2 * float(f[0]) and float(f[2]) < 1e-3 * float(f[0])
    assert float(forces[3:].abs().max()) == 0.0
    torch.testing.assert_close(forces[:, 0], -forces[:, 1])  # Newton's third law


# -- periodic crystals --------------------------------------------------------------------------
def test_supercell_energy_is_extensive():
    """A 2x1x1 supercell of a crystal is the same crystal: twice the energy with the sum
    readout and the same with the mean one; each copy of an atom feels the primitive cell's
    force (sum) or half of it (mean, which divides by twice the atoms)."""
    cell = rocksalt()
    double = Structure(np.tile(cell.numbers, 2),
                       np.concatenate([cell.positions, cell.positions + cell.cell[0]]),
                       cell=cell.cell * np.array([[2.0], [1.0], [1.0]]), pbc=True, id="NaCl x2")
    for readout, factor in (("sum", 2.0), ("mean", 1.0)):
        model = build(readout=readout)
        energy, forces = energies_and_forces(model, [cell, double])
        torch.testing.assert_close(energy[1], factor * energy[0], rtol=1e-9, atol=1e-10)
        assert float(forces[:2].abs().max()) > 1e-3
        torch.testing.assert_close(forces[2:4], factor / 2 * forces[:2], rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(forces[4:6], factor / 2 * forces[:2], rtol=1e-8, atol=1e-10)


# -- readouts and settings ----------------------------------------------------------------------
def test_readouts():
    """mean = sum / atoms; auto sums the extensive heads and averages the others."""
    heads = Heads((Head("zpve", extensive=True), Head("homo")))
    torch.manual_seed(0)
    models = {r: PaiNN(n_outputs=2, readout=r, heads=heads, **SMALL).double().eval() for r in ("sum", "mean", "auto")}
    for model in models.values():
        model.load_state_dict(models["sum"].state_dict())
    batch = collate([water(), ethanol()])
    with torch.no_grad():
        y = {r: m(batch)["y"] for r, m in models.items()}
    natoms = torch.tensor([[3.0], [9.0]], dtype=torch.float64)
    torch.testing.assert_close(y["mean"], y["sum"] / natoms)
    torch.testing.assert_close(y["auto"][:, 0], y["sum"][:, 0])
    torch.testing.assert_close(y["auto"][:, 1], y["mean"][:, 1])


def test_shared_filters_use_one_filter_network():
    shared, separate = build(shared_filters=True), build()
    assert shared.filters.out_features * SMALL["num_interactions"] == separate.filters.out_features


def test_runs_under_bf16_autocast():
    """The CPU trainer's ``amp`` setting wraps the model in bf16 autocast."""
    torch.manual_seed(0)
    model = PaiNN(n_outputs=1, output_head="gated", **SMALL).eval()
    batch = collate([water(), ethanol()], torch.float32)
    with torch.no_grad():
        reference = model(batch)["y"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(batch)["y"]
    torch.testing.assert_close(y.float(), reference, rtol=0.1, atol=0.1)


@pytest.mark.parametrize("settings, message", [
    (dict(readout="max"), "readout must be one of"),
    (dict(output_head="tensor"), "output_head must be one of"),
    (dict(hidden_channels=0), "hidden_channels must be at least 1"),
    (dict(num_radial=0), "num_radial must be at least 1"),
    (dict(cutoff=0.0), "cutoff must be positive"),
])
def test_bad_constructor_arguments_are_clear_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        PaiNN(**{**SMALL, **settings})


@pytest.mark.parametrize("settings, message", [
    (dict(readout="max"), "readout: 'max' is not allowed; allowed values: 'sum', 'mean', 'auto'"),
    (dict(output_head="tensor"), "output_head: 'tensor' is not allowed"),
    (dict(hidden_channels=0), "hidden_channels: 0 is below the minimum 1"),
    (dict(cutoff=6.0), "cutoff: 6.0 Å is beyond \\[representation\\] cutoff 4.0 Å"),
    (dict(max_atomic_number=119), "max_atomic_number: 119 is above the maximum 118"),
])
def test_bad_pipeline_settings_are_one_line_each(settings, message):
    """What a user can write in [model] is refused at validation with the setting named."""
    import molplat
    from molplat.errors import ValidationError

    pytest.importorskip("molplat_qm9")
    spec = {"dataset": {"name": "qm9", "target": "homo"},
            "representation": {"name": "adjacency_list", "cutoff": CUTOFF},
            "model": {"name": "painn", **SMALL, **settings}}
    with pytest.raises(ValidationError, match=message):
        molplat.load_pipeline(spec)


# -- learning energies and forces ---------------------------------------------------------------
def emt_clusters(count: int, seed: int) -> list[Structure]:
    """Rattled 13-atom Cu/Pt icosahedra of random composition, labelled by ASE's EMT."""
    from ase.calculators.emt import EMT
    from ase.cluster import Icosahedron

    rng = np.random.default_rng(seed)
    structures = []
    for k in range(count):
        atoms = Icosahedron("Cu", noshells=2, latticeconstant=3.7)
        atoms.numbers[rng.random(len(atoms)) < 0.4] = 78
        atoms.rattle(stdev=0.15, seed=int(rng.integers(2**31)))
        atoms.calc = EMT()
        structures.append(Structure(atoms.numbers, atoms.positions, forces=atoms.get_forces(),
                                    targets={"energy": atoms.get_potential_energy()}, id=f"emt{seed}-{k}"))
    return structures


def test_learns_emt_energies_and_forces():
    """Trained through the core's task (forces = -dE/dpositions by autograd, energy + force
    loss), the force error on held-out clusters falls well below that of predicting no force."""
    pytest.importorskip("ase")
    from molplat.data import SampleCollator, compute_statistics, make_sample
    from molplat.training import build_task

    heads = Heads.single("energy", units="eV", forces=True)
    rep = AdjacencyList(cutoff=CUTOFF)
    train = [make_sample(s, rep, heads) for s in emt_clusters(12, seed=0)]
    test = [make_sample(s, rep, heads) for s in emt_clusters(6, seed=1)]
    statistics = compute_statistics(train, heads)
    torch.manual_seed(0)
    model = PaiNN(n_outputs=1, readout="auto", heads=heads, **SMALL)
    task = build_task(model, heads, statistics, {"forces_weight": 10.0})
    collator = SampleCollator(rep)
    train_batch, test_batch = collator(train), collator(test)

    def test_errors() -> dict[str, float]:
        task.eval()
        out = task(test_batch)
        return {k: float(v) for k, v in task.errors(test_batch, out).items()}

    before = test_errors()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    task.train()
    for _ in range(80):
        optimizer.zero_grad()
        loss, _ = task.loss(train_batch, task(train_batch))
        loss.backward()
        optimizer.step()
    after = test_errors()
    no_force = float(test_batch["forces"].abs().mean())
    assert after["forces"] < 0.5 * before["forces"], (before, after)
    assert after["forces"] < 0.5 * no_force, (after, no_force)
