"""The ``atoms_file`` dataset: structures and labels from any file, or folder of files, that ASE reads.

With it a user trains on their own extxyz file, ASE database or folder of CIFs without
writing a plugin. Labels come from a frame's ``info``, its per-atom ``arrays``, or the
results of the calculator ASE attaches when a file stores them (extxyz ``energy=...``,
ASE databases); that calculator is only read, never asked to compute.

Every frame is read once, when the dataset is built, into flat numpy arrays (atomic
numbers, positions, forces and labels, with an offset per structure): the dataset holds
about as much memory as the numbers in the files, and ``get(i)`` only slices. Reading is
deterministic (files in sorted order, frames in file order), and a structure's id is
``FILE:FRAME``, the file relative to ``path`` and the frame's number in that file.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from molplat.data import Dataset
from molplat.errors import ValidationError
from molplat.plugins import close_match
from molplat.structure import Structure, Target

if TYPE_CHECKING:  # pragma: no cover
    from ase import Atoms

log = logging.getLogger(__name__)

CITATION = ("A. H. Larsen et al., The atomic simulation environment, J. Phys.: Condens. Matter 29, "
            "273002 (2017)")
ENERGY_UNITS, STRESS_UNITS = "eV", "eV/Å³"
#: ASE formats that are databases; read row by row so key-value pairs and data become labels
DATABASE_FORMATS = ("db", "json")
#: per-atom arrays every frame has; never labels
GEOMETRY_ARRAYS = ("numbers", "positions")
#: the key settings' defaults: a key changed from its default but found in no frame is a mistake
DEFAULT_KEYS = {"energy_key": "energy", "forces_key": "forces", "stress_key": "stress"}
#: keys listed when a requested one is missing
SHOWN_KEYS = 30


# -- reading frames ----------------------------------------------------------------------------
def _selection(index: str) -> int | slice:
    """``index`` as ASE reads it, refusing database queries and zero steps."""
    from ase.io.formats import string2index

    try:
        chosen = string2index(index)
    except ValueError:
        chosen = None
    if not isinstance(chosen, (int, slice)) or (isinstance(chosen, slice) and chosen.step == 0):
        raise ValidationError(f"[dataset] index: {index!r} is not an ASE frame index; use ':' (every frame), "
                              "'::10' (every tenth), '-1' (the last) or '2:5'")
    return chosen


def _needs_count(chosen: int | slice) -> bool:
    """Whether the chosen frames depend on how many a file has (negative indices or steps)."""
    if isinstance(chosen, int):
        return chosen < 0
    return any(v is not None and v < 0 for v in (chosen.start, chosen.stop, chosen.step))


def _wanted(chosen: int | slice, count: int | None) -> range:
    """The frame numbers ``chosen`` picks from a file of ``count`` frames (None: not counted, not needed)."""
    if count is not None:
        if isinstance(chosen, int):
            position = chosen + count if chosen < 0 else chosen
            return range(position, position + 1) if 0 <= position < count else range(0)
        return range(count)[chosen]
    if isinstance(chosen, int):
        return range(chosen, chosen + 1)
    stop = sys.maxsize if chosen.stop is None else chosen.stop
    return range(chosen.start or 0, stop, chosen.step or 1)


def _format_of(path: Path, format: str | None) -> str:
    from ase.io.formats import filetype

    return format or filetype(str(path))


def _database_rows(path: Path, format: str) -> Iterator["Atoms"]:
    """Rows of an ASE database, with key-value pairs in ``info`` and data in ``info`` or ``arrays``."""
    import ase.db

    db = ase.db.connect(str(path), type=format, create_indices=False, use_lock_file=False)
    for row in db.select():
        atoms = row.toatoms()
        atoms.info.update(row.key_value_pairs)
        for name, value in row.get("data", {}).items():
            array = np.asarray(value)
            if array.ndim == 1 and len(array) == len(atoms) and array.dtype.kind in "biuf":
                atoms.arrays[name] = array
            else:
                atoms.info[name] = value
        yield atoms


def _all_frames(path: Path, format: str | None) -> Iterator["Atoms"]:
    kind = _format_of(path, format)
    if kind in DATABASE_FORMATS:
        yield from _database_rows(path, kind)
    else:
        import ase.io

        yield from ase.io.iread(str(path), index=":", format=format)


def _readable(frames: Callable[[], Iterator["Atoms"]], name: str, in_folder: bool) -> Iterator["Atoms"]:
    """The frames, with anything ASE raises while reading them turned into one line naming the file."""
    iterator = frames()
    with contextlib.closing(iterator):  # type: ignore[type-var]
        while True:
            try:
                atoms = next(iterator)
            except StopIteration:
                return
            except Exception as exc:  # ASE raises a zoo of types (XYZError, UnknownFileTypeError, sqlite3 ...)
                text = str(exc).strip().splitlines()
                fix = "fix the file, or name its ASE format with format = \"...\""
                if in_folder:
                    fix += ", or leave it out with pattern"
                raise ValidationError(f"[dataset] path: ASE cannot read {name} ({type(exc).__name__}: "
                                      f"{text[0] if text else 'no message'}); {fix}") from None
            yield atoms


def _frames_of(path: Path, name: str, format: str | None, chosen: int | slice,
               in_folder: bool) -> Iterator[tuple[int, "Atoms"]]:
    """(frame number, frame) of the chosen frames of one file, streamed in file order.

    Only a negative index or step makes the file be read twice: once to count its frames.
    """
    def read() -> Iterator["Atoms"]:
        return _readable(lambda: _all_frames(path, format), name, in_folder)

    count = sum(1 for _ in read()) if _needs_count(chosen) else None
    wanted = _wanted(chosen, count)
    if not wanted:
        return
    last = max(wanted[0], wanted[-1])
    for number, atoms in enumerate(read()):
        if number > last:
            break
        if number in wanted:
            yield number, atoms


def _files(root: Path, pattern: str) -> list[Path]:
    """The files of a folder matching ``pattern``, sorted; hidden files (``.name``) are left out."""
    try:
        matches = [p for p in root.glob(pattern) if p.is_file()]
    except (ValueError, NotImplementedError) as exc:
        raise ValidationError(f"[dataset] pattern: {pattern!r} is not a glob relative to the folder ({exc}); "
                              "use a pattern such as '*.cif' or '**/*.xyz'") from None
    files = sorted((p for p in matches if not any(part.startswith(".") for part in p.relative_to(root).parts)),
                   key=lambda p: p.relative_to(root).as_posix())
    if not files:
        raise ValidationError(f"[dataset] pattern: no file in {root} matches {pattern!r}; put the structure files "
                              "there or change pattern (such as '*.extxyz')")
    return files


# -- labels of one frame -----------------------------------------------------------------------
def _lookup(atoms: "Atoms", key: str) -> tuple[str, Any] | None:
    """(where, value) of ``key`` in a frame: its info, its per-atom arrays, or its calculator's stored results."""
    if key in atoms.info:
        return "info", atoms.info[key]
    if key in atoms.arrays and key not in GEOMETRY_ARRAYS:
        return "arrays", atoms.arrays[key]
    results = getattr(atoms.calc, "results", None) or {}
    if key in results:
        return "calculator", results[key]
    return None


def _numeric(value: Any) -> np.ndarray | None:
    """``value`` as a float64 array, or None when it is not made of real numbers."""
    try:
        array = np.asarray(value)
    except Exception:  # pragma: no cover - objects numpy cannot hold
        return None
    if array.dtype.kind not in "biuf":
        return None
    return array.astype(np.float64)


def _describe(value: Any) -> str:
    text = repr(value) if not isinstance(value, np.ndarray) else f"an array of shape {list(value.shape)}"
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any, where: str, frame: str, key: str, fix: str) -> float:
    array = _numeric(value)
    if array is None or array.size != 1:
        raise ValidationError(f"{where}: {key!r} of {frame} is {_describe(value)}, not one number; {fix}")
    return float(array.reshape(()))


def _stress_tensor(value: Any, frame: str, key: str) -> np.ndarray:
    """A [3, 3] stress from a full tensor, its 9 values (extxyz) or Voigt order xx, yy, zz, yz, xz, xy."""
    array = _numeric(value)
    if array is not None and array.shape == (9,):
        array = array.reshape(3, 3)
    if array is not None and array.shape == (6,):
        xx, yy, zz, yz, xz, xy = array
        array = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    if array is None or array.shape != (3, 3):
        raise ValidationError(f"[dataset] stress_key: {key!r} of {frame} is {_describe(value)}; a stress is a "
                              f"[3, 3] tensor, its 9 values or Voigt [6], in {STRESS_UNITS}: fix the file or set "
                              "stress_key to the key that holds it")
    return array


def _per_atom_result(key: str, array: np.ndarray | None, natoms: int) -> bool:
    """Whether a stored calculator result holds one value per atom: as ASE declares it, else by its shape."""
    from ase.outputs import ArrayProperty, all_outputs

    declared = all_outputs.get(key)
    if declared is not None:
        return isinstance(declared, ArrayProperty) and declared.shapespec[:1] == ("natoms",)
    return array is not None and array.shape == (natoms,) and natoms > 1


def _extra_value(where: str, value: Any, natoms: int, frame: str, key: str) -> tuple[str, Any]:
    """(level, value) of an extra target: one number per structure (graph) or one per atom (atom)."""
    array = _numeric(value)
    per_atom = where == "arrays" or (where == "calculator" and _per_atom_result(key, array, natoms))
    fix = ("a target is one number per structure (an info key) or one per atom (an array of shape "
           "[atoms]); leave it out of targets")
    if array is None:
        raise ValidationError(f"[dataset] targets: {key!r} of {frame} is {_describe(value)}, not a number; {fix}")
    if per_atom:
        if array.shape != (natoms,):
            raise ValidationError(f"[dataset] targets: {key!r} of {frame} has shape {list(array.shape)} for "
                                  f"{natoms} atoms; {fix}")
        return "atom", array
    if array.size != 1:
        raise ValidationError(f"[dataset] targets: {key!r} of {frame} holds {array.size} numbers; {fix}")
    return "graph", float(array.reshape(()))


# -- gathering every frame ---------------------------------------------------------------------
@dataclass
class _Columns:
    """What the frames contribute, gathered while reading and packed into flat arrays at the end."""

    extra_keys: Sequence[str]
    numbers: list[np.ndarray] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    cells: list[np.ndarray] = field(default_factory=list)
    pbc: list[np.ndarray] = field(default_factory=list)
    file_index: list[int] = field(default_factory=list)
    frame: list[int] = field(default_factory=list)
    energy: list[float] = field(default_factory=list)
    forces: list[np.ndarray | None] = field(default_factory=list)
    stress: list[np.ndarray | None] = field(default_factory=list)
    levels: dict[str, str] = field(default_factory=dict)
    extras: dict[str, list[Any]] = field(init=False)
    seen: dict[str, set[str]] = field(default_factory=lambda: {"info": set(), "arrays": set(), "calculator": set()})

    def __post_init__(self) -> None:
        self.extras = {key: [] for key in self.extra_keys}

    def __len__(self) -> int:
        return len(self.numbers)

    def available(self) -> list[str]:
        """Every key some frame holds, for messages about a missing one."""
        return sorted(set().union(*self.seen.values()))


class AtomsFile(Dataset):
    """Structures from a file or folder ASE reads; targets are what the frames carry.

    ``energy`` (eV, extensive) when frames hold an energy, ``pressure`` (-trace(stress)/3,
    eV/Å³) when they hold a stress, and each key named in ``targets``: an info key with
    one number per structure, or a per-atom array. A target is offered when at least one
    frame has it; frames without a value get NaN, and the run leaves them out (forces
    missing from a frame are None, which energy+forces training refuses).
    """

    targets: dict[str, Target] = {}  # known only per instance: what the user's frames carry
    default_target = ""
    citation = CITATION

    def __init__(self, path: str, pattern: str = "*", format: str | None = None, index: str = ":",
                 energy_key: str = "energy", forces_key: str = "forces", stress_key: str = "stress",
                 targets: Sequence[str] = (), units: dict[str, str] | None = None,
                 extensive: Sequence[str] = ()) -> None:
        if not path:
            raise ValidationError("[dataset] path: not set; set it to an ASE-readable file or a folder of them")
        self.path = Path(path).expanduser().resolve()
        if not self.path.exists():
            raise ValidationError(f"[dataset] path: {self.path} does not exist; fix the path (relative paths are "
                                  "read from the pipeline file's folder)")
        extra = list(targets)
        _check_names(extra, units, extensive, format)
        chosen = _selection(index)
        if self.path.is_dir():
            files, in_folder = _files(self.path, pattern), True
            self.files = [p.relative_to(self.path).as_posix() for p in files]
        else:
            files, in_folder = [self.path], False
            self.files = [self.path.name]

        self._sources = files
        started = time.perf_counter()
        columns = _Columns(extra)
        keys = {"energy": energy_key, "forces": forces_key, "stress": stress_key}
        for position, (file, name) in enumerate(zip(files, self.files)):
            for number, atoms in _frames_of(file, name, format, chosen, in_folder):
                _gather(columns, atoms, position, f"{name}:{number}", number, keys)
        if not len(columns):
            raise ValidationError(f"[dataset] index: {index!r} selects no frame of {self.path}"
                                  f"{' (' + str(len(files)) + ' files)' if in_folder else ''}; use index = ':' "
                                  "for every frame, or check that the files hold structures")
        _check_found(columns, extra, energy_key, forces_key, stress_key, self.path)
        self._pack(columns, extra, dict(units or {}), set(extensive), keys)
        log.info("atoms_file: read %d structures from %d file(s) under %s in %.1f s", len(self), len(files),
                 self.path, time.perf_counter() - started)

    # -- packing -------------------------------------------------------------------------------
    def _pack(self, columns: _Columns, extra: list[str], units: dict[str, str], extensive: set[str],
              keys: dict[str, str]) -> None:
        counts = np.array([len(z) for z in columns.numbers], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        self._numbers = np.concatenate(columns.numbers).astype(np.int16)
        self._positions = np.concatenate(columns.positions)
        self._cells = np.stack(columns.cells)
        self._pbc = np.stack(columns.pbc)
        self._file_index = np.asarray(columns.file_index, dtype=np.int32)
        self._frame = np.asarray(columns.frame, dtype=np.int64)

        has_forces = np.array([f is not None for f in columns.forces])
        self._has_forces = has_forces
        self._forces = np.concatenate([f if f is not None else np.full((n, 3), np.nan)
                                       for f, n in zip(columns.forces, counts)]) if has_forces.any() else None
        has_stress = np.array([s is not None for s in columns.stress])
        self._has_stress = has_stress
        self._stress = np.stack([s if s is not None else np.full((3, 3), np.nan)
                                 for s in columns.stress]) if has_stress.any() else None

        offered: dict[str, Target] = {}
        graph: list[np.ndarray] = []
        energy = np.asarray(columns.energy, dtype=np.float64)
        if not np.isnan(energy).all():
            offered["energy"] = Target("energy", ENERGY_UNITS, f"energy ({keys['energy']!r} of the frames: an info "
                                       "key or the calculator's stored result)", extensive=True)
            graph.append(energy)
        atom: list[np.ndarray] = []
        for key in extra:
            level = columns.levels[key]
            if level == "atom" and key in extensive:
                raise ValidationError(f"[dataset] extensive: {key!r} is one value per atom; only structure-level "
                                      "targets (totals) are extensive: remove it from extensive")
            description = f"{key!r} of the frames ({'one value per atom' if level == 'atom' else 'info key'})"
            offered[key] = Target(key, units.get(key, "unspecified"), description, level=level,
                                  extensive=key in extensive)
            values = columns.extras[key]
            if level == "graph":
                graph.append(np.array([np.nan if v is None else v for v in values], dtype=np.float64))
            else:
                atom.append(np.concatenate([np.full(n, np.nan) if v is None else v for v, n in zip(values, counts)]))
        if self._stress is not None:
            if "pressure" in offered:
                raise ValidationError("[dataset] targets: 'pressure' is offered already, from the stress "
                                      f"({keys['stress']!r}); remove it from targets")
            offered["pressure"] = Target("pressure", STRESS_UNITS, "-trace(stress)/3, from "
                                         f"{keys['stress']!r} of the frames")
            graph.append(-np.trace(self._stress, axis1=1, axis2=2) / 3.0)
        self.targets = offered
        self._graph_names = [name for name, t in offered.items() if t.level == "graph"]
        self._atom_names = [name for name, t in offered.items() if t.level == "atom"]
        self._graph = np.stack(graph, axis=1) if graph else np.zeros((len(counts), 0))
        self._atom = np.stack(atom, axis=1) if atom else None
        self.default_target = next(iter(offered))

    # -- the Dataset contract ------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Changes when a file read changes (size or modification time), so a stale store is rebuilt."""
        return ";".join(f"{name}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
                        for name, path in zip(self.files, self._sources))

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def get(self, i: int) -> Structure:
        start, stop = int(self._offsets[i]), int(self._offsets[i + 1])
        pbc = self._pbc[i]
        return Structure(
            numbers=self._numbers[start:stop],
            positions=self._positions[start:stop].copy(),
            cell=self._cells[i].copy() if pbc.any() else None,
            pbc=pbc,
            forces=self._forces[start:stop].copy() if self._has_forces[i] else None,
            targets=dict(zip(self._graph_names, self._graph[i].tolist())),
            id=self.id_of(i),
            atom_targets={name: self._atom[start:stop, k].copy() for k, name in enumerate(self._atom_names)},
            stress=self._stress[i].copy() if self._has_stress[i] else None,
        )

    def id_of(self, i: int) -> str:
        """``FILE:FRAME`` of structure ``i``: its file relative to ``path`` and its frame number there."""
        return f"{self.files[self._file_index[i]]}:{self._frame[i]}"

    @property
    def ids(self) -> list[str]:
        return [self.id_of(i) for i in range(len(self))]


def _check_names(extra: list[str], units: Any, extensive: Sequence[str], format: str | None) -> None:
    """The settings that need no frame to check: target names, units, extensive, format."""
    repeated = sorted({k for k in extra if extra.count(k) > 1})
    if repeated:
        raise ValidationError(f"[dataset] targets: {', '.join(map(repr, repeated))} named twice; name each once")
    if "energy" in extra:
        raise ValidationError("[dataset] targets: 'energy' is the target energy_key fills; set energy_key to the "
                              "key holding the energy and remove 'energy' from targets")
    if not isinstance(units, (dict, type(None))) or any(not isinstance(k, str) or not isinstance(v, str)
                                                        for k, v in (units or {}).items()):
        raise ValidationError(f"[dataset] units: {str(units)[:80]} must map target names to unit names, such as "
                              "units = {gap = \"eV\", charge = \"e\"}")
    for key in units or {}:
        if key not in extra:
            listed = ", ".join(extra) or "none"
            raise ValidationError(f"[dataset] units: {key!r} is not one of the targets{close_match(key, extra)} "
                                  f"(targets: {listed}); energy is in eV and pressure in {STRESS_UNITS} already; "
                                  "add the key to targets or remove it from units")
    for key in extensive:
        if key not in extra:
            raise ValidationError(f"[dataset] extensive: {key!r} is not one of the targets{close_match(key, extra)} "
                                  f"(targets: {', '.join(extra) or 'none'}); add it to targets or remove it")
    if format is not None:
        from ase.io.formats import ioformats

        readable = sorted(name for name, f in ioformats.items() if f.can_read)
        if format not in readable:
            raise ValidationError(f"[dataset] format: ASE reads no format {format!r}{close_match(format, readable)} "
                                  "(leave format out to let ASE guess from the file, or give an ASE format name: "
                                  "extxyz, cif, vasp, db, ...)")


def _gather(columns: _Columns, atoms: "Atoms", position: int, frame: str, number: int,
            keys: dict[str, str]) -> None:
    """Add one frame's geometry and labels to ``columns``."""
    natoms = len(atoms)
    if natoms == 0:
        raise ValidationError(f"[dataset] path: {frame} has no atoms; remove the frame from the file, or choose "
                              "frames with index")
    for where, names in (("info", atoms.info), ("arrays", atoms.arrays),
                         ("calculator", getattr(atoms.calc, "results", None) or {})):
        columns.seen[where].update(k for k in names if k not in GEOMETRY_ARRAYS)
    columns.numbers.append(np.asarray(atoms.numbers))
    columns.positions.append(np.asarray(atoms.positions, dtype=np.float64))
    columns.cells.append(np.asarray(atoms.cell.array, dtype=np.float64))
    columns.pbc.append(np.asarray(atoms.pbc, dtype=bool))
    columns.file_index.append(position)
    columns.frame.append(number)

    found = _lookup(atoms, keys["energy"])
    columns.energy.append(np.nan if found is None else _number(
        found[1], "[dataset] energy_key", frame, keys["energy"],
        "set energy_key to the info key or calculator result holding the energy in eV"))

    found = _lookup(atoms, keys["forces"])
    forces = None
    if found is not None:
        forces = _numeric(found[1])
        if forces is None or forces.shape != (natoms, 3):
            raise ValidationError(f"[dataset] forces_key: {keys['forces']!r} of {frame} is {_describe(found[1])} "
                                  f"for {natoms} atoms; forces are [atoms, 3] in eV/Å: fix the file or set "
                                  "forces_key to the array that holds them")
    columns.forces.append(forces)

    found = _lookup(atoms, keys["stress"])
    columns.stress.append(None if found is None else _stress_tensor(found[1], frame, keys["stress"]))

    for key, values in columns.extras.items():
        found = _lookup(atoms, key)
        if found is None:
            values.append(None)
            continue
        level, value = _extra_value(found[0], found[1], natoms, frame, key)
        first = columns.levels.setdefault(key, level)
        if first != level:
            per = {"atom": "atom", "graph": "structure"}
            raise ValidationError(f"[dataset] targets: {key!r} is one value per {per[level]} in {frame} but one per "
                                  f"{per[first]} in an earlier frame; make it one or the other in every frame")
        values.append(value)


def _check_found(columns: _Columns, extra: list[str], energy_key: str, forces_key: str, stress_key: str,
                 root: Path) -> None:
    """A requested key that no frame holds is a typo (or the wrong file): one line with what there is."""
    available = columns.available()
    shown = ", ".join(available[:SHOWN_KEYS]) + (" ..." if len(available) > SHOWN_KEYS else "") or "none"

    def missing(setting: str, key: str) -> ValidationError:
        return ValidationError(f"[dataset] {setting}: no frame of {root} has {key!r}{close_match(key, available)} "
                               f"(info keys, arrays and stored results: {shown}); fix the name or leave it out")

    for key in extra:
        if key not in columns.levels:
            raise missing("targets", key)
    has_energy = not np.isnan(columns.energy).all()
    for setting, key, present in (("energy_key", energy_key, has_energy),
                                  ("forces_key", forces_key, any(f is not None for f in columns.forces)),
                                  ("stress_key", stress_key, any(s is not None for s in columns.stress))):
        if key != DEFAULT_KEYS[setting] and not present:
            raise missing(setting, key)
    if not extra and not has_energy and all(s is None for s in columns.stress):
        raise ValidationError(f"[dataset] targets: no frame of {root} has an energy ({energy_key!r}) or a stress, "
                              f"and targets names no other key, so there is nothing to learn (keys: {shown}); set "
                              "energy_key, or list info keys or arrays in targets")
