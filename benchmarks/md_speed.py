"""MD steps per second with a trained-model calculator, and the share of each step spent outside
the model's forward and backward pass (issue 13).

The same SchNet weights (molplat-schnet, its default widths: 64 channels, 3 interactions, 50
Gaussians, 5 Å cutoff; untrained, seed 0, float32) drive ASE's velocity Verlet on

- a 20-atom molecule (hexane, C6H14, one RDKit ETKDG conformer), and
- a 500-atom periodic cell (fcc Cu, 5 x 5 x 5 cubic cells, rattled),

through two calculators, alternated within one process:

- ``rebuild``: the calculator molplat had before issue 13, a bare loop of ASE's VelocityVerlet
  with a calculator that predicts through ``TrainedModel.predict`` every step (Structure,
  featurisation and neighbour search, data loader, collation, dtype cast, forward+backward);
- ``reuse``: ``TrainedModel.calculator()`` (float32, skin 0.5 Å): the batch built once and
  updated in place, the neighbour list reused until an atom moves more than half the skin.

"Model" time is the task's forward plus the backward pass for the forces, timed around those
calls alone; everything else in a step (ASE's integrator and bookkeeping, the calculator's
input handling, neighbour searches) is "outside". Torch runs on one thread. Each repeat prints
the 1-minute load average beside it.

    flock /tmp/molplat-bench.lock nice -n 0 .venv/bin/python benchmarks/md_speed.py   # ~5-10 min
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes
from ase.md.verlet import VelocityVerlet
from ase.units import fs, kB

from molplat.models.base import build_model
from molplat.models.heads import Head, Heads
from molplat.predict import TrainedModel
from molplat.representations import AdjacencyList
from molplat.structure import Structure
from molplat.training import AtomisticTask

HEADS = Heads((Head("energy", units="eV", extensive=True),), forces=True)


# --------------------------------------------------------------------------- systems
def hexane():
    """C6H14 (20 atoms), one ETKDG conformer."""
    from ase import Atoms
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles("CCCCCC"))
    AllChem.EmbedMolecule(mol, randomSeed=0)
    AllChem.MMFFOptimizeMolecule(mol)
    positions = mol.GetConformer().GetPositions()
    return Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()], positions=positions)


def copper_cell():
    """500 fcc Cu atoms in a periodic cubic cell, rattled."""
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((5, 5, 5))
    atoms.rattle(0.05, seed=0)
    return atoms


SYSTEMS = {"molecule-20": hexane, "cell-500": copper_cell}


# --------------------------------------------------------------------------- the model
def schnet_model(run_dir: str) -> TrainedModel:
    from molplat_schnet.model import SchNet

    torch.manual_seed(0)
    network = build_model(SchNet, {"cutoff": 5.0}, HEADS)
    return TrainedModel(AtomisticTask(network, HEADS), AdjacencyList(cutoff=5.0), run_dir)


class TimedTask:
    """The task with its calls (forward, and the backward for forces inside it) timed."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.seconds = self.cpu_seconds = 0.0

    def __call__(self, batch, forces=None):
        started, started_cpu = time.perf_counter(), time.process_time()
        out = self.task(batch, forces=forces)
        self.seconds += time.perf_counter() - started
        self.cpu_seconds += time.process_time() - started_cpu
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)


class RebuildingCalculator(Calculator):
    """molplat's calculator before issue 13: ``TrainedModel.predict`` on a new Structure every step."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, model: TrainedModel) -> None:
        super().__init__()
        self.model = model
        self.timed = TimedTask(model.task)
        self.seconds = self.cpu_seconds = 0.0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        started, started_cpu = time.perf_counter(), time.process_time()
        super().calculate(atoms, properties, system_changes)
        task, self.model.task = self.model.task, self.timed
        try:
            out = self.model.predict([Structure.from_atoms(self.atoms)], forces=True)
        finally:
            self.model.task = task
        energy = float(out["y"][0])
        self.results = {"energy": energy, "free_energy": energy, "forces": out["forces"][0]}
        self.seconds += time.perf_counter() - started
        self.cpu_seconds += time.process_time() - started_cpu

    @property
    def model_seconds(self) -> float:
        return self.timed.seconds

    @property
    def model_cpu_seconds(self) -> float:
        return self.timed.cpu_seconds


# --------------------------------------------------------------------------- one measurement
def measure(model: TrainedModel, system: str, path: str, steps: int, warmup: int) -> dict[str, Any]:
    atoms = SYSTEMS[system]()
    rng = np.random.default_rng(0)
    atoms.set_momenta(rng.normal(size=(len(atoms), 3)) * np.sqrt(atoms.get_masses() * 300 * kB)[:, None])
    calc = RebuildingCalculator(model) if path == "rebuild" else model.calculator()
    atoms.calc = calc
    dynamics = VelocityVerlet(atoms, timestep=0.5 * fs)
    dynamics.run(warmup)

    def seconds() -> np.ndarray:
        """Wall and CPU seconds so far in the model's forward+backward and inside the calculator."""
        timer = calc if path == "rebuild" else calc.stats
        return np.array([timer.model_seconds, timer.seconds, timer.model_cpu_seconds, timer.cpu_seconds])

    before = seconds()
    before_builds = 0 if path == "rebuild" else calc.neighbor_list_builds
    started, started_cpu = time.perf_counter(), time.process_time()
    dynamics.run(steps)
    wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    inside, calculator, inside_cpu, calculator_cpu = seconds() - before
    calculator -= inside
    calculator_cpu -= inside_cpu
    return {"system": system, "path": path, "atoms": len(atoms), "steps": steps,
            "steps_per_s": steps / wall, "ms_per_step": 1e3 * wall / steps, "model_ms_per_step": 1e3 * inside / steps,
            "calculator_ms_per_step": 1e3 * calculator / steps,
            "ase_ms_per_step": 1e3 * (wall - inside - calculator) / steps,
            "outside_share": 1.0 - inside / wall,
            "cpu_ms_per_step": 1e3 * cpu / steps, "model_cpu_ms_per_step": 1e3 * inside_cpu / steps,
            "calculator_cpu_ms_per_step": 1e3 * calculator_cpu / steps,
            "ase_cpu_ms_per_step": 1e3 * (cpu - inside_cpu - calculator_cpu) / steps,
            "outside_cpu_share": 1.0 - inside_cpu / cpu,
            "builds": steps if path == "rebuild" else calc.neighbor_list_builds - before_builds,
            "energy": float(atoms.get_potential_energy()), "load": os.getloadavg()[0]}


def summarise(rows: list[dict[str, Any]]) -> str:
    """Two tables, medians with (min-max) over the repeats: wall clock, then CPU time."""
    def span(mine: list[dict[str, Any]], key: str, fmt: str, scale: float = 1.0) -> str:
        values = [r[key] * scale for r in mine]
        return f"{format(np.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"

    lines = []
    for clock, suffix in (("wall clock", ""), ("CPU time (process_time)", "cpu_")):
        lines += [f"{clock}:", f"{'system':12s} {'path':8s} {'atoms':>5s}  {'steps/s':20s} {'ms/step':24s} "
                  f"{'model ms/step':24s} {'calculator ms/step':22s} {'ASE ms/step':20s} {'outside model':24s} "
                  f"{'list builds':12s} load (1 min)", "-" * 182]
        for system in SYSTEMS:
            for path in ("rebuild", "reuse"):
                mine = [r for r in rows if r["system"] == system and r["path"] == path]
                if not mine:
                    continue
                steps_per_s = [1e3 / r[f"{suffix}ms_per_step"] for r in mine]
                rate = f"{np.median(steps_per_s):.1f} ({min(steps_per_s):.1f}-{max(steps_per_s):.1f})"
                builds = f"{sum(r['builds'] for r in mine)}/{sum(r['steps'] for r in mine)}"
                loads = [r["load"] for r in mine]
                lines.append(
                    f"{system:12s} {path:8s} {mine[0]['atoms']:5d}  {rate:20s} "
                    f"{span(mine, suffix + 'ms_per_step', '.2f'):24s} "
                    f"{span(mine, 'model_' + suffix + 'ms_per_step', '.2f'):24s} "
                    f"{span(mine, 'calculator_' + suffix + 'ms_per_step', '.2f'):22s} "
                    f"{span(mine, 'ase_' + suffix + 'ms_per_step', '.2f'):20s} "
                    f"{span(mine, 'outside_' + suffix + 'share', '.1f', 100.0) + ' %':24s} "
                    f"{builds:12s} {min(loads):.1f}-{max(loads):.1f}")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--molecule-steps", type=int, default=400)
    parser.add_argument("--cell-steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default="", help="also write every measurement to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import tempfile

    model = schnet_model(tempfile.mkdtemp(prefix="md-speed-"))
    steps = {"molecule-20": args.molecule_steps, "cell-500": args.cell_steps}
    print(f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} CPUs; "
          f"load average at start {os.getloadavg()}", flush=True)
    rows = []
    for repeat in range(args.repeats):
        for system in SYSTEMS:
            order = ("rebuild", "reuse") if repeat % 2 == 0 else ("reuse", "rebuild")
            for path in order:
                row = measure(model, system, path, steps[system], warmup=max(3, steps[system] // 20))
                row["repeat"] = repeat
                rows.append(row)
                print(f"repeat {repeat} {system:12s} {path:8s} {row['steps_per_s']:8.1f} steps/s  "
                      f"model {row['model_ms_per_step']:7.2f} of {row['ms_per_step']:7.2f} ms/step  "
                      f"outside {100 * row['outside_share']:5.1f} % (calculator {row['calculator_ms_per_step']:.2f}, "
                      f"ASE {row['ase_ms_per_step']:.2f} ms); CPU outside {100 * row['outside_cpu_share']:5.1f} %  "
                      f"builds {row['builds']:4d}  "
                      f"load {row['load']:.2f}", flush=True)
    print()
    print(summarise(rows))
    print(f"\nload average at end {os.getloadavg()}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
