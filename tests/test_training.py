"""The task and the Lightning loop: conservative forces, scaling, heads, optimisers, checkpoints every epoch."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from ase.build import bulk
from ase.calculators.emt import EMT

from molplat.builtin import TRAINER_SETTINGS
from molplat.data import compute_statistics, make_sample
from molplat.data.samples import SampleCollator
from molplat.errors import RunError
from molplat.models import Head, Heads
from molplat.representations.adjacency_list import AdjacencyList
from molplat.rundir import TrainingJob, read_checkpoint
from molplat.structure import Structure
from molplat.training.lightning import LightningTask, fit_with_lightning
from molplat.training.task import AtomisticTask

SCHNET = pytest.importorskip("molplat_schnet.model")
CUTOFF = 4.0
ENERGY = Heads.single("energy", "eV", forces=True)


def emt_structures(n: int, seed: int = 0) -> list[Structure]:
    """Rattled periodic copper cells labelled with EMT energies and forces (eV, eV/Å)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.61 + rng.normal(0, 0.03), cubic=True)
        atoms.rattle(0.08, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        out.append(Structure(atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc, forces,
                             {"energy": energy}, f"cu{k}"))
    return out


def samples(structures, rep, heads=ENERGY):
    return [make_sample(s, rep, heads) for s in structures]


def schnet(**changes) -> torch.nn.Module:
    torch.manual_seed(0)
    settings = dict(n_outputs=1, hidden_channels=16, num_filters=16, num_interactions=2, cutoff=CUTOFF)
    settings.update(changes)
    return SCHNET.SchNet(**settings)


def test_forces_are_minus_the_numerical_energy_gradient():
    rep = AdjacencyList(cutoff=CUTOFF)
    data = samples(emt_structures(3), rep)
    task = AtomisticTask(schnet(), ENERGY).double().eval()
    task.scaler.fit(compute_statistics(data, ENERGY), ENERGY)
    batch = SampleCollator(rep, dtype=torch.float64)(data[:1])
    forces = task(batch)["forces"].detach()
    h = 1e-5
    numeric = torch.zeros_like(forces)
    for atom in range(forces.shape[0]):
        for axis in range(3):
            energies = []
            for sign in (1, -1):
                moved = batch.copy()
                moved["positions"] = batch["positions"].clone()
                moved["positions"][atom, axis] += sign * h
                energies.append(float(task(moved)["y"][0, 0].detach()))
            numeric[atom, axis] = -(energies[0] - energies[1]) / (2 * h)
    assert torch.allclose(forces, numeric, atol=1e-6, rtol=1e-5)


def test_extensive_targets_get_per_element_references_that_add_up():
    """Energies of molecules made of H and C with known per-element references: the fit recovers them,
    the scaler predicts them for a model that outputs zero, and two structures side by side sum."""
    rng = np.random.default_rng(0)
    refs = {1: -13.6, 6: -1029.0}
    structures = []
    for k in range(40):
        counts = {1: int(rng.integers(1, 9)), 6: int(rng.integers(1, 5))}
        numbers = np.repeat(list(counts), list(counts.values()))
        energy = sum(refs[z] * n for z, n in counts.items()) + rng.normal(0, 0.05)
        positions = rng.normal(size=(len(numbers), 3)) * 3
        structures.append(Structure(numbers, positions, targets={"u0": energy}, id=f"m{k}"))
    heads = Heads((Head("u0", units="eV", extensive=True),))
    rep = AdjacencyList(cutoff=CUTOFF)
    data = samples(structures, rep, heads)
    stats = compute_statistics(data, heads)
    fitted = stats.targets["u0"].references
    assert fitted["1"] == pytest.approx(-13.6, abs=0.05) and fitted["6"] == pytest.approx(-1029.0, abs=0.1)
    assert stats.targets["u0"].residual_std < 0.1 < stats.targets["u0"].std

    class Zero(torch.nn.Module):
        def forward(self, batch):
            return {"y": torch.zeros(batch["num_graphs"], 1, dtype=batch["positions"].dtype)}

    task = AtomisticTask(Zero(), heads)
    task.scaler.fit(stats, heads)
    collate = SampleCollator(rep, dtype=torch.float64)
    out = task(collate(data[:2]))["y"][:, 0]
    expected = [sum(fitted[str(z)] for z in s.numbers) for s in structures[:2]]
    assert out.tolist() == pytest.approx(expected, rel=1e-9)
    a, b = structures[0], structures[1]
    pair = Structure(np.concatenate([a.numbers, b.numbers]), np.concatenate([a.positions, b.positions + 100.0]),
                     targets={"u0": 0.0}, id="pair")
    together = float(task(collate(samples([pair], rep, heads)))["y"][0, 0])
    assert together == pytest.approx(sum(expected), rel=1e-9)


def test_statistics_per_atom_targets_degrees_and_streaming():
    rep = AdjacencyList(cutoff=CUTOFF)
    structures = emt_structures(6)
    for s in structures:
        s.atom_targets["charge"] = np.linspace(-0.5, 0.5, len(s))
    heads = Heads((Head("energy", units="eV", extensive=True), Head("charge", level="atom", units="e")))
    data = samples(structures, rep, heads)
    stats = compute_statistics(data, heads)
    charges = np.concatenate([s.atom_targets["charge"] for s in structures])
    assert stats.targets["charge"].mean == pytest.approx(charges.mean())
    assert stats.targets["charge"].references["29"] == pytest.approx(charges.mean())
    degrees = np.concatenate([np.bincount(d.features["edge_index"][0], minlength=d.natoms) for d in data])
    assert stats.degree_histogram == np.bincount(degrees).tolist()
    assert stats.avg_num_neighbors == pytest.approx(degrees.mean())
    assert stats.num_atoms == len(charges) and stats.element_counts == {"29": len(charges)}
    assert type(stats).from_dict(stats.as_dict()) == stats


def settings_with(**changes):
    settings = {s.name: s.default for s in TRAINER_SETTINGS}
    settings.update(progress_bar=False, patience=50, lr_patience=50)
    settings.update(changes)
    return settings


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "lamb"])
def test_every_optimizer_reduces_a_quadratic(optimizer):
    task = LightningTask(torch.nn.Linear(3, 1), Heads.single(), None, settings_with(optimizer=optimizer, lr=0.05))
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


def job_for(data, tmp_path, heads=ENERGY, build=None, val=8):
    stats = compute_statistics(data[:-val], heads)
    return TrainingJob(train=data[:-val], val=data[-val:], collator=SampleCollator(AdjacencyList(cutoff=CUTOFF)),
                       build_model=build or (lambda: schnet(hidden_channels=32, num_filters=32)), run_dir=tmp_path,
                       heads=heads, statistics=stats)


def test_energy_and_forces_model_learns_and_checkpoints_load_without_lightning(tmp_path):
    rep = AdjacencyList(cutoff=CUTOFF)
    data = samples(emt_structures(48), rep)
    job = job_for(data, tmp_path)
    result = fit_with_lightning(job, settings_with(task="energy_forces", lr=3e-3, batch_size=8, max_epochs=12))
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(12))
    assert float(rows[-1]["train_loss"]) < 0.5 * float(rows[0]["train_loss"])
    checkpoint = read_checkpoint(result.best_checkpoint)
    assert checkpoint.heads == ENERGY and checkpoint.statistics == job.statistics
    task = AtomisticTask(schnet(hidden_channels=32, num_filters=32), checkpoint.heads)
    task.load_state_dict(checkpoint.state_dict)
    task.eval()
    batch = job.collator(data[-8:])
    predicted = task(batch)["forces"].detach()
    # the trained forces beat predicting zero force (the mean of forces) on held-out cells
    assert (predicted - batch["forces"]).abs().mean() < 0.6 * batch["forces"].abs().mean()


class LastIsFresh(pl.Callback):
    """At the start of every epoch after the first, last.ckpt holds the epoch just finished."""

    def __init__(self, run_dir):
        self.path, self.seen = run_dir / "checkpoints" / "last.ckpt", []

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch > 0:
            self.seen.append(read_checkpoint(self.path).epoch)


def test_last_checkpoint_is_written_every_epoch_even_without_improvement(tmp_path):
    rep = AdjacencyList(cutoff=CUTOFF)
    data = samples(emt_structures(16, seed=5), rep)
    job = job_for(data, tmp_path, val=4)
    watcher = LastIsFresh(tmp_path)
    # sgd with a tiny lr: the validation loss barely moves, so best.ckpt is rarely rewritten
    fit_with_lightning(job, settings_with(task="energy_forces", optimizer="sgd", lr=1e-9, batch_size=4,
                                          max_epochs=5), callbacks=[watcher])
    assert watcher.seen == [0, 1, 2, 3]
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt").epoch == 4
    assert not [p for p in tmp_path.rglob("*.tmp")]


@pytest.mark.parametrize("changes", [
    dict(amp=True),
    dict(accumulate_grad_batches=3, gradient_clip_val=0.5, optimizer="lamb", lr=1e-2, loss="l1"),
    dict(loss="huber", optimizer="adam"),
], ids=["bf16-amp", "accumulate-clip-lamb-l1", "huber-adam"])
def test_trainer_options_still_learn(tmp_path, changes):
    rep = AdjacencyList(cutoff=CUTOFF)
    heads = Heads.single("energy", "eV", extensive=True)
    data = samples(emt_structures(24, seed=3), rep, heads)
    job = job_for(data, tmp_path, heads=heads, build=lambda: schnet(num_interactions=1), val=4)
    settings = settings_with(batch_size=4, max_epochs=6, lr=3e-3, seed=1)
    settings.update(changes)
    fit_with_lightning(job, settings)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert len(rows) == 6
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


def test_several_heads_with_their_losses_and_weights():
    """A regression head, a bce head and a per-atom head: each loss is its own, weights are normalised."""
    rep = AdjacencyList(cutoff=CUTOFF)
    structures = emt_structures(4)
    for k, s in enumerate(structures):
        s.targets["stable"] = float(k % 2)
        s.atom_targets["charge"] = np.linspace(-0.2, 0.2, len(s))
    heads = Heads((Head("energy", units="eV", extensive=True, weight=3.0), Head("stable", loss="bce", weight=1.0),
                   Head("charge", level="atom", units="e", loss="l1", weight=4.0)))

    class Fixed(torch.nn.Module):
        def forward(self, batch):
            n, g = batch["positions"].shape[0], batch["num_graphs"]
            return {"y": torch.zeros(g, 2, dtype=torch.float64), "atom_y": torch.zeros(n, 1, dtype=torch.float64)}

    task = AtomisticTask(Fixed(), heads)
    batch = SampleCollator(rep, dtype=torch.float64)(samples(structures, rep, heads))
    out = task(batch)
    assert out["y"][:, 1].tolist() == [0.5] * 4  # a zero logit is probability one half
    loss, parts = task.loss(batch, out)
    assert float(parts["stable"]) == pytest.approx(np.log(2.0))
    assert float(parts["charge"]) == pytest.approx(float(batch["atom_y"][:, 0].abs().mean()))
    expected = (3 * parts["energy"] + parts["stable"] + 4 * parts["charge"]) / 8
    assert float(loss) == pytest.approx(float(expected))


def test_a_loss_that_becomes_non_finite_stops_the_run_naming_the_epoch(tmp_path):
    rep = AdjacencyList(cutoff=CUTOFF)
    heads = Heads.single("energy", "eV", extensive=True)
    data = samples(emt_structures(12), rep, heads)

    class Explodes(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))
            self.calls = 0

        def forward(self, batch):
            self.calls += 1
            bad = float("nan") if self.calls > 4 else 1.0
            y = (batch["positions"].sum() * self.scale * bad).expand(batch["num_graphs"], 1)
            return {"y": y}

    job = job_for(data, tmp_path, heads=heads, build=Explodes, val=4)
    with pytest.raises(RunError, match=r"the loss became nan in epoch 1 \(batch"):
        fit_with_lightning(job, settings_with(batch_size=4, max_epochs=5))


class SlowEpochs(pl.Callback):
    """Makes every epoch take a known wall-clock time, so a time budget is reached on a busy machine too."""

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        import time
        time.sleep(0.7)


def test_max_time_stops_at_the_end_of_an_epoch_with_a_validated_model(tmp_path):
    """[trainer] max_time (minutes): training stops at the first epoch end past the budget, and that
    epoch was validated and checkpointed, so the run has a best model even on a tiny budget."""
    rep = AdjacencyList(cutoff=CUTOFF)
    data = samples(emt_structures(12, seed=2), rep)
    job = job_for(data, tmp_path, val=4)
    result = fit_with_lightning(job, settings_with(task="energy_forces", batch_size=4, max_epochs=500,
                                                   max_time=1.5 / 60), callbacks=[SlowEpochs()])
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert 1 <= len(rows) <= 4
    assert all(row["val_loss"] for row in rows)
    assert result.best_checkpoint.exists() and result.best_val_loss is not None
