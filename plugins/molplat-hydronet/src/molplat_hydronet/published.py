"""Reading the published HydroNet files: W3-W30_all_geoms_TTM2.1-F.

The release (Rakshit et al. 2019, distributed with HydroNet, Choudhury et al. 2020) is one zip,
``W3-W30_all_geoms_TTM2.1-F.zip``, holding one zip per cluster size, ``W{n}_geoms_all.zip``,
each holding ``W{n}_geoms_all.xyz``: every cluster of n waters as a plain XYZ frame::

    <3n>                          atom count
    <...> <energy>                comment: the last token is the TTM2.1-F energy in kcal/mol
    O  x y z                      3n atom lines, Å, each oxygen followed by its two hydrogens
    H  x y z
    ...

A user gives the unzipped folder (inner zips or the xyz files), one of those files, or the outer
zip itself. Frames are parsed a chunk at a time with numpy (tens of millions of lines in all), and
every problem is one ValidationError naming the file, the line and the fix.
"""
from __future__ import annotations

import io
import itertools
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from molplat.errors import ValidationError

#: 1 kcal/mol in eV: 4.184 J/cal over the Faraday constant 96,485.33212 C/mol (CODATA 2018)
KCAL_PER_MOL_IN_EV = 4.184 / 96.48533212
#: atom lines parsed at once (about 60 MB of tokens); bounds the memory a chunk needs
CHUNK_ATOMS = 300_000
NAME = re.compile(r"^W(\d+)_geoms_all\.(xyz|zip)$", re.IGNORECASE)
RELEASE = "W3-W30_all_geoms_TTM2.1-F"
SYMBOLS = {"H": 1, "O": 8}
FIX_DOWNLOAD = "download the release again (W3-W30_all_geoms_TTM2.1-F.zip) and unzip it"


@dataclass(frozen=True)
class SizeFile:
    """One per-size file: ``where`` names it in messages (a path, or zip!member)."""

    waters: int
    where: str
    path: Path
    members: tuple[str, ...] = ()  # zip members to descend, outermost first


@dataclass
class Frames:
    """Clusters of one file: positions [k, atoms, 3] Å, numbers [atoms], energies [k] kcal/mol."""

    numbers: np.ndarray
    positions: np.ndarray
    energies: np.ndarray


def waters_of(name: str) -> int | None:
    match = NAME.match(Path(name).name)
    return int(match.group(1)) if match else None


def _zip_entries(path: Path, where: str, members: tuple[str, ...]) -> list[SizeFile]:
    """The per-size files inside a zip: its W{n}_geoms_all.xyz, or its inner W{n}_geoms_all.zip files."""
    found = []
    try:
        with _open_zip(path, members, where) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        raise ValidationError(f"[dataset] path: {where} is not a readable zip file (truncated download?); "
                              f"{FIX_DOWNLOAD}") from None
    for name in sorted(names):
        n = waters_of(name)
        if n is not None and not name.endswith("/"):
            found.append(SizeFile(n, f"{where}!{name}", path, (*members, name)))
    return found


def find_files(path: Path) -> list[SizeFile]:
    """Every per-size file under ``path`` (a folder, a zip, or one xyz file), one per size, by size."""
    if not path.exists():
        raise ValidationError(f"[dataset] path: {path} does not exist; give the unzipped {RELEASE} folder "
                              "or one of its W{n}_geoms_all files")
    entries: list[SizeFile] = []
    if path.is_dir():
        for child in sorted(path.iterdir()):
            n = waters_of(child.name)
            if n is not None and child.is_file():
                entries.append(SizeFile(n, str(child), child))
        nested = path / RELEASE
        if not entries and nested.is_dir():
            return find_files(nested)
    elif path.suffix.lower() == ".zip":
        for entry in _zip_entries(path, str(path), ()):
            if entry.members[-1].lower().endswith(".zip"):
                entries.extend(_zip_entries(path, entry.where, entry.members))
            else:
                entries.append(entry)
    else:
        n = waters_of(path.name)
        entries.append(SizeFile(n or 0, str(path), path))  # another name: the size comes from the count line
    if not entries:
        shown = ", ".join(sorted(p.name for p in path.iterdir())[:8]) if path.is_dir() else path.name
        raise ValidationError(f"[dataset] path: no W{{n}}_geoms_all.xyz or .zip file in {path} (found: "
                              f"{shown or 'nothing'}); give the unzipped {RELEASE} folder")
    by_size: dict[int, SizeFile] = {}
    for entry in sorted(entries, key=lambda e: (e.waters, not e.where.lower().endswith(".xyz"))):
        by_size.setdefault(entry.waters, entry)  # an unzipped .xyz wins over its .zip
    return list(by_size.values())


@contextmanager
def _open_zip(path: Path, members: tuple[str, ...], where: str) -> Iterator[zipfile.ZipFile]:
    """The zip at ``path``, descended through the zip ``members`` (inner zips are read into memory)."""
    with zipfile.ZipFile(path) as archive:
        for member in members:
            archive = zipfile.ZipFile(io.BytesIO(archive.read(member)))
        yield archive


@contextmanager
def _open_bytes(entry: SizeFile) -> Iterator[IO[bytes]]:
    """The xyz bytes of a per-size file: the file itself, or the .xyz inside a (nested) zip."""
    try:
        if not entry.members and entry.path.suffix.lower() != ".zip":
            with open(entry.path, "rb") as handle:
                yield handle
            return
        members = entry.members
        if not members or members[-1].lower().endswith(".zip"):
            with _open_zip(entry.path, members, entry.where) as archive:
                inner = [n for n in archive.namelist() if n.lower().endswith(".xyz")]
            if len(inner) != 1:
                raise ValidationError(f"[dataset] path: {entry.where} holds {len(inner)} .xyz files, expected one "
                                      f"W{entry.waters}_geoms_all.xyz; {FIX_DOWNLOAD}")
            members = (*members, inner[0])
        with _open_zip(entry.path, members[:-1], entry.where) as archive, archive.open(members[-1]) as handle:
            yield handle
    except zipfile.BadZipFile:
        raise ValidationError(f"[dataset] path: {entry.where} is not a readable zip file (truncated download?); "
                              f"{FIX_DOWNLOAD}") from None


def _bad(where: str, line: int, problem: str, fix: str = FIX_DOWNLOAD) -> ValidationError:
    return ValidationError(f"[dataset] path: {where}, line {line}: {problem}; {fix}")


def _parse_chunk(lines: list[str], atoms: int, where: str, first_line: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames of ``atoms`` atoms from whole frames of text lines: (numbers, positions, energies)."""
    size = atoms + 2
    frames = len(lines) // size
    for k, count in enumerate(lines[0::size]):
        if count.strip() != str(atoms):
            raise _bad(where, first_line + k * size, f"expected the atom count {atoms} of a cluster, found "
                       f"{count.strip()[:40]!r}", "every cluster of a file has the same number of atoms, 3 per water")
    energies = np.empty(frames)
    for k, comment in enumerate(lines[1::size]):
        tokens = comment.split()
        try:
            energies[k] = float(tokens[-1])
        except (IndexError, ValueError):
            raise _bad(where, first_line + k * size + 1, f"the comment line {comment.strip()[:60]!r} does not end "
                       "with the cluster's energy (kcal/mol)") from None
    atom_lines = [line for k, line in enumerate(lines) if k % size > 1]
    tokens = " ".join(atom_lines).split()
    table = np.array(tokens) if len(tokens) == 4 * len(atom_lines) else None
    if table is None:
        for k, line in enumerate(lines):
            if k % size > 1 and len(line.split()) != 4:
                raise _bad(where, first_line + k, f"expected 'symbol x y z', found {line.strip()[:60]!r}")
    table = table.reshape(frames * atoms, 4)  # type: ignore[union-attr]
    try:
        positions = table[:, 1:].astype(np.float64).reshape(frames, atoms, 3)
    except ValueError:
        for k, line in enumerate(lines):
            if k % size > 1:
                try:
                    [float(v) for v in line.split()[1:]]
                except ValueError:
                    raise _bad(where, first_line + k, f"a coordinate is not a number: {line.strip()[:60]!r}") from None
        raise
    symbols = table[:, 0]
    numbers = np.zeros(len(symbols), dtype=np.int16)
    for symbol, number in SYMBOLS.items():
        numbers[symbols == symbol] = number
    if not numbers.all():
        unknown = sorted(set(symbols[numbers == 0].tolist()))
        raise ValidationError(f"[dataset] path: {where}: element symbols {unknown[:5]} are not O or H; "
                              "HydroNet files hold water clusters only")
    return numbers.reshape(frames, atoms), positions, energies


def _check_finite(where: str, positions: np.ndarray, energies: np.ndarray, atoms: int, first_line: int) -> None:
    size = atoms + 2
    bad = ~np.isfinite(energies) | ~np.isfinite(positions).all(axis=(1, 2))
    if bad.any():
        k = int(np.argmax(bad))
        what = "energy" if not np.isfinite(energies[k]) else "positions"
        raise _bad(where, first_line + k * size + 1, f"cluster {k + 1} has a non-finite {what} (NaN or inf)",
                   "repair or remove that cluster")


def read_frames(entry: SizeFile, limit: int | None = None) -> Frames:
    """Every cluster of one per-size file (the first ``limit`` when set), checked."""
    with _open_bytes(entry) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline=None)
        lines_read = 0
        try:
            first = text.readline()
            if not first.strip():
                raise _bad(entry.where, 1, "the file is empty or starts with a blank line")
            try:
                atoms = int(first.strip())
            except ValueError:
                raise _bad(entry.where, 1, f"expected an atom count, found {first.strip()[:40]!r}; this is not "
                           "an XYZ file") from None
            if atoms <= 0 or atoms % 3:
                raise _bad(entry.where, 1, f"{atoms} atoms is no water cluster (3 atoms per water)")
            if entry.waters and atoms != 3 * entry.waters:
                raise _bad(entry.where, 1, f"a W{entry.waters} file must hold clusters of {3 * entry.waters} atoms, "
                           f"not {atoms}", "keep the release's file names")
            size = atoms + 2
            lines = itertools.chain([first], text)
            symbols, positions, energies = [], [], []
            taken = 0
            while limit is None or taken < limit:
                per_chunk = max(1, CHUNK_ATOMS // atoms)
                want = per_chunk if limit is None else min(per_chunk, limit - taken)
                chunk = [line for line in itertools.islice(lines, want * size)]
                while chunk and not chunk[-1].strip() and len(chunk) % size:
                    chunk.pop()  # blank lines at the end of the file
                if len(chunk) % size:
                    raise _bad(entry.where, lines_read + len(chunk), f"the file ends inside a cluster "
                               f"({len(chunk) % size} of its {size} lines): it is truncated")
                if not chunk:
                    break
                s, p, e = _parse_chunk(chunk, atoms, entry.where, lines_read + 1)
                _check_finite(entry.where, p, e, atoms, lines_read + 1)
                symbols.append(s)
                positions.append(p)
                energies.append(e)
                taken += len(e)
                lines_read += len(chunk)
                if len(chunk) < want * size:
                    break
        except UnicodeDecodeError as exc:
            raise _bad(entry.where, lines_read + 1, f"not UTF-8 text ({exc.reason} at byte {exc.start} of a "
                       "chunk): this is no XYZ file") from None
    if not energies:
        raise _bad(entry.where, 1, "no cluster in the file")
    numbers = np.concatenate(symbols)
    if (numbers != numbers[0]).any():
        k = int(np.argmax((numbers != numbers[0]).any(axis=1)))
        raise _bad(entry.where, k * size + 3, f"cluster {k + 1} lists its atoms in another order than cluster 1",
                   "list every cluster as O H H, O H H, ...")
    return Frames(numbers[0], np.concatenate(positions), np.concatenate(energies))
