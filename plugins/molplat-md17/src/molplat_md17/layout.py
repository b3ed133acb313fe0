"""Read the published MD17 and revised MD17 (rMD17) .npz layouts into eV, eV/Å and Å.

MD17 (Chmiela et al. 2017; sgdml.org): ``z`` [atoms] atomic numbers, ``R`` [frames, atoms, 3] Å,
``E`` [frames] or [frames, 1] kcal/mol, ``F`` [frames, atoms, 3] kcal/mol/Å, plus strings such as
``name``, ``theory``, ``type`` and ``md5``; files written by sGDML tools may add ``e_unit`` and
``r_unit``, which are honoured.

rMD17 (Christensen and von Lilienfeld 2020; figshare): ``nuclear_charges`` [atoms], ``coords``
[frames, atoms, 3] Å, ``energies`` [frames] kcal/mol, ``forces`` [frames, atoms, 3] kcal/mol/Å,
plus ``old_indices``, ``old_energies`` and ``old_forces`` (the same frames as MD17 gave them; not
read).

Files are opened with ``allow_pickle=False``: the strings in these files are plain unicode
arrays, and an array of Python objects would be code run from a file, so it is refused.
Every problem is one ValidationError naming the file, the key and the fix.
"""
from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from molplat.errors import ValidationError
from molplat_md17 import units

#: layout -> (atomic numbers, positions, energies, forces) keys
KEYS: dict[str, tuple[str, str, str, str]] = {
    "md17": ("z", "R", "E", "F"),
    "rmd17": ("nuclear_charges", "coords", "energies", "forces"),
}
#: the level of theory of each published layout, when a file does not say
PUBLISHED_THEORY = {"md17": "PBE+vdW-TS (MD17)", "rmd17": "PBE/def2-SVP (rMD17)"}
LAYOUT_NAMES = {"md17": "MD17 (sgdml.org)", "rmd17": "revised MD17 (rMD17, figshare)"}
#: where each layout is downloaded, for messages
DOWNLOADS = {
    "md17": "http://www.sgdml.org/#datasets (e.g. md17_ethanol.npz)",
    "rmd17": "https://doi.org/10.6084/m9.figshare.12672038 (rmd17/npz_data/rmd17_ethanol.npz)",
}


@dataclass
class Trajectory:
    """Frames of one molecule in molplat's units; the atoms are the same in every frame."""

    numbers: np.ndarray  # [atoms] int64
    positions: np.ndarray  # [frames, atoms, 3] float64, Å
    energies: np.ndarray  # [frames] float64, eV
    forces: np.ndarray  # [frames, atoms, 3] float64, eV/Å
    name: str
    theory: str
    layout: str  # "md17", "rmd17" or "generated"

    def __len__(self) -> int:
        return len(self.energies)

    def take(self, frames: np.ndarray) -> "Trajectory":
        return Trajectory(self.numbers, self.positions[frames], self.energies[frames], self.forces[frames],
                          self.name, self.theory, self.layout)


def _fail(path: Path, problem: str, fix: str) -> ValidationError:
    return ValidationError(f"[dataset] path: {path} {problem}; {fix}")


def _detect(path: Path, keys: set[str]) -> str:
    """Which layout the keys are: the one all of whose four keys are present."""
    for layout, wanted in KEYS.items():
        if set(wanted) <= keys:
            return layout
    # Name the layout the file resembles most and what it lacks.
    layout = max(KEYS, key=lambda name: len(set(KEYS[name]) & keys))
    missing = [k for k in KEYS[layout] if k not in keys]
    found = ", ".join(sorted(keys)) or "none"
    if not set(KEYS[layout]) & keys:
        raise _fail(path, f"is neither an MD17 file (keys z, R, E, F) nor an rMD17 file (keys nuclear_charges, coords, "
                    f"energies, forces); its keys: {found}", "point path at a file from "
                    f"{DOWNLOADS['md17']} or {DOWNLOADS['rmd17']}")
    raise _fail(path, f"looks like a {LAYOUT_NAMES[layout]} file but lacks key(s) {', '.join(map(repr, missing))} "
                f"(its keys: {found})", f"download the file again from {DOWNLOADS[layout]}")


def _read(data: "np.lib.npyio.NpzFile", path: Path, key: str) -> np.ndarray:
    """One array of the archive, with damage and pickled objects reported as one line."""
    try:
        array = data[key]
    except ValueError as exc:
        if "pickle" in str(exc):
            raise _fail(path, f"key {key!r} holds Python objects (a pickled array)", "molplat never unpickles data "
                        "files, since that runs code from the file; save that key as a plain numeric or string "
                        "array (np.savez with numbers or str)") from None
        raise _fail(path, f"key {key!r} cannot be read ({exc})", "the file is damaged: download it again") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise _fail(path, f"key {key!r} cannot be read ({type(exc).__name__}: {exc})",
                    "the file is truncated or damaged: download it again") from None
    if array.dtype.kind == "O":  # pragma: no cover - numpy refuses these above; kept as a guard
        raise _fail(path, f"key {key!r} holds Python objects", "save it as a plain array")
    return array


def _text(data: "np.lib.npyio.NpzFile", path: Path, key: str) -> str | None:
    """A string key (``name``, ``theory``, ``e_unit``): unicode, or bytes that must be UTF-8."""
    if key not in data.files:
        return None
    array = _read(data, path, key)
    if array.size != 1 or array.dtype.kind not in "USa":
        raise _fail(path, f"key {key!r} is {array.dtype} of shape {list(array.shape)}, not one string",
                    f"store {key} as a single string")
    value = array.reshape(()).item()
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(path, f"key {key!r} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                        f"store {key} as UTF-8 (or a numpy unicode string)") from None
    return str(value)


def _unit(path: Path, key: str, name: str | None, table: dict[str, float], default: str) -> float:
    if name is None:
        return table[default.lower()]
    factor = table.get(name.strip().lower())
    if factor is None:
        raise _fail(path, f"key {key!r} says {name!r}, a unit molplat-md17 does not convert", f"use one of "
                    f"{', '.join(sorted(table))}, or convert the file to {default} and remove {key}")
    return factor


def _numbers(path: Path, key: str, array: np.ndarray) -> np.ndarray:
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu":
        raise _fail(path, f"key {key!r} is {array.dtype} of shape {list(array.shape)}; it must be the atomic numbers "
                    "[atoms] as integers", "download the file again")
    numbers = array.astype(np.int64)
    if numbers.min() < 1 or numbers.max() > 118:
        bad = sorted({int(z) for z in numbers if not 1 <= z <= 118})
        raise _fail(path, f"key {key!r} holds {bad}, not atomic numbers 1..118", "download the file again")
    return numbers


def _floats(path: Path, key: str, array: np.ndarray, shape: tuple[int | None, ...], meaning: str) -> np.ndarray:
    """``array`` as float64 of ``shape`` (None: any length), or one line saying what it is instead."""
    wanted = "[" + ", ".join("frames" if s is None else str(s) for s in shape) + "]"
    ok = array.dtype.kind in "iuf" and array.ndim == len(shape) and all(
        s is None or s == n for s, n in zip(shape, array.shape))
    if not ok:
        raise _fail(path, f"key {key!r} is {array.dtype} of shape {list(array.shape)}, but {meaning} are {wanted}",
                    "download the file again, or fix the array's shape")
    values = array.astype(np.float64)
    finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1) if values.size else np.ones(0, bool)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise _fail(path, f"key {key!r} has NaN or infinite values in {len(bad)} frame(s) (first: frame {bad[0]})",
                    "remove those frames from the file")
    return values


def read_npz(path: str | Path) -> Trajectory:
    """The frames of an MD17 or rMD17 file, converted to eV, eV/Å and Å; the layout is told by the keys."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise _fail(path, "does not exist" if not path.exists() else "is not a file",
                    "set path to a downloaded MD17 or rMD17 .npz file (relative paths are read from the pipeline "
                    "file's folder)")
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError:  # numpy's answer for anything that is neither .npy nor .npz (it would need unpickling)
        raise _fail(path, "is not a NumPy .npz archive (no zip or .npy header)", "point path at the .npz file itself (an "
                    "rMD17 download is a .tar.bz2 archive: unpack it and use rmd17/npz_data/rmd17_NAME.npz)") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _fail(path, f"cannot be opened as a NumPy .npz archive ({type(exc).__name__}: {exc or 'empty'})",
                    "the file is truncated or damaged: download it again") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise _fail(path, "holds a single array (.npy), not an .npz archive of named arrays",
                    "point path at the MD17 or rMD17 .npz file")
    with data:
        keys = set(data.files)
        layout = _detect(path, keys)
        if "lattice" in keys:
            raise _fail(path, "has a 'lattice' key (a periodic sGDML dataset)", "molplat-md17 reads molecules; read "
                        "periodic data with the atoms_file dataset (extxyz with a cell)")
        z_key, r_key, e_key, f_key = KEYS[layout]
        numbers = _numbers(path, z_key, _read(data, path, z_key))
        n = len(numbers)
        positions = _floats(path, r_key, _read(data, path, r_key), (None, n, 3), "positions")
        frames = len(positions)
        if frames == 0:
            raise _fail(path, f"key {r_key!r} holds no frames", "download the file again")
        energies = _read(data, path, e_key)
        if energies.ndim == 2 and energies.shape[1:] == (1,):  # MD17 stores E as [frames, 1]
            energies = energies[:, 0]
        energies = _floats(path, e_key, energies, (frames,), "energies")
        forces = _floats(path, f_key, _read(data, path, f_key), (frames, n, 3), "forces")
        e_unit = _unit(path, "e_unit", _text(data, path, "e_unit"), units.ENERGY_UNITS, units.PUBLISHED_ENERGY_UNIT)
        r_unit = _unit(path, "r_unit", _text(data, path, "r_unit"), units.LENGTH_UNITS, units.PUBLISHED_LENGTH_UNIT)
        name = _text(data, path, "name") or path.stem
        theory = _text(data, path, "theory") or PUBLISHED_THEORY[layout]
    return Trajectory(numbers, positions * r_unit, energies * e_unit, forces * (e_unit / r_unit), name, theory,
                      layout)
