"""The ASE calculator: stress as the strain derivative, the reused (Verlet) neighbour list, dtypes.

References are computed independently of the calculator: energies by finite differences, and
the full rebuild as the training path does it (featurise, collate, the task's own forces).
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.md.verlet import VelocityVerlet
from ase.units import fs, kB
from molplat_sdk.toy_components import ToyPairModel
from torch import nn

from molplat.calculator import MolplatCalculator
from molplat.data.samples import SampleCollator, unlabelled_sample
from molplat.models import AtomisticModel, ModelOutput
from molplat.models.heads import Head, Heads
from molplat.predict import TrainedModel
from molplat.representations import AdjacencyList, AdjacencyMatrix, pair_vectors
from molplat.structure import Structure
from molplat.training.task import AtomisticTask

ENERGY = Heads((Head("energy", units="eV", extensive=True),), forces=True)


def toy_model(tmp_path, cutoff: float = 4.0, max_neighbors: int | None = None, seed: int = 0) -> TrainedModel:
    """An untrained toy pair model (random weights, float32) on an adjacency list."""
    torch.manual_seed(seed)
    task = AtomisticTask(ToyPairModel(hidden_channels=8, num_rbf=8, cutoff=cutoff), ENERGY)
    return TrainedModel(task, AdjacencyList(cutoff=cutoff, max_neighbors=max_neighbors), tmp_path)


def copper_cell(repeat: int = 2, seed: int = 1):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(repeat)
    atoms.numbers[::3] = 28
    atoms.rattle(0.08, seed=seed)
    return atoms


def full_rebuild(model: TrainedModel, atoms, dtype=torch.float64) -> tuple[float, np.ndarray]:
    """Energy and forces the way training computes them: featurise, collate, the task's forces."""
    task = copy.deepcopy(model.task)
    task.model.to(dtype)
    sample = unlabelled_sample(Structure.from_atoms(atoms), model.representation, model.heads)
    out = task(SampleCollator(model.representation, dtype)([sample]), forces=True)
    return float(out["y"][0, 0].detach()), out["forces"].detach().double().numpy()


def strain_derivative(atoms, calculator_of, h: float = 1e-5) -> np.ndarray:
    """(1/V) dE/dε by central differences, in Voigt order."""
    derivative = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                strain = np.zeros((3, 3))
                strain[a, b] += sign * h / 2
                strain[b, a] += sign * h / 2
                strained = atoms.copy()
                strained.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
                strained.calc = calculator_of()
                energies.append(strained.get_potential_energy())
            derivative[a, b] = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
    return derivative[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]


# -- stress ----------------------------------------------------------------------------------------
def test_stress_is_the_strain_derivative_of_the_energy(tmp_path):
    model = toy_model(tmp_path)
    atoms = copper_cell()
    atoms.set_cell(atoms.cell.array + [[0, 0, 0], [0.4, 0, 0], [0.2, -0.3, 0]], scale_atoms=True)  # skewed
    atoms.calc = model.calculator(dtype="float64")
    stress = atoms.get_stress()
    assert np.abs(stress).max() > 1e-3  # not trivially zero
    expected = strain_derivative(atoms, lambda: model.calculator(dtype="float64"))
    np.testing.assert_allclose(stress, expected, rtol=1e-6, atol=1e-9)
    assert atoms.get_stress(voigt=False) == pytest.approx(atoms.get_stress(voigt=False).T)  # symmetric


def test_stress_of_a_trained_model_matches_finite_differences(toy_run_context):
    model = toy_run_context.model
    atoms = copper_cell(repeat=1, seed=3)
    atoms.calc = model.calculator(dtype="float64")
    expected = strain_derivative(atoms, lambda: model.calculator(dtype="float64"))
    np.testing.assert_allclose(atoms.get_stress(), expected, rtol=1e-6, atol=1e-9)


def test_stress_of_a_slab_and_of_a_molecule(tmp_path):
    model = toy_model(tmp_path)
    slab = copper_cell()
    slab.pbc = [True, True, False]
    slab.calc = model.calculator(dtype="float64")
    np.testing.assert_allclose(slab.get_stress(), strain_derivative(slab, lambda: model.calculator(dtype="float64")),
                               rtol=1e-6, atol=1e-9)
    water = molecule("H2O")
    water.calc = model.calculator()
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        water.get_stress()


class PairMatrixModel(AtomisticModel):
    """A pair energy on the dense adjacency matrix: the calculator's featurise-every-step path."""

    accepts = ("adjacency_matrix",)

    def __init__(self, cutoff: float = 4.0) -> None:
        super().__init__(1)
        self.cutoff = cutoff
        self.scale = nn.Parameter(torch.tensor(0.7))

    def forward(self, batch) -> ModelOutput:
        distance = (pair_vectors(batch).square().sum(-1) + 1e-12).sqrt()
        mask = batch["pair_mask"]
        smooth = torch.where(mask, (1 - distance / self.cutoff) ** 2 * torch.exp(-self.scale * distance), 0.0)
        per_atom = smooth.sum(dim=(2, 3))
        y = per_atom.sum(dim=1, keepdim=True)
        embedding = batch.flat_atoms(per_atom[..., None])
        return ModelOutput(y=y, atom_embedding=embedding, graph_embedding=y)


def test_a_dense_representation_is_featurised_each_step_with_forces_and_stress(tmp_path):
    task = AtomisticTask(PairMatrixModel(), ENERGY)
    model = TrainedModel(task, AdjacencyMatrix(cutoff=4.0), tmp_path)
    atoms = copper_cell(repeat=1)
    calc = model.calculator(dtype="float64")
    atoms.calc = calc
    energy, forces = full_rebuild(model, atoms)
    assert atoms.get_potential_energy() == pytest.approx(energy, rel=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), forces, atol=1e-12)
    np.testing.assert_allclose(atoms.get_stress(), strain_derivative(atoms, lambda: model.calculator(dtype="float64")),
                               rtol=1e-6, atol=1e-9)
    atoms.positions[0, 0] += 0.01
    atoms.get_forces()
    assert calc.neighbor_list_builds == 3 and calc.stats.calls == 3  # energy+forces, stress, the moved atoms


# -- the reused neighbour list ---------------------------------------------------------------------
def run_against_full_rebuilds(model: TrainedModel, atoms, skin: float, steps: int, timestep_fs: float,
                              temperature: float) -> MolplatCalculator:
    """MD with the skin calculator; at every step its energy and forces equal a full rebuild's,
    and the list was rebuilt exactly at the steps where an atom had moved more than skin / 2."""
    calc = model.calculator(dtype="float64", skin=skin)
    atoms.calc = calc
    atoms.set_momenta(np.random.default_rng(0).normal(size=(len(atoms), 3))
                      * np.sqrt(atoms.get_masses() * temperature * kB)[:, None])
    dynamics = VelocityVerlet(atoms, timestep=timestep_fs * fs)
    built_at = [None]
    expected_builds = [0]

    def compare() -> None:
        if built_at[0] is None or np.linalg.norm(atoms.positions - built_at[0], axis=1).max() > skin / 2:
            built_at[0] = atoms.positions.copy()
            expected_builds[0] += 1
        energy, forces = full_rebuild(model, atoms)
        assert atoms.get_potential_energy() == pytest.approx(energy, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(atoms.get_forces(), forces, rtol=1e-10, atol=1e-12)
        assert calc.neighbor_list_builds == expected_builds[0]

    compare()
    dynamics.attach(compare, interval=1)
    dynamics.run(steps)
    assert calc.stats.calls == steps + 1
    return calc


def test_the_skin_list_equals_a_full_rebuild_along_md_of_a_periodic_cell(tmp_path):
    calc = run_against_full_rebuilds(toy_model(tmp_path), copper_cell(), skin=0.3, steps=30, timestep_fs=5.0,
                                     temperature=3000)
    assert 3 <= calc.neighbor_list_builds < 25  # reused, and rebuilt along the way


def test_the_skin_list_equals_a_full_rebuild_along_md_of_a_molecule(tmp_path):
    atoms = molecule("CH3CH2OH")
    calc = run_against_full_rebuilds(toy_model(tmp_path, cutoff=3.0), atoms, skin=0.2, steps=30, timestep_fs=0.5,
                                     temperature=2000)
    assert 2 <= calc.neighbor_list_builds < 25


def test_max_neighbors_keeps_the_same_nearest_pairs_as_a_full_rebuild(tmp_path):
    run_against_full_rebuilds(toy_model(tmp_path, max_neighbors=6), copper_cell(), skin=0.4, steps=15,
                              timestep_fs=5.0, temperature=3000)


@pytest.mark.parametrize("factory", ["molplat_schnet.model:SchNet", "molplat_painn.model:PaiNN"])
def test_real_models_on_the_skin_list_equal_a_full_rebuild(tmp_path, factory):
    """SchNet and PaiNN (when installed), which build their pair graphs from the batch's cell offsets."""
    from molplat.models.base import build_model

    module, _, name = factory.partition(":")
    network_class = getattr(pytest.importorskip(module), name)
    torch.manual_seed(0)
    network = build_model(network_class, {"hidden_channels": 16, "cutoff": 4.0}, ENERGY)
    model = TrainedModel(AtomisticTask(network, ENERGY), AdjacencyList(cutoff=4.0), tmp_path)
    run_against_full_rebuilds(model, copper_cell(), skin=0.3, steps=8, timestep_fs=5.0, temperature=3000)


def test_a_rebuild_happens_when_it_should(tmp_path):
    model = toy_model(tmp_path)
    atoms = copper_cell()
    calc = model.calculator(skin=0.5)
    atoms.calc = calc
    atoms.get_forces()
    assert calc.neighbor_list_builds == 1
    atoms.positions[3] += [0.24, 0.0, 0.0]  # less than skin / 2
    atoms.get_forces()
    assert calc.neighbor_list_builds == 1
    atoms.positions[3] += [0.02, 0.0, 0.0]  # 0.26 since the build: more than skin / 2
    atoms.get_forces()
    assert calc.neighbor_list_builds == 2
    atoms.positions[5] += [0.0, 0.1, 0.0]
    atoms.get_forces()
    assert calc.neighbor_list_builds == 2
    atoms.set_cell(atoms.cell.array * 1.001, scale_atoms=True)
    atoms.get_forces()
    assert calc.neighbor_list_builds == 3
    atoms.numbers[0] = 29 if atoms.numbers[0] == 28 else 28
    atoms.get_forces()
    assert calc.neighbor_list_builds == 4
    atoms.pbc = [True, True, False]
    atoms.get_forces()
    assert calc.neighbor_list_builds == 5
    atoms.get_potential_energy()  # nothing changed: ASE's cache, no call
    assert calc.neighbor_list_builds == 5 and calc.stats.calls == 7
    assert 0 < calc.stats.model_seconds <= calc.stats.seconds


def test_a_pair_entering_the_cutoff_between_rebuilds_is_counted(tmp_path):
    model = toy_model(tmp_path, cutoff=3.0)
    atoms = molecule("H2")
    atoms.positions = [[0.0, 0.0, 0.0], [0.0, 0.0, 3.2]]  # beyond the cutoff, within cutoff + skin
    calc = model.calculator(dtype="float64", skin=1.0)
    atoms.calc = calc
    alone = atoms.get_potential_energy()
    np.testing.assert_allclose(atoms.get_forces(), 0.0, atol=1e-12)
    atoms.positions[1, 2] = 2.8  # inside the cutoff now, moved less than skin / 2: no rebuild
    energy, forces = full_rebuild(model, atoms)
    assert atoms.get_potential_energy() == pytest.approx(energy, rel=1e-12) and energy != pytest.approx(alone)
    np.testing.assert_allclose(atoms.get_forces(), forces, atol=1e-12)
    assert np.abs(forces).max() > 0 and calc.neighbor_list_builds == 1


# -- dtype, ensembles, refusals --------------------------------------------------------------------
def test_float32_by_default_and_float64_on_a_copy(tmp_path):
    model = toy_model(tmp_path)
    atoms = copper_cell()
    single = model.calculator()
    assert single.dtype == torch.float32 and single.members[0] is model.task
    double = model.calculator(dtype="float64")
    assert next(double.members[0].model.parameters()).dtype == torch.float64
    assert next(model.model.parameters()).dtype == torch.float32  # the loaded model is left as it was
    assert double.members[0].scaler.graph_scale.dtype == torch.float64
    e32 = single.get_potential_energy(atoms)
    e64 = double.get_potential_energy(atoms)
    assert e32 == pytest.approx(e64, rel=1e-5) and e32 != e64
    np.testing.assert_allclose(single.get_forces(atoms), double.get_forces(atoms), atol=1e-4)
    assert model.calculator(dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match="float16.*float32, float64"):
        model.calculator(dtype="float16")
    with pytest.raises(ValueError, match="skin"):
        model.calculator(skin=-0.1)


def test_an_ensemble_gives_the_spread_of_energy_and_forces(tmp_path):
    from molplat.ensemble import EnsembleTask

    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        members.append(AtomisticTask(ToyPairModel(hidden_channels=8, num_rbf=8, cutoff=4.0), ENERGY))
    model = TrainedModel(EnsembleTask(members), AdjacencyList(cutoff=4.0), tmp_path)
    atoms = copper_cell()
    atoms.calc = model.calculator(dtype="float64")
    alone = [full_rebuild(TrainedModel(m, AdjacencyList(cutoff=4.0), tmp_path), atoms) for m in members]
    energies = np.array([e for e, _ in alone])
    forces = np.stack([f for _, f in alone])
    assert atoms.get_potential_energy() == pytest.approx(energies.mean(), rel=1e-12)
    assert atoms.calc.get_property("energy_std", atoms) == pytest.approx(energies.std(), rel=1e-9)
    np.testing.assert_allclose(atoms.get_forces(), forces.mean(0), atol=1e-12)
    np.testing.assert_allclose(atoms.calc.get_property("forces_std", atoms), forces.std(0), atol=1e-12)
    assert atoms.get_stress().shape == (6,)


def test_a_model_not_trained_on_forces_warns_and_one_without_an_energy_is_refused(tmp_path):
    heads = Heads((Head("gap", units="eV"),), forces=False)
    model = TrainedModel(AtomisticTask(ToyPairModel(hidden_channels=8, num_rbf=8), heads), AdjacencyList(4.0), tmp_path)
    with pytest.warns(UserWarning, match="not trained on forces"):
        model.calculator()
    label = Heads((Head("metal", loss="bce"),))
    refused = TrainedModel(AtomisticTask(ToyPairModel(hidden_channels=8, num_rbf=8), label), AdjacencyList(4.0),
                           tmp_path)
    with pytest.raises(ValueError, match="predicts no energy"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refused.calculator()


def test_elements_beyond_the_embedding_are_refused(tmp_path):
    from molplat.errors import ValidationError

    model = toy_model(tmp_path)
    model.model.max_atomic_number = 100  # as models with an element embedding declare it
    atoms = molecule("H2O")
    atoms.numbers[0] = 110  # the toy embeds up to 100
    atoms.calc = model.calculator()
    with pytest.raises(ValidationError, match="beyond the 100 elements"):
        atoms.get_potential_energy()


def test_calculate_called_directly_keeps_the_atoms_it_computed(tmp_path):
    model = toy_model(tmp_path)
    atoms = copper_cell()
    calc = model.calculator(dtype="float64")
    calc.calculate(atoms, ["energy", "forces"])
    energy, forces = full_rebuild(model, atoms)
    assert calc.results["energy"] == pytest.approx(energy, rel=1e-12)
    assert calc.atoms is not atoms and calc.check_state(atoms) == []
    atoms.positions[0] += 0.01
    assert calc.check_state(atoms) == ["positions"]
    calc.calculate(atoms, ["energy", "forces"])
    np.testing.assert_allclose(calc.results["forces"], full_rebuild(model, atoms)[1], atol=1e-12)
    assert calc.check_state(atoms) == []
