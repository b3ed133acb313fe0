"""Find and parse the QM9 CSV files that the qm9pack distribution installs.

The files are located through the distribution's metadata, never by importing
qm9pack (its loader needs pkg_resources and reads everything into pandas objects
we would only convert again). Parsing is vectorised: the per-molecule coordinate,
element and Mulliken charge strings are joined and converted in one numpy call each.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from molplat.errors import MolplatError
from molplat_qm9.targets import ATOM_COLUMNS, MAIN_COLUMNS, TENSOR_COLUMNS

DISTRIBUTION = "qm9pack"
MAIN_FILES = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
TENSOR_FILE = "qm9_polarizability.csv"
N_MOLECULES = 130831
SYMBOLS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}


@dataclass
class QM9Arrays:
    """Molecules packed into flat arrays: atoms of molecule i are ``offsets[i]:offsets[i+1]``."""

    ids: np.ndarray  # (n,) str, e.g. "dsgdb9nsd_000001"
    numbers: np.ndarray  # (n_atoms,) uint8
    positions: np.ndarray  # (n_atoms, 3) float64, Å
    offsets: np.ndarray  # (n + 1,) int64
    targets: np.ndarray  # (n, n_targets) float64, molplat units
    target_names: np.ndarray  # (n_targets,) str
    atom_targets: np.ndarray  # (n_atoms, n_atom_targets) float64, molplat units
    atom_target_names: np.ndarray  # (n_atom_targets,) str

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: np.ndarray) -> "QM9Arrays":
        """The molecules at ``rows``, in that order, repacked."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = self.offsets[rows + 1] - self.offsets[rows]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        atom_rows = np.arange(offsets[-1]) + np.repeat(self.offsets[rows] - offsets[:-1], counts)
        return QM9Arrays(self.ids[rows], self.numbers[atom_rows], self.positions[atom_rows], offsets,
                         self.targets[rows], self.target_names, self.atom_targets[atom_rows], self.atom_target_names)


def data_dir() -> Path:
    """The folder holding qm9pack's CSV files, with a clear error when it is missing."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise MolplatError(
            "dataset 'qm9' reads the QM9 files of the qm9pack package, which is not installed; "
            "install it with: pip install qm9pack"
        ) from None
    folder = Path(str(dist.locate_file("qm9pack/data")))
    missing = [name for name in MAIN_FILES + (TENSOR_FILE,) if not (folder / name).is_file()]
    if missing:
        raise MolplatError(
            f"qm9pack {dist.version} is installed but {folder} lacks {', '.join(missing)}; "
            "reinstall it with: pip install --force-reinstall qm9pack"
        )
    return folder


def fingerprint(folder: Path) -> str:
    """Changes when the source files or the unit conversions change, so a stale cache is never reused."""
    parts = [f"{name}:{(folder / name).stat().st_size}" for name in MAIN_FILES + (TENSOR_FILE,)]
    parts += [f"{c.name}={c.source}*{c.factor!r}" for c in MAIN_COLUMNS + TENSOR_COLUMNS]
    parts += [f"{c.name}={c.source}" for c in ATOM_COLUMNS]
    return ";".join(parts)


def _parse_floats(cells: np.ndarray, expected: int, what: str) -> np.ndarray:
    text = ",".join(cells).translate(str.maketrans("[]", "  "))
    try:
        values = np.fromstring(text, dtype=np.float64, sep=",")  # one C-level parse of every number
    except ValueError:  # newer numpy refuses a bad token; older numpy stops there (caught below)
        values = np.zeros(0)
    if values.size != expected:
        raise MolplatError(f"QM9 {what}: expected {expected} numbers, parsed {values.size}; the file is damaged")
    return values


def parse(folder: Path | None = None) -> QM9Arrays:
    """Read all 130,831 molecules; energies come out in eV, lengths in Å."""
    import pandas as pd

    folder = folder or data_dir()
    sources = [c.source for c in MAIN_COLUMNS + ATOM_COLUMNS]
    frames = [pd.read_csv(folder / name, usecols=["XYZ_file", "N_atoms", "Elements", "XYZ_Ang", *sources])
              for name in MAIN_FILES]
    main = pd.concat(frames, ignore_index=True)
    tensor = pd.read_csv(folder / TENSOR_FILE)
    tensor = tensor.set_index("XYZ_file").reindex(main["XYZ_file"])
    if tensor.isna().any().any():
        raise MolplatError(f"QM9: {TENSOR_FILE} lacks polarizability tensors for some molecules of {MAIN_FILES}")

    counts = main["N_atoms"].to_numpy(dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    n_atoms = int(offsets[-1])
    positions = _parse_floats(main["XYZ_Ang"].to_numpy(dtype=str), 3 * n_atoms, "coordinates").reshape(-1, 3)

    symbols = ",".join(main["Elements"].to_numpy(dtype=str)).translate(str.maketrans("", "", "[]' ")).split(",")
    if len(symbols) != n_atoms:
        raise MolplatError(f"QM9 elements: expected {n_atoms} symbols, parsed {len(symbols)}; the file is damaged")
    unknown = set(symbols) - set(SYMBOLS)
    if unknown:
        raise MolplatError(f"QM9 elements: unexpected symbols {sorted(unknown)}")
    lookup = pd.Series(SYMBOLS)
    numbers = lookup.reindex(symbols).to_numpy(dtype=np.uint8)

    columns = [main[c.source].to_numpy(dtype=np.float64) * c.factor for c in MAIN_COLUMNS]
    columns += [tensor[c.source].to_numpy(dtype=np.float64) * c.factor for c in TENSOR_COLUMNS]
    names = [c.name for c in MAIN_COLUMNS + TENSOR_COLUMNS]
    per_atom = [_parse_floats(main[c.source].to_numpy(dtype=str), n_atoms, c.name) for c in ATOM_COLUMNS]
    ids = main["XYZ_file"].str.removesuffix(".xyz").to_numpy(dtype=str)
    return QM9Arrays(ids, numbers, positions, offsets, np.stack(columns, axis=1), np.array(names),
                     np.stack(per_atom, axis=1).reshape(n_atoms, len(ATOM_COLUMNS)),
                     np.array([c.name for c in ATOM_COLUMNS]))
