"""An ASE Calculator backed by a trained molplat model, for simulators and for users' own ASE scripts."""
from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from molplat.step_inputs import FeaturizedInput, VerletListInput, is_adjacency_list, supports_stress

DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: how much farther than the cutoff the neighbour list of an adjacency_list model looks, Å
DEFAULT_SKIN = 0.5


@dataclass
class CalculatorStats:
    """Where a calculator's time went: ``calls`` to ``calculate``, ``seconds`` inside them,
    ``model_seconds`` in the model's forward and backward passes, ``builds`` of the model input
    (neighbour searches for adjacency_list models; every call for the others). ``cpu_seconds``
    and ``model_cpu_seconds`` are the same in the process's CPU time, which time spent waiting
    for a busy machine's cores does not inflate."""

    calls: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    cpu_seconds: float = 0.0
    model_cpu_seconds: float = 0.0
    builds: int = 0


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"calculator dtype {dtype!r}: use one of {', '.join(DTYPES)}")


class MolplatCalculator(Calculator):
    """Energy (the run's first target, in its units), forces as minus its gradient, and, for
    periodic structures, the stress as the strain derivative of the energy over the volume
    (eV/Å³, ASE's Voigt order xx, yy, zz, yz, xz, xy).

    ``dtype`` ("float32", the default, or "float64") is the precision the network runs in;
    float64 runs on a copy of the weights, so the loaded model is left as it is. For
    ``adjacency_list`` models the input is built once and updated in place, its pairs taken from a
    neighbour list within cutoff + ``skin`` Å that is rebuilt only when an atom has moved more
    than ``skin / 2`` since the last build (see ``molplat.step_inputs``); other representations
    are featurised once per step. ``stats`` says where the time went.

    Dynamics are only physical for a model trained on an energy, ideally with
    ``[trainer] task = "energy_forces"``; a model trained on energies alone still gives
    the gradient of what it learnt, and the calculator says so once.

    For an ensemble run the energy and forces are the members' mean, and
    ``results["energy_std"]`` (eV) and ``results["forces_std"]`` ([n, 3], eV/Å) their
    standard deviation (``ddof = 0``): ``calc.get_property("energy_std", atoms)``.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]
    ensemble_properties = ["energy_std", "forces_std"]

    def __init__(self, model: Any, dtype: str | torch.dtype = "float32", skin: float = DEFAULT_SKIN,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not model.heads.graph or model.heads.graph[0].classification:
            raise ValueError(f"the model of {model.run_dir} predicts no energy (its first target must be a "
                             f"regression target per structure); it cannot drive a simulation")
        if not (isinstance(skin, (int, float)) and skin >= 0 and np.isfinite(skin)):
            raise ValueError(f"calculator skin {skin!r}: a distance in Å, 0 or more")
        self.model = model  # molplat.predict.TrainedModel
        self.dtype = resolve_dtype(dtype)
        self.skin = float(skin)
        self.members = [_in_dtype(task, self.dtype) for task in model.members]
        self.stats = CalculatorStats()
        representation = model.representation
        if is_adjacency_list(representation):
            self.input: VerletListInput | FeaturizedInput = VerletListInput(representation, model.heads, self.dtype,
                                                                            self.skin)
        else:
            self.input = FeaturizedInput(representation, model.heads, self.dtype)
        self._checked_numbers: np.ndarray | None = None
        self._kept_atoms = None
        if model.ensemble_size > 1:
            self.implemented_properties = self.implemented_properties + self.ensemble_properties
        if not model.task.with_forces:
            warnings.warn(f"the model of {model.run_dir} was not trained on forces; its forces are the gradient "
                          f"of its {model.target!r} prediction", stacklevel=2)

    @property
    def neighbor_list_builds(self) -> int:
        """How many times the model input was built from scratch (neighbour searches, for adjacency_list)."""
        return self.input.builds

    def check_state(self, atoms, tol: float = 1e-15) -> list[str]:
        """What changed since the last calculation, among what the model reads (positions, numbers,
        cell, pbc), by exact comparison: ASE's generic check compares every per-atom array with
        ``allclose`` three times per MD step, which costs more than this calculator's own update.
        The first change found is enough for ASE to recalculate, so the others are not looked for."""
        previous = self.atoms
        if previous is None or len(previous) != len(atoms):
            return list(all_changes)
        for name, before, now in (("positions", previous.positions, atoms.positions),
                                  ("cell", previous.cell.array, atoms.cell.array),
                                  ("numbers", previous.numbers, atoms.numbers), ("pbc", previous.pbc, atoms.pbc)):
            if not np.array_equal(before, now):
                return [name]
        return []

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        started, started_cpu = time.perf_counter(), time.process_time()
        if atoms is None:
            atoms = self.atoms
        else:
            self._remember(atoms)
        stress = "stress" in properties
        if stress and not atoms.pbc.any():
            raise PropertyNotImplementedError("stress needs a periodic structure; this one has pbc = "
                                              f"{atoms.pbc.tolist()}")
        if stress and not supports_stress(self.model.representation):
            raise PropertyNotImplementedError(f"stress: the calculator does not know which inputs of representation "
                                              f"{self.model.representation.name!r} a strain moves")
        self._check_elements(atoms)
        with torch.enable_grad():
            step = self.input.step(atoms, strain=stress)
            model_started, model_started_cpu = time.perf_counter(), time.process_time()
            leaves = [step.positions] + ([step.strain] if stress else [])
            energies, gradients = [], []
            for k, task in enumerate(self.members):
                energy = task(step.batch, forces=False)["y"][0, 0]
                # members share the strained inputs: their graph is kept until the last member's backward
                gradients.append(torch.autograd.grad(energy, leaves, retain_graph=k + 1 < len(self.members)))
                energies.append(energy.detach())
            self.stats.model_seconds += time.perf_counter() - model_started
            self.stats.model_cpu_seconds += time.process_time() - model_started_cpu
        self._store(step, energies, gradients, stress, atoms)
        self.stats.calls += 1
        self.stats.builds = self.input.builds
        self.stats.seconds += time.perf_counter() - started
        self.stats.cpu_seconds += time.process_time() - started_cpu

    def _store(self, step, energies, gradients, stress: bool, atoms) -> None:
        if len(self.members) == 1 and not stress and not step.batch.dense:  # the MD step: fewest conversions
            value = float(energies[0])
            forces = np.negative(gradients[0][0].numpy(), dtype=np.float64)
            self.results = {"energy": value, "free_energy": value, "forces": forces}
            return
        energy = torch.stack(energies).double()
        grad = torch.stack([g[0] for g in gradients]).double()
        if step.batch.dense:
            grad = torch.stack([step.batch.flat_atoms(g) for g in grad])
        forces = -grad
        value = float(energy.mean())
        self.results = {"energy": value, "free_energy": value, "forces": forces.mean(0).numpy()}
        if stress:
            volume = abs(float(np.linalg.det(atoms.cell.array)))
            tensor = (torch.stack([g[1] for g in gradients]).double().mean(0) / volume).numpy()
            self.results["stress"] = tensor[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        if len(self.members) > 1:
            self.results["energy_std"] = float(energy.std(unbiased=False))
            self.results["forces_std"] = forces.std(0, unbiased=False).numpy()

    def _remember(self, atoms) -> None:
        """Keep the geometry of this calculation in ``self.atoms`` (what ``check_state`` compares with).

        One Atoms is kept and its positions, numbers, cell and pbc overwritten in place: copying
        the whole Atoms (momenta, info, constraints) every MD step costs more than the rest of
        this calculator's bookkeeping. Other per-atom arrays there are those of the first call."""
        kept = self._kept_atoms
        if kept is None or len(kept) != len(atoms):
            kept = self._kept_atoms = atoms.copy()
        else:
            kept.arrays["positions"][...] = atoms.arrays["positions"]
            kept.arrays["numbers"][...] = atoms.arrays["numbers"]
            kept.cell.array[...] = atoms.cell.array
            kept.pbc[...] = atoms.pbc
        self.atoms = kept

    def _check_elements(self, atoms) -> None:
        """Refuse elements beyond the model's embedding, and warn once about unseen ones, per set of numbers."""
        if self._checked_numbers is not None and np.array_equal(self._checked_numbers, atoms.numbers):
            return
        from molplat.structure import Structure

        for message in self.model.check([Structure.from_atoms(atoms)]):
            warnings.warn(message, stacklevel=3)
        self._checked_numbers = atoms.numbers.copy()


def _in_dtype(task: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """The task with its network in ``dtype``: itself when it already is, else a copy (the target
    scaler stays float64 either way)."""
    floating = [t for t in list(task.model.parameters()) + list(task.model.buffers()) if t.is_floating_point()]
    if all(t.dtype == dtype for t in floating):
        return task
    twin = copy.deepcopy(task)
    twin.model.to(dtype)
    return twin.eval()
