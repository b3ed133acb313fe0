"""Files in and out of ``molplat predict``: structures to predict on, with the reference values
they carry, and predictions written as CSV (every digit) or extxyz (energy and forces that
``ase.io.read`` gives back)."""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molplat.errors import ValidationError

FORCE_UNITS = "eV/Å"


def full_precision(value: Any) -> str:
    """A number with every digit a float64 holds (``repr``): total energies lose nothing."""
    return repr(float(value))


@dataclass
class Frame:
    """One structure read from an input file, with the reference values the file carries."""

    file: str
    index: int
    atoms: Any
    structure: Any
    reference: dict[str, float] = field(default_factory=dict)
    atom_reference: dict[str, Any] = field(default_factory=dict)
    reference_forces: Any = None

    @property
    def formula(self) -> str:
        return self.atoms.get_chemical_formula()


def energy_head(heads: Any) -> Any:
    """The head that is a potential energy in eV (ASE's energy): the first of a forces run, or one named energy."""
    if heads.forces:
        return heads.graph[0]
    return next((h for h in heads.graph if h.name == "energy" and h.units == "eV"), None)


def _finite_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _attach_references(frame: Frame, heads: Any) -> None:
    """Reference values in the input: ``info[TARGET]``, the calculator's energy and forces, ``arrays[TARGET]``."""
    import numpy as np

    atoms = frame.atoms
    results = getattr(atoms.calc, "results", None) or {}
    energy = energy_head(heads)
    for head in heads.graph:
        value = atoms.info.get(head.name)
        if value is None and energy is not None and head.name == energy.name:
            value = results.get("energy")
        number = _finite_number(value)
        if number is not None:
            frame.reference[head.name] = number
    for head in heads.atom:
        values = atoms.arrays.get(head.name)
        if values is not None and np.shape(values) == (len(atoms),):
            frame.atom_reference[head.name] = np.asarray(values, dtype=np.float64)
    forces = results.get("forces", atoms.arrays.get("forces"))
    if heads.forces and forces is not None and np.shape(forces) == (len(atoms), 3):
        frame.reference_forces = np.asarray(forces, dtype=np.float64)


def read_frames(paths: Sequence[str], heads: Any) -> list[Frame]:
    """Every structure of every file, each checked; a file or structure that cannot be used is one error line."""
    import ase.io

    from molplat.structure import Structure

    frames: list[Frame] = []
    for path in paths:
        try:
            images = ase.io.read(path, index=":")
        except Exception as exc:  # ASE raises many types for unreadable files; each is the user's input
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ValidationError(f"{path}: ASE cannot read it ({type(exc).__name__}: {first[:200]}); pass an "
                                  f"ASE-readable file such as .xyz, .extxyz or .cif") from None
        if not isinstance(images, list):
            images = [images]
        if not images:
            raise ValidationError(f"{path}: holds no structures; pass a file with at least one")
        for index, atoms in enumerate(images):
            if len(atoms) == 0:
                raise ValidationError(f"{path}: structure {index} has no atoms; remove it from the file")
            try:
                structure = Structure.from_atoms(atoms, id=atoms.get_chemical_formula())
            except ValueError as exc:
                raise ValidationError(f"{path}: structure {index}: {exc}; fix or remove it") from None
            frame = Frame(path, index, atoms, structure)
            _attach_references(frame, heads)
            frames.append(frame)
    return frames


@dataclass
class Predictions:
    """What the model predicted for each frame, by target; forces in eV/Å.

    ``graph_std``, ``atom_std`` and ``forces_std`` hold an ensemble's spread (the same
    shapes as the values) and are None for a single model."""

    heads: Any
    graph: dict[str, Any]
    atom: dict[str, list[Any]]
    forces: list[Any] | None
    graph_std: dict[str, Any] | None = None
    atom_std: dict[str, list[Any]] | None = None
    forces_std: list[Any] | None = None

    @classmethod
    def of(cls, result: dict[str, Any], heads: Any) -> "Predictions":
        targets = result["targets"]
        graph = {h.name: targets[h.name]["values"] for h in heads.graph}
        atom = {h.name: targets[h.name]["values"] for h in heads.atom}
        spread = all("std" in targets[name] for name in heads.names)
        graph_std = {h.name: targets[h.name]["std"] for h in heads.graph} if spread else None
        atom_std = {h.name: targets[h.name]["std"] for h in heads.atom} if spread else None
        return cls(heads, graph, atom, result.get("forces"), graph_std, atom_std, result.get("forces_std"))

    @property
    def ensemble(self) -> bool:
        return self.graph_std is not None


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _error(predicted: float, reference: float | None) -> list[str]:
    if reference is None:
        return ["", ""]
    return [full_precision(reference), full_precision(predicted - reference)]


def atoms_csv_path(output: Path) -> Path:
    """Where per-atom predictions (atom targets, forces) of ``-o OUT.csv`` go: ``OUT.atoms.csv`` beside it."""
    return output.with_name(output.stem + ".atoms.csv")


def write_csv(output: Path, frames: list[Frame], predictions: Predictions) -> list[Path]:
    """OUT.csv: a row per structure and graph target; OUT.atoms.csv: a row per atom and per-atom quantity.

    An ensemble's files have a ``predicted_std`` column after ``predicted``: the members' spread."""
    from molplat.files import atomic_write_text

    heads = predictions.heads
    spread = predictions.ensemble
    std_column = ["predicted_std"] if spread else []
    rows = []
    for k, frame in enumerate(frames):
        for head in heads.graph:
            value = float(predictions.graph[head.name][k])
            std = [full_precision(predictions.graph_std[head.name][k])] if spread else []
            rows.append([frame.file, frame.index, frame.formula, head.name, head.units, full_precision(value), *std,
                         *_error(value, frame.reference.get(head.name))])
    written = [atomic_write_text(output, _csv_text(["file", "index", "formula", "target", "units", "predicted",
                                                    *std_column, "reference", "error"], rows))]
    if not heads.atom and predictions.forces is None:
        return written
    atom_rows = []
    for k, frame in enumerate(frames):
        for atom, z in enumerate(frame.structure.numbers):
            base = [frame.file, frame.index, atom, frame.atoms[atom].symbol]
            for head in heads.atom:
                value = float(predictions.atom[head.name][k][atom])
                known = frame.atom_reference.get(head.name)
                std = [full_precision(predictions.atom_std[head.name][k][atom])] if spread else []
                atom_rows.append([*base, head.name, head.units, full_precision(value), *std,
                                  *_error(value, None if known is None else float(known[atom]))])
            if predictions.forces is not None:
                for axis, label in enumerate(("force_x", "force_y", "force_z")):
                    value = float(predictions.forces[k][atom, axis])
                    known = frame.reference_forces
                    std = [full_precision(predictions.forces_std[k][atom, axis])] \
                        if spread and predictions.forces_std is not None else [""] * spread
                    atom_rows.append([*base, label, FORCE_UNITS, full_precision(value), *std,
                                      *_error(value, None if known is None else float(known[atom, axis]))])
    written.append(atomic_write_text(atoms_csv_path(output), _csv_text(
        ["file", "index", "atom", "element", "quantity", "units", "predicted", *std_column, "reference", "error"],
        atom_rows)))
    return written


def write_extxyz(output: Path, frames: list[Frame], predictions: Predictions) -> list[Path]:
    """The structures with their predictions: the energy and forces through a SinglePointCalculator
    (``ase.io.read(OUT).get_potential_energy()``), other targets in ``info`` and ``arrays``; an
    ensemble's spread as ``NAME_std`` in ``info`` (graph targets) and ``arrays`` (per-atom
    targets, ``forces_std``)."""
    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    from molplat.files import atomic_write_text

    heads = predictions.heads
    energy = energy_head(heads)
    images = []
    for k, frame in enumerate(frames):
        source = frame.atoms
        atoms = Atoms(numbers=source.get_atomic_numbers(), positions=source.get_positions(),
                      cell=source.get_cell(), pbc=source.get_pbc())
        atoms.info["source"] = f"{frame.file}:{frame.index}"
        results: dict[str, Any] = {}
        for head in heads.graph:
            value = float(predictions.graph[head.name][k])
            if energy is not None and head.name == energy.name:
                results["energy"] = value
            if not (head.name == "energy" and "energy" in results):  # extxyz keeps one "energy"
                atoms.info[head.name] = value
            if predictions.graph_std is not None:
                atoms.info[head.name + "_std"] = float(predictions.graph_std[head.name][k])
        for head in heads.atom:
            atoms.arrays[head.name] = predictions.atom[head.name][k].astype(float)
            if predictions.atom_std is not None:
                atoms.arrays[head.name + "_std"] = predictions.atom_std[head.name][k].astype(float)
        if predictions.forces is not None:
            results["forces"] = predictions.forces[k].astype(float)
        if predictions.forces_std is not None:
            atoms.arrays["forces_std"] = predictions.forces_std[k].astype(float)
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        images.append(atoms)
    text = io.StringIO()
    ase.io.write(text, images, format="extxyz")
    return [atomic_write_text(output, text.getvalue())]
