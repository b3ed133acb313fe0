"""The simulator components: ASE dynamics or a relaxation on each starting structure, then the analyses.

Each component is built from its ``[simulate]`` settings (at validate time too, so a bad
structure or reference file is a validation error), refuses a pipeline whose model never
learnt forces (``check_pipeline``), and ``run(context)`` writes under
``simulate/NAME/``: one extxyz trajectory per starting structure, PNGs, and ``analysis.json``
with every number; the same numbers, averaged over the structures, are the result's metrics.
"""
from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from molplat.errors import RunError
from molplat.results import RunContext, SimulationResult

from molplat_ase import structures as starting

FORCES_FIX = ('set [trainer] task = "energy_forces" (the dataset must give forces) so the model learns them, or '
              'set force = true in [simulate] to run on the gradient of what it learnt anyway')


class Simulator:
    """Settings shared by every simulator; subclasses say how one structure is simulated."""

    name: ClassVar[str] = "simulator"
    #: whether the run moves atoms with forces (all of them do: dynamics and relaxations)
    needs_periodic: ClassVar[bool] = False

    def __init__(self, split: str = "test", structures_file: str | None = None, max_structures: int = 1,
                 dtype: str = "float32", force: bool = False, progress: bool = True, reference: str = "dataset",
                 reference_file: str | None = None, bond_scale: float = 1.2, rdf_rmax: float = 6.0,
                 rdf_bins: int = 120, **settings: Any) -> None:
        self.split, self.max_structures, self.dtype = split, max_structures, dtype
        self.force, self.progress = force, progress
        self.reference, self.bond_scale, self.rdf_rmax, self.rdf_bins = reference, bond_scale, rdf_rmax, rdf_bins
        self.settings = settings
        # files are read now, at validate time, so a bad one never costs a training run
        self.file_frames = (starting.read_frames(structures_file, "structures_file")
                            if structures_file else None)
        if self.file_frames is not None and self.needs_periodic:
            flat = [k for k, atoms in enumerate(self.file_frames[:max_structures]) if not all(atoms.pbc)]
            if flat:
                from molplat.errors import ValidationError

                raise ValidationError(f"[simulate] structures_file: {structures_file}: frame {flat[0]} is not "
                                      f"periodic in x, y and z; {self.name} changes the cell, so give periodic "
                                      f"structures (a lattice and pbc = T T T)")
        self.reference_file = reference_file
        if reference_file:
            starting.read_frames(reference_file, "reference_file", index="0")  # readable; all frames at run time

    # -- validate time ----------------------------------------------------------------------
    def check_pipeline(self, pipeline: Any) -> list[str]:
        """Dynamics and relaxations move atoms with the model's forces: refuse a model never trained on them."""
        trainer = pipeline.components.get("trainer")
        task = trainer.settings.get("task") if trainer is not None else None
        if task == "energy_forces" or self.force:
            return []
        return [f"{self.name} moves atoms with the model's forces, but [trainer] task = {task!r} never trains on "
                f"forces; {FORCES_FIX}"]

    # -- run time ---------------------------------------------------------------------------
    def run(self, context: RunContext) -> SimulationResult:
        model = context.model
        if model.units != "eV" and not self.force:
            raise RunError(f"[simulate] {self.name}: the model predicts {model.target!r} in {model.units!r}, not an "
                           f"energy in eV, so ASE cannot integrate it; train on an energy in eV or set force = true")
        folder = context.directory("simulate", self.name)
        structures = starting.starting_atoms(context.splits, self.split, self.file_frames, self.max_structures)
        reference_frames = (starting.read_frames(self.reference_file, "reference_file")
                            if self.reference_file else None)
        calculator = self._calculator(model)
        from molplat_ase.progress import StepProgress
        from molplat_ase.report import StructureReport

        result = SimulationResult()
        per_structure: dict[str, dict[str, float]] = {}
        with StepProgress(self.total_steps() * len(structures), self.progress, self.name) as progress:
            for k, (sid, atoms) in enumerate(structures):
                stem = f"{k:03d}-{starting.safe_name(sid)}"
                self.check_structure(atoms, sid)
                atoms.calc = calculator
                path = folder / f"{stem}.extxyz"
                series = self.simulate(atoms, path, progress)
                result.trajectories.append(context.relative(path))
                if reference_frames is not None:
                    reference = reference_frames
                elif self.reference == "dataset":
                    reference = starting.dataset_reference(context.splits, atoms)
                else:
                    reference = []
                report = StructureReport(self, folder, stem, sid, context)
                per_structure[sid] = report.analyse(path, series, reference)
                result.files += report.files
        summary = folder / "analysis.json"
        _write_json(summary, {"simulator": self.name, "settings": self.describe(), "structures": per_structure})
        result.files.append(context.relative(summary))
        result.metrics = _mean_metrics(per_structure)
        result.metrics["structures"] = len(per_structure)
        stats = getattr(calculator, "stats", None)
        if stats is not None and getattr(stats, "calls", 0):
            result.metrics["model_share_of_step"] = float(stats.model_seconds / max(stats.seconds, 1e-12))
            result.metrics["neighbor_list_builds"] = int(getattr(stats, "builds", 0))
        return result

    def _calculator(self, model: Any) -> Any:
        """The model's ASE calculator in the chosen precision (molplat.calculator)."""
        parameters = inspect.signature(model.calculator).parameters
        if "dtype" in parameters:
            return model.calculator(dtype=self.dtype)
        if self.dtype != "float32":
            raise RunError(f"[simulate] dtype = {self.dtype!r}: this molplat's calculator runs in float32 only; "
                           f"set dtype = \"float32\" or update molplat")
        return model.calculator()

    def check_structure(self, atoms: Any, sid: str) -> None:
        if self.needs_periodic and not all(atoms.pbc):
            raise RunError(f"[simulate] {self.name}: structure {sid!r} is not periodic in x, y and z; {self.name} "
                           f"changes the cell, so start it from periodic structures (structures_file)")

    def describe(self) -> dict[str, Any]:
        return {"split": self.split, "max_structures": self.max_structures, "dtype": self.dtype, **self.settings}

    def total_steps(self) -> int:
        return int(self.settings.get("steps", 0))

    def simulate(self, atoms: Any, path: Path, progress: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class Dynamics(Simulator):
    """Molecular dynamics: Maxwell-Boltzmann velocities at ``temperature``, then ``steps`` of ``timestep``."""

    thermostat_target: ClassVar[bool] = True

    def __init__(self, steps: int = 1000, timestep: float = 0.5, temperature: float = 300.0, interval: int = 10,
                 seed: int = 0, **settings: Any) -> None:
        super().__init__(steps=steps, timestep=timestep, temperature=temperature, interval=interval, seed=seed,
                         **settings)
        self._seed = seed

    def integrator(self, atoms: Any, timestep: float, rng: np.random.Generator) -> Any:  # pragma: no cover
        raise NotImplementedError

    def simulate(self, atoms: Any, path: Path, progress: Any) -> Any:
        from ase import units
        from ase.md import velocitydistribution as velocities

        from molplat_ase.analysis import Series
        from molplat_ase.recording import FrameWriter

        s = self.settings
        rng = np.random.default_rng(self._seed)
        self._seed += 1  # each structure its own velocities, reproducibly
        if s["temperature"] > 0:  # thermalize_momenta is ASE 3.29's name of MaxwellBoltzmannDistribution
            thermalize = getattr(velocities, "thermalize_momenta", None) or velocities.MaxwellBoltzmannDistribution
            thermalize(atoms, temperature_K=s["temperature"], rng=rng)
            velocities.Stationary(atoms)
            if not any(atoms.pbc):
                velocities.ZeroRotation(atoms)
        dynamics = self.integrator(atoms, s["timestep"] * units.fs, rng)
        series = Series()
        with FrameWriter(path) as writer:
            def record() -> None:
                series.time_fs.append(dynamics.get_time() / units.fs)
                series.potential.append(float(atoms.get_potential_energy()))
                series.kinetic.append(float(atoms.get_kinetic_energy()))
                series.temperature.append(float(atoms.get_temperature()))
                series.volume.append(float(atoms.get_volume()) if all(atoms.pbc) else float("nan"))
                if not np.isfinite(series.potential[-1]):
                    raise RunError(f"[simulate] {self.name}: the energy became {series.potential[-1]} at "
                                   f"{series.time_fs[-1]:.1f} fs; shorten timestep or check the model")
                writer.write(atoms, time_fs=series.time_fs[-1], temperature_K=series.temperature[-1])

            dynamics.attach(record, interval=s["interval"])
            dynamics.attach(progress.step, interval=1)
            dynamics.run(s["steps"])
            if s["steps"] % s["interval"]:
                record()  # the last step is always recorded
        return series

    def target_temperature(self) -> float | None:
        return float(self.settings["temperature"]) if self.thermostat_target else None


class NVE(Dynamics):
    name = "nve"
    thermostat_target = False

    def integrator(self, atoms: Any, timestep: float, rng: np.random.Generator) -> Any:
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep=timestep)


class NVTBerendsen(Dynamics):
    name = "nvt_berendsen"

    def __init__(self, taut: float = 100.0, **settings: Any) -> None:
        super().__init__(**settings)
        self.settings["taut"] = taut

    def integrator(self, atoms: Any, timestep: float, rng: np.random.Generator) -> Any:
        from ase import units
        from ase.md.nvtberendsen import NVTBerendsen as Berendsen

        return Berendsen(atoms, timestep=timestep, temperature_K=self.settings["temperature"],
                         taut=self.settings["taut"] * units.fs)


class NVTLangevin(Dynamics):
    name = "nvt_langevin"

    def __init__(self, friction: float = 0.01, **settings: Any) -> None:
        super().__init__(**settings)
        self.settings["friction"] = friction

    def integrator(self, atoms: Any, timestep: float, rng: np.random.Generator) -> Any:
        from ase import units
        from ase.md.langevin import Langevin

        return Langevin(atoms, timestep=timestep, temperature_K=self.settings["temperature"],
                        friction=self.settings["friction"] / units.fs, fixcm=False, rng=rng)


class NPT(Dynamics):
    name = "npt"
    needs_periodic = True

    def __init__(self, taut: float = 100.0, barostat: str = "berendsen", pressure: float = 0.0,
                 taup: float = 1000.0, compressibility: float = 0.01, **settings: Any) -> None:
        super().__init__(**settings)
        self.settings.update(taut=taut, barostat=barostat, pressure=pressure, taup=taup,
                             compressibility=compressibility)

    def integrator(self, atoms: Any, timestep: float, rng: np.random.Generator) -> Any:
        from ase import units

        s = self.settings
        if "stress" not in getattr(atoms.calc, "implemented_properties", ()):
            raise RunError(f"[simulate] {self.name}: the model's calculator gives no stress, which a barostat needs; "
                           f"update molplat (its calculator computes the stress from the strain derivative)")
        if s["barostat"] == "mtk":
            from ase.md.nose_hoover_chain import IsotropicMTKNPT

            return IsotropicMTKNPT(atoms, timestep=timestep, temperature_K=s["temperature"],
                                   pressure_au=s["pressure"] * units.GPa, tdamp=s["taut"] * units.fs,
                                   pdamp=s["taup"] * units.fs)
        from ase.md.nptberendsen import NPTBerendsen

        return NPTBerendsen(atoms, timestep=timestep, temperature_K=s["temperature"],
                            pressure_au=s["pressure"] * units.GPa, taut=s["taut"] * units.fs,
                            taup=s["taup"] * units.fs, compressibility_au=s["compressibility"] / units.GPa)


class Relax(Simulator):
    """A local minimisation of the energy: positions, and with ``cell_filter`` the cell."""

    name = "relax"

    def __init__(self, optimizer: str = "bfgs", fmax: float = 0.05, steps: int = 500, cell_filter: bool = False,
                 pressure: float = 0.0, interval: int = 1, **settings: Any) -> None:
        settings.setdefault("reference", "none")
        super().__init__(optimizer=optimizer, fmax=fmax, steps=steps, cell_filter=cell_filter, pressure=pressure,
                         interval=interval, **settings)
        if cell_filter and self.file_frames is not None:
            flat = [k for k, a in enumerate(self.file_frames[:self.max_structures]) if not all(a.pbc)]
            if flat:
                from molplat.errors import ValidationError

                raise ValidationError(f"[simulate] cell_filter: structures_file frame {flat[0]} is not periodic; "
                                      f"relax the cell only of periodic structures, or set cell_filter = false")

    def check_structure(self, atoms: Any, sid: str) -> None:
        if self.settings["cell_filter"] and not all(atoms.pbc):
            raise RunError(f"[simulate] cell_filter: structure {sid!r} is not periodic in x, y and z; set "
                           f"cell_filter = false to relax its positions only")

    def simulate(self, atoms: Any, path: Path, progress: Any) -> Any:
        from ase import units
        from ase.filters import FrechetCellFilter
        from ase.optimize import BFGS, FIRE

        from molplat_ase.analysis import Series
        from molplat_ase.recording import FrameWriter

        s = self.settings
        target: Any = atoms
        if s["cell_filter"]:
            if "stress" not in getattr(atoms.calc, "implemented_properties", ()):
                raise RunError("[simulate] cell_filter: the model's calculator gives no stress, which relaxing the "
                               "cell needs; set cell_filter = false or update molplat")
            target = FrechetCellFilter(atoms, scalar_pressure=s["pressure"] * units.GPa)
        optimizer = (BFGS if s["optimizer"] == "bfgs" else FIRE)(target, logfile=None)
        series = Series()
        with FrameWriter(path) as writer:
            def record() -> None:
                forces = target.get_forces()
                series.time_fs.append(float(optimizer.nsteps))
                series.potential.append(float(atoms.get_potential_energy()))
                series.fmax.append(float(np.sqrt((forces ** 2).sum(axis=1).max())))
                series.volume.append(float(atoms.get_volume()) if all(atoms.pbc) else float("nan"))
                writer.write(atoms, step=optimizer.nsteps, fmax=series.fmax[-1])

            optimizer.attach(record, interval=s["interval"])
            optimizer.attach(progress.step, interval=1)
            converged = optimizer.run(fmax=s["fmax"], steps=s["steps"])
            if not series.time_fs or series.time_fs[-1] != optimizer.nsteps:
                record()
        progress.skip(s["steps"] - optimizer.nsteps)
        series.converged = bool(converged)  # type: ignore[attr-defined]
        return series


def _plain(value: Any) -> Any:
    """JSON-safe: numpy numbers as Python numbers, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _write_json(path: Path, data: dict[str, Any]) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(_plain(data), indent=2))
    os.replace(part, path)


def _mean_metrics(per_structure: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each number averaged over the structures (NaN-free ones); a single structure's numbers as they are."""
    keys = sorted({k for numbers in per_structure.values() for k in numbers})
    out: dict[str, float] = {}
    for key in keys:
        values = [v[key] for v in per_structure.values() if key in v and v[key] is not None and np.isfinite(v[key])]
        if values:
            out[key] = float(np.mean(values))
    return out
