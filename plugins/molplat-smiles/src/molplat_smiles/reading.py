"""Rows of a SMILES CSV (PCQM4Mv2, AISD HOMO-LUMO, or any with a SMILES column), and of QM9.

PCQM4Mv2 (``pcqm4m-v2/raw/data.csv.gz``): ``idx,smiles,homolumogap``, the gap in eV, the
test rows' gap empty. The AISD HOMO-LUMO CSV has a ``smiles`` column and a gap column; its
exact header is a setting (``target_columns``) because we could not confirm it here. An
empty target cell is "unlabelled" (the structure has no value for that target; training
leaves it out); any other text that is not a finite number is an error naming the line.
"""
from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from molplat.errors import MolplatError, ValidationError

#: eV per Hartree (CODATA 2018) and per kcal/mol (1 kcal/mol = 4.184 kJ/mol / 96.485332 kJ/mol/eV)
HARTREE_EV = 27.211386245988
KCAL_PER_MOL_EV = 0.0433641
UNITS = {"eV": 1.0, "hartree": HARTREE_EV, "kcal/mol": KCAL_PER_MOL_EV}
#: gap columns recognised by default, offered as target "gap": PCQM4Mv2's first
GAP_COLUMNS = ("homolumogap", "homo_lumo_gap", "gap", "HOMO-LUMO gap", "HOMO_LUMO_gap")

QM9_DISTRIBUTION = "qm9pack"
QM9_FILES = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")


@dataclass
class Rows:
    """SMILES rows before featurisation: ``lines`` are 1-based line numbers in the source file."""

    ids: np.ndarray  # (n,) str
    smiles: np.ndarray  # (n,) str
    lines: np.ndarray  # (n,) int64
    targets: np.ndarray  # (n, T) float64, eV; NaN = unlabelled
    target_names: list[str]
    source: str

    def take(self, rows: np.ndarray) -> "Rows":
        return Rows(self.ids[rows], self.smiles[rows], self.lines[rows], self.targets[rows], self.target_names,
                    self.source)


def _bad(path: Path, problem: str, fix: str) -> ValidationError:
    return ValidationError(f"[dataset] path: {path}: {problem}; {fix}")


def read_csv(path: Path, smiles_column: str = "smiles", target_columns: list[str] | None = None,
             units: str = "eV") -> Rows:
    """The rows of a plain or gzipped CSV, targets converted to eV."""
    import pandas as pd

    if not path.is_file():
        raise _bad(path, "no such file", "give the CSV's path (relative to the pipeline file), e.g. "
                   "pcqm4m-v2/raw/data.csv.gz")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8",
                            compression="gzip" if path.name.endswith(".gz") else None)
    except UnicodeDecodeError as exc:
        raise _bad(path, f"not UTF-8 text (byte {exc.start})", "save the CSV as UTF-8") from None
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise _bad(path, f"the gzip stream is damaged or truncated ({exc})",
                   "download the file again (PCQM4Mv2: pcqm4m-v2/raw/data.csv.gz)") from None
    except pd.errors.EmptyDataError:
        raise _bad(path, "the file is empty", "give a CSV with a header line and one molecule per row") from None
    except pd.errors.ParserError as exc:
        raise _bad(path, f"not a readable CSV ({str(exc).strip()})", "check the file's delimiter and quoting; a "
                   "truncated download ends mid-row") from None
    headers = list(frame.columns)
    if smiles_column not in headers:
        raise ValidationError(f"[dataset] smiles_column: {path} has no column {smiles_column!r} (columns: "
                              f"{', '.join(headers)}); set smiles_column to the header of the SMILES column")
    if target_columns is None:
        found = [c for c in GAP_COLUMNS if c in headers]
        if not found:
            raise ValidationError(f"[dataset] target_columns: {path} has none of the gap columns "
                                  f"{', '.join(GAP_COLUMNS)} (columns: {', '.join(headers)}); name the target "
                                  "columns with target_columns = [...]")
        columns, names = found[:1], ["gap"]
    else:
        missing = [c for c in target_columns if c not in headers]
        if missing:
            raise ValidationError(f"[dataset] target_columns: {path} has no column {', '.join(map(repr, missing))} "
                                  f"(columns: {', '.join(headers)})")
        if len(set(target_columns)) != len(target_columns):
            raise ValidationError(f"[dataset] target_columns: {target_columns} names a column twice")
        columns = list(target_columns)
        names = ["gap" if c in GAP_COLUMNS else c for c in columns]
        if len(set(names)) != len(names):
            names = columns
    lines = np.arange(len(frame), dtype=np.int64) + 2  # line 1 is the header
    values = np.full((len(frame), len(columns)), np.nan)
    for k, column in enumerate(columns):
        text = frame[column].str.strip()
        numbers = pd.to_numeric(text.where(text != ""), errors="coerce").to_numpy(dtype=np.float64)
        bad = (text != "").to_numpy() & ~np.isfinite(numbers)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise _bad(path, f"column {column!r} holds {text.iloc[first]!r} on line {lines[first]} "
                       f"({int(bad.sum())} such rows), not a finite number",
                       "leave a cell empty for a molecule without a value, or fix the value")
        values[:, k] = numbers * UNITS[units]
    ids = frame["idx"].to_numpy(dtype=str) if "idx" in headers else np.array([f"line{n}" for n in lines])
    if len(set(ids.tolist())) != len(ids):
        ids = np.array([f"line{n}" for n in lines])
    return Rows(ids, frame[smiles_column].str.strip().to_numpy(dtype=str), lines, values, names, str(path))


def qm9_folder() -> Path:
    """The folder of qm9pack's CSV files, with a clear error when the package is missing."""
    try:
        dist = metadata.distribution(QM9_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise MolplatError("dataset 'smiles_csv' without a path reads QM9's SMILES from the qm9pack package, "
                           "which is not installed; install it with: pip install qm9pack") from None
    folder = Path(str(dist.locate_file("qm9pack/data")))
    missing = [name for name in QM9_FILES if not (folder / name).is_file()]
    if missing:
        raise MolplatError(f"qm9pack {dist.version} is installed but {folder} lacks {', '.join(missing)}; "
                           "reinstall it with: pip install --force-reinstall qm9pack")
    return folder


def qm9_fingerprint(folder: Path) -> str:
    return ";".join(f"{name}:{(folder / name).stat().st_size}" for name in QM9_FILES)


def read_qm9(folder: Path) -> Rows:
    """All 130,831 QM9 molecules: id, SMILES and the HOMO-LUMO gap (Hartree in the files, eV here)."""
    import pandas as pd

    frames = [pd.read_csv(folder / name, usecols=["XYZ_file", "SMILES", "HOMO_LUMO_gap_au"]) for name in QM9_FILES]
    frame = pd.concat(frames, ignore_index=True)
    ids = frame["XYZ_file"].str.removesuffix(".xyz").to_numpy(dtype=str)
    gap = frame["HOMO_LUMO_gap_au"].to_numpy(dtype=np.float64) * HARTREE_EV
    lines = np.concatenate([np.arange(len(f), dtype=np.int64) + 2 for f in frames])
    return Rows(ids, frame["SMILES"].to_numpy(dtype=str), lines, gap[:, None], ["gap"], "qm9pack")
