"""The Lightning task: conservative forces, scaling, optimisers, and a model that learns energies+forces."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT

from molplat.representations.adjacency_list import AdjacencyList
from molplat.structure import Structure
from molplat.training.data import Sample, SampleCollator
from molplat.training.lamb import Lamb
from molplat.training.lightning import TrainingJob, fit_with_lightning
from molplat.training.task import AtomisticTask, TargetScaler

SCHNET = pytest.importorskip("molplat_schnet.model")
CUTOFF = 4.0


def emt_structures(n: int, seed: int = 0) -> list[Structure]:
    """Rattled periodic copper cells labelled with EMT energies and forces (eV, eV/Å)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.61 + rng.normal(0, 0.03), cubic=True)
        atoms.rattle(0.08, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = None
        out.append(Structure.from_atoms(atoms, targets={"energy": energy}, id=f"cu{k}") )
        out[-1].forces = forces
    return out


def samples(structures, rep) -> list[Sample]:
    return [Sample(s.id, rep.featurize(s), np.array([s.targets["energy"]]), s.forces) for s in structures]


def energy_task(**settings) -> AtomisticTask:
    torch.manual_seed(0)
    model = SCHNET.SchNet(n_outputs=1, hidden_channels=16, num_filters=16, num_interactions=2, cutoff=CUTOFF)
    return AtomisticTask(model, n_outputs=1, task="energy_forces", **settings)


def test_forces_are_minus_the_numerical_energy_gradient():
    rep = AdjacencyList(cutoff=CUTOFF)
    structure = emt_structures(1)[0]
    task = energy_task().double().eval()
    task.scaler.fit(np.array([[structure.targets["energy"]]]), np.array([4.0]), per_atom=True)
    batch = SampleCollator(rep)(samples([structure], rep))
    batch["positions"] = batch["positions"].double()
    batch["edge_shift"] = batch["edge_shift"].double()
    forces = task(batch)["forces"].detach()
    h = 1e-5
    numeric = torch.zeros_like(forces)
    for atom in range(len(structure)):
        for axis in range(3):
            energies = []
            for sign in (1, -1):
                moved = batch.copy()
                moved["positions"] = batch["positions"].clone()
                moved["positions"][atom, axis] += sign * h
                energies.append(float(task(moved)["y"][0, 0].detach()))
            numeric[atom, axis] = -(energies[0] - energies[1]) / (2 * h)
    assert torch.allclose(forces, numeric, atol=1e-6, rtol=1e-5)


def test_target_scaler_round_trip_and_per_atom_shift():
    scaler = TargetScaler(1)
    y, natoms = np.array([[-10.0], [-21.0], [-29.0]]), np.array([2.0, 4.0, 6.0])
    scaler.fit(y, natoms, per_atom=True)
    assert float(scaler.mean) == pytest.approx(-60.0 / 12.0)
    out = (torch.tensor(y, dtype=torch.float32) - scaler.shift(torch.tensor(natoms))) / scaler.std
    back = scaler.unscale(out, torch.tensor(natoms))
    assert torch.allclose(back, torch.tensor(y, dtype=torch.float32), atol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "lamb"])
def test_every_optimizer_reduces_a_quadratic(optimizer):
    task = AtomisticTask(torch.nn.Linear(3, 1), n_outputs=1, optimizer=optimizer, lr=0.05)
    opt = task.configure_optimizers()["optimizer"]
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(task.model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    if optimizer == "lamb":
        assert isinstance(opt, Lamb)


def trainer_settings(**changes):
    from molplat.builtin import TRAINER_SETTINGS

    settings = {s.name: s.default for s in TRAINER_SETTINGS}
    settings.update(progress_bar=False, patience=50, lr_patience=50)
    settings.update(changes)
    return settings


def test_energy_and_forces_model_learns(tmp_path):
    rep = AdjacencyList(cutoff=CUTOFF)
    data = samples(emt_structures(48), rep)
    settings = trainer_settings(task="energy_forces", lr=3e-3, batch_size=8, max_epochs=12)

    def build():
        torch.manual_seed(0)
        return SCHNET.SchNet(n_outputs=1, hidden_channels=32, num_filters=32, num_interactions=2, cutoff=CUTOFF)

    job = TrainingJob(train=data[:40], val=data[40:], collator=SampleCollator(rep), build_model=build,
                      n_outputs=1, run_dir=tmp_path)
    result = fit_with_lightning(job, settings)
    assert result.best_checkpoint.is_file() and result.last_checkpoint.is_file()
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(12))
    assert float(rows[-1]["train_loss"]) < 0.5 * float(rows[0]["train_loss"])
    # the trained forces beat predicting zero force (the mean of forces) on held-out cells
    state = torch.load(result.best_checkpoint, weights_only=False)["state_dict"]
    task = AtomisticTask(build(), n_outputs=1, task="energy_forces")
    task.load_state_dict(state)
    task.eval()
    batch = job.collator(data[40:])
    predicted = task(batch)["forces"].detach()
    assert (predicted - batch["forces"]).abs().mean() < 0.6 * batch["forces"].abs().mean()


@pytest.mark.parametrize("changes", [
    dict(amp=True),
    dict(accumulate_grad_batches=3, gradient_clip_val=0.5, optimizer="lamb", lr=1e-2, loss="l1"),
], ids=["bf16-amp", "accumulate-clip-lamb-l1"])
def test_trainer_options_still_learn(tmp_path, changes):
    rep = AdjacencyList(cutoff=CUTOFF)
    data = samples(emt_structures(24, seed=3), rep)
    settings = trainer_settings(task="property", batch_size=4, max_epochs=6, lr=3e-3, seed=1)
    settings.update(changes)

    def build():
        return SCHNET.SchNet(n_outputs=1, hidden_channels=16, num_filters=16, num_interactions=1, cutoff=CUTOFF)

    job = TrainingJob(train=data[:20], val=data[20:], collator=SampleCollator(rep), build_model=build,
                      n_outputs=1, run_dir=tmp_path)
    fit_with_lightning(job, settings)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert len(rows) == 6
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
