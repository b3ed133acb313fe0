"""Trajectories written frame by frame as extended XYZ, moved into place only when complete."""
from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any


class FrameWriter:
    """Appends frames (positions, cell, energy, forces and ``info`` numbers) to ``path.part``; the
    finished file replaces ``path`` at the end, and a failed run leaves no half-written trajectory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.part = self.path.with_name(self.path.name + ".part")
        self._handle: Any = None
        self.frames = 0

    def __enter__(self) -> "FrameWriter":
        self._handle = open(self.part, "w", encoding="utf-8")
        return self

    def write(self, atoms: Any, **info: float) -> None:
        import ase.io
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        # a fresh frame: the starting structure's labels (its energy, forces, info) are not this frame's
        frame = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc,
                      momenta=atoms.get_momenta())
        frame.calc = SinglePointCalculator(frame, energy=float(atoms.get_potential_energy()),
                                           forces=atoms.get_forces())
        frame.info.update({k: float(v) for k, v in info.items()})
        ase.io.write(self._handle, frame, format="extxyz")
        self._handle.flush()
        self.frames += 1

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._handle.close()
        if kind is None:
            os.replace(self.part, self.path)
        else:
            self.part.unlink(missing_ok=True)
