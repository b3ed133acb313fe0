"""Reading the files OC20 publishes (and the IS2RE files users convert from its LMDBs).

S2EF train/val tarballs hold pairs ``N.extxyz.xz`` + ``N.txt.xz``; once uncompressed
(``xz -d``, or fairchem's ``uncompress.py``) each ``N.extxyz`` holds frames whose comment
line reads ``Lattice="..." Properties=species:S:1:pos:R:3:move_mask:L:1:tags:I:1:forces:R:3
energy=... free_energy=... pbc="T T T"``, and line k of ``N.txt`` describes frame k:
``random<system>,frame<number>,<reference energy>``. ``energy`` is the raw DFT total energy
(eV); minus the reference energy (the clean slab plus gas-phase references of the
adsorbate's atoms) it is the adsorption energy that OC20's S2EF models learn. ``move_mask``
is False for fixed atoms (ASE reads it as a FixAtoms constraint), ``tags`` are 0 subsurface,
1 surface, 2 adsorbate.

IS2RE is published as LMDBs of pickled PyTorch Geometric objects. Reading those would run
code stored in a downloaded file, so this module never opens them: users convert them once
with fairchem (README) to extxyz or an ASE database of initial structures with the relaxed
energy in ``info``.

Every problem is one ValidationError naming the file (and the line or frame), the key and
the fix; nothing here unpickles anything.
"""
from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from molplat.errors import ValidationError
from molplat_oc20.frames import FrameBuilder, Frames

if TYPE_CHECKING:  # pragma: no cover
    from ase import Atoms

CONVERT_HINT = "convert the LMDB to extxyz with the short fairchem script in the molplat-oc20 README"
_NUMBERED = re.compile(r"(\d+)")


def natural_key(path: Path) -> list[Any]:
    """File names in numeric order (2.extxyz before 10.extxyz)."""
    return [int(part) if part.isdigit() else part for part in _NUMBERED.split(path.name)]


def find_files(root: Path, pattern: str, what: str) -> list[Path]:
    """The files ``pattern`` matches under ``root`` (a folder), or ``[root]`` for a file; hidden files are left out."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ValidationError(f"[dataset] path: {root} does not exist; set path to the folder of {what} (relative "
                              "paths are read from the pipeline file's folder), or leave it out for the dev set")
    try:
        files = sorted((p for p in root.glob(pattern) if p.is_file() and not p.name.startswith(".")), key=natural_key)
    except (ValueError, NotImplementedError) as exc:
        raise ValidationError(f"[dataset] pattern: {pattern!r} is not a glob relative to {root} ({exc}); use a "
                              "pattern such as '*.extxyz'") from None
    if not files:
        compressed = sorted(root.glob("*.xz"))
        lmdbs = sorted(root.glob("*.lmdb"))
        if lmdbs:
            raise ValidationError(f"[dataset] path: {root} holds LMDB files ({lmdbs[0].name}, ...), which hold pickled "
                                  f"objects molplat never loads; {CONVERT_HINT}")
        if compressed:
            raise ValidationError(f"[dataset] path: {root} holds compressed files ({compressed[0].name}, ...) but no "
                                  f"{pattern!r}; uncompress them first (xz -d {root}/*.xz, or fairchem's "
                                  "uncompress.py)")
        raise ValidationError(f"[dataset] pattern: no file in {root} matches {pattern!r}; put {what} there or "
                              "change pattern")
    return files


# -- the S2EF .txt metadata ------------------------------------------------------------------------------------
def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"[dataset] path: cannot read {path} ({exc.strerror or exc}); check its permissions") \
            from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"[dataset] path: {path} is not UTF-8 text (byte {exc.start}); OC20 .extxyz/.txt files "
                              "are plain text: uncompress .xz files first, or download the file again") from None


def read_metadata(path: Path) -> list[tuple[str, int, float]]:
    """(system id, frame number, reference energy in eV) for each line of an S2EF ``.txt`` file."""
    rows = []
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for number, line in enumerate(lines, start=1):
        fields = [f.strip() for f in line.split(",")]
        where = f"{path}, line {number}"
        if len(fields) != 3 or not fields[0]:
            raise ValidationError(f"[dataset] path: {where} is {line[:60]!r}, not 'system_id,frame_number,"
                                  "reference_energy' (such as 'random2181546,frame23,-102.35'); fix or regenerate "
                                  "the file")
        frame = fields[1][5:] if fields[1].startswith("frame") else fields[1]
        try:
            fid = int(frame)
            reference = float(fields[2])
        except ValueError:
            raise ValidationError(f"[dataset] path: {where}: frame_number {fields[1]!r} or reference_energy "
                                  f"{fields[2]!r} is not a number; fix or regenerate the file") from None
        if not math.isfinite(reference):
            raise ValidationError(f"[dataset] path: {where}: reference_energy is {fields[2]}; every frame needs a "
                                  "finite reference energy (eV): fix the line or leave the file out with pattern")
        rows.append((fields[0], fid, reference))
    return rows


# -- frames read by ASE --------------------------------------------------------------------------------------------
def _ase_frames(path: Path) -> Iterator["Atoms"]:
    """The frames of an extxyz file or an ASE database, ASE's errors turned into one line naming the file."""
    if path.suffix == ".lmdb":
        raise ValidationError(f"[dataset] path: {path} is an LMDB of pickled objects, which molplat never loads; "
                              f"{CONVERT_HINT}")
    if path.suffix == ".db":
        yield from _database_rows(path)
        return
    read_text(path)  # one clear line for a binary or non-UTF-8 file before ASE sees it
    import ase.io

    iterator = ase.io.iread(str(path), index=":", format="extxyz")
    with contextlib.closing(iterator):  # type: ignore[type-var]
        number = 0
        while True:
            try:
                atoms = next(iterator)
            except StopIteration:
                return
            except Exception as exc:  # ASE raises XYZError, ValueError, IndexError, ... for broken files
                text = str(exc).strip().splitlines()
                raise ValidationError(f"[dataset] path: ASE cannot read frame {number} of {path} "
                                      f"({type(exc).__name__}: {text[0] if text else 'no message'}); the file is "
                                      "truncated or not extxyz: download or convert it again") from None
            number += 1
            yield atoms


def _database_rows(path: Path) -> Iterator["Atoms"]:
    import ase.db

    try:
        db = ase.db.connect(str(path), type="db", create_indices=False, use_lock_file=False)
        rows = list(db.select())
    except Exception as exc:
        raise ValidationError(f"[dataset] path: ASE cannot open the database {path} ({type(exc).__name__}: {exc}); "
                              "check it is an ASE SQLite database") from None
    for row in rows:
        atoms = row.toatoms()
        atoms.info.update(row.key_value_pairs)
        yield atoms


def _stored(atoms: "Atoms", key: str) -> Any:
    """A value stored with the frame: the calculator's results (energy=, forces), then info, then arrays."""
    results = getattr(atoms.calc, "results", None) or {}
    if key in results:
        return results[key]
    if key in atoms.info:
        return atoms.info[key]
    return atoms.arrays.get(key)


def _tags_and_fixed(atoms: "Atoms", where: str) -> tuple[np.ndarray, np.ndarray]:
    from ase.constraints import FixAtoms

    if "tags" not in atoms.arrays:
        raise ValidationError(f"[dataset] path: {where} has no 'tags' column (0 subsurface, 1 surface, 2 adsorbate); "
                              "OC20 files carry one: write it with atoms.set_tags(...) when converting")
    tags = np.asarray(atoms.arrays["tags"]).astype(np.int64)
    if not np.isin(tags, (0, 1, 2)).all():
        raise ValidationError(f"[dataset] path: {where} has tags {sorted(set(tags.tolist()))}; OC20 tags are 0 "
                              "(subsurface), 1 (surface) and 2 (adsorbate): fix the file")
    fixed = np.zeros(len(atoms), dtype=bool)
    if "fixed" in atoms.arrays:
        fixed |= np.asarray(atoms.arrays["fixed"]).astype(bool).reshape(len(atoms))
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            fixed[constraint.index] = True
    return tags, fixed


def _number(value: Any, where: str, key: str, fix: str) -> float:
    if value is None:
        raise ValidationError(f"[dataset] path: {where} has no {key!r}; {fix}")
    try:
        number = float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise ValidationError(f"[dataset] path: {where}: {key!r} is {str(value)[:40]!r}, not one number; {fix}") \
            from None
    if not math.isfinite(number):
        raise ValidationError(f"[dataset] path: {where}: {key!r} is {number}; {fix}")
    return number


def _forces(atoms: "Atoms", where: str) -> np.ndarray:
    value = _stored(atoms, "forces")
    if value is None:
        raise ValidationError(f"[dataset] path: {where} has no 'forces' column; S2EF frames carry forces in eV/Å "
                              "(Properties=...:forces:R:3): use the train/val files, not the test LMDBs")
    forces = np.asarray(value, dtype=np.float64)
    if forces.shape != (len(atoms), 3) or not np.isfinite(forces).all():
        raise ValidationError(f"[dataset] path: {where}: forces have shape {list(forces.shape)} or non-finite values "
                              f"for {len(atoms)} atoms; expected [atoms, 3] finite eV/Å: fix the file")
    return forces


def _geometry(atoms: "Atoms", where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if len(atoms) == 0:
        raise ValidationError(f"[dataset] path: {where} has no atoms; remove the frame")
    if not np.isfinite(positions).all():
        raise ValidationError(f"[dataset] path: {where} has non-finite positions; fix the file")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    if pbc.any() and abs(np.linalg.det(cell)) < 1e-8:
        raise ValidationError(f"[dataset] path: {where} is periodic along {pbc.tolist()} without a cell (Lattice=); "
                              "OC20 slabs carry their cell: fix the file")
    return np.asarray(atoms.numbers), positions, cell, pbc


def read_s2ef(root: Path, pattern: str) -> Frames:
    """Every frame of the S2EF files under ``root``, with per-frame ``total_energy``, ``reference_energy`` and
    ``adsorption_energy`` (the total minus the reference), all in eV."""
    builder = FrameBuilder()
    for path in find_files(root, pattern, "OC20 S2EF files (N.extxyz beside N.txt)"):
        txt = path.with_suffix(".txt")
        if not txt.is_file():
            raise ValidationError(f"[dataset] path: {path.name} has no metadata file {txt.name} beside it in "
                                  f"{path.parent}; the S2EF download pairs every N.extxyz with N.txt "
                                  "(system_id,frame_number,reference_energy): uncompress both")
        rows = read_metadata(txt)
        count = 0
        for k, atoms in enumerate(_ase_frames(path)):
            where = f"frame {k} of {path}"
            if k >= len(rows):
                raise ValidationError(f"[dataset] path: {path} has more frames than {txt.name} has lines "
                                      f"({len(rows)}); the two files must match line for frame: download them again")
            system, fid, reference = rows[k]
            energy = _number(_stored(atoms, "energy"), where, "energy",
                             "S2EF frames carry energy=... (eV) on their comment line: fix the file")
            numbers, positions, cell, pbc = _geometry(atoms, where)
            tags, fixed = _tags_and_fixed(atoms, where)
            builder.add(f"{system}:frame{fid}", system, numbers, positions, cell, pbc, tags, fixed,
                        _forces(atoms, where), total_energy=energy, reference_energy=reference,
                        adsorption_energy=energy - reference)
            count += 1
        if count != len(rows):
            raise ValidationError(f"[dataset] path: {path} has {count} frames but {txt.name} has {len(rows)} lines; "
                                  "one line per frame: the extxyz file is truncated or the files do not belong "
                                  "together: download them again")
    if not len(builder):
        raise ValidationError(f"[dataset] path: the files under {root} hold no frames; check pattern and the files")
    return builder.pack()


#: info keys that hold the relaxed adsorption energy, tried in order when energy_key is 'auto'
RELAXED_KEYS = ("y_relaxed", "relaxed_energy")


def read_is2re(root: Path, pattern: str, energy_key: str) -> Frames:
    """Initial structures with their relaxed adsorption energy (``relaxed_energy``, eV)."""
    if root.suffix == ".lmdb" or (root.is_dir() and any(root.glob("*.lmdb")) and not any(root.glob(pattern))):
        raise ValidationError(f"[dataset] path: {root} is (or holds) IS2RE LMDBs of pickled objects, which molplat "
                              f"never loads; {CONVERT_HINT}")
    keys = RELAXED_KEYS if energy_key == "auto" else (energy_key,)
    builder = FrameBuilder()
    for path in find_files(root, pattern, "IS2RE initial structures (extxyz or ASE .db)"):
        name = path.name if root.is_file() else path.relative_to(root).as_posix()
        for k, atoms in enumerate(_ase_frames(path)):
            where = f"frame {k} of {path}"
            key = next((key for key in keys if key in atoms.info), None)
            if key is None:
                found = ", ".join(sorted(map(str, atoms.info))) or "none"
                raise ValidationError(f"[dataset] energy_key: {where} has no {' or '.join(map(repr, keys))} in info "
                                      f"(info keys: {found}); store the relaxed adsorption energy (eV) there, or set "
                                      "energy_key to the key that holds it")
            relaxed = _number(atoms.info[key], where, key, "give the relaxed adsorption energy in eV")
            numbers, positions, cell, pbc = _geometry(atoms, where)
            tags, fixed = _tags_and_fixed(atoms, where)
            sid = atoms.info.get("sid")
            system = f"random{sid}" if isinstance(sid, (int, np.integer)) else str(sid) if sid is not None \
                else f"{name}:{k}"
            builder.add(system, system, numbers, positions, cell, pbc, tags, fixed, None, relaxed_energy=relaxed)
    if not len(builder):
        raise ValidationError(f"[dataset] path: {root} holds no structures; check pattern and the files")
    return builder.pack()
