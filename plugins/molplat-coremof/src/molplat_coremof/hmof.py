"""The ``hmof`` dataset: hypothetical MOFs from a folder the user downloaded.

The expected layout is a labels CSV (one row per MOF: an id naming ``<id>.cif``
and numeric label columns) next to, or above, a folder of CIF files. ``root`` is a
``path`` setting: a pipeline resolves it against the pipeline file's folder and
``molplat validate`` refuses a missing one. The rest (labels file, CIF folder,
columns, every listed CIF) is checked when the dataset is built, so a wrong path
fails before training with a message naming the file, the setting and the fix.
CIFs are parsed on first access and kept in memory.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from molplat.data import Dataset
from molplat.errors import MolplatError, ValidationError
from molplat.structure import Structure, Target
from molplat_coremof.cif import BadCIF, parse_cif
from molplat_coremof.plugin import HMOF_CITATION

log = logging.getLogger(__name__)

GUESSED_UNITS = {"working_capacity": "mol/kg", "uptake": "mol/kg"}


def _units_for(column: str, units: str) -> str:
    if units:
        return units
    return next((u for key, u in GUESSED_UNITS.items() if key in column.lower()), "unspecified")


class HMOF(Dataset):
    """hMOF (Wilmer et al. 2012) structures with user-supplied labels; targets are the CSV's numeric columns."""

    targets: dict[str, Target] = {}  # known only per instance: the columns of the user's CSV
    default_target = ""
    citation = HMOF_CITATION

    def __init__(self, root: str, labels: str = "labels.csv", cif_dir: str = "", id_column: str = "id",
                 units: str = "") -> None:
        import pandas as pd

        if not root:
            raise ValidationError("[dataset] root: not set; set it to the folder holding the hMOF CIF files "
                                  "and the labels CSV")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise ValidationError(f"[dataset] root: folder {str(self.root)!r} does not exist; set root to the "
                                  "folder where you unpacked the hMOF download (relative to the pipeline file)")
        self.labels_path = self.root / labels
        if not self.labels_path.is_file():
            raise ValidationError(f"[dataset] labels: {str(self.labels_path)!r} not found; put there a CSV with an "
                                  f"{id_column!r} column and numeric label columns, or set labels to its path "
                                  "relative to root")
        self.cif_dir = self.root / cif_dir
        if not self.cif_dir.is_dir():
            raise ValidationError(f"[dataset] cif_dir: folder {str(self.cif_dir)!r} does not exist; set cif_dir "
                                  "to the CIF folder relative to root ('' for root itself)")

        try:
            header = pd.read_csv(self.labels_path, nrows=0).columns.tolist()
            if id_column not in header:
                raise ValidationError(f"[dataset] id_column: {self.labels_path} has no column {id_column!r} "
                                      f"(columns: {', '.join(map(str, header))}); set id_column to the column "
                                      "that names the CIF files")
            table = pd.read_csv(self.labels_path, dtype={id_column: str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ValidationError(f"[dataset] labels: {self.labels_path} is not a readable CSV "
                                  f"({str(exc).splitlines()[0]}); fix the file or point labels at another") from None

        ids = table[id_column].astype(str).str.strip()
        if ids.isin(["", "nan"]).any() or ids.duplicated().any():
            bad = ids[ids.isin(["", "nan"]) | ids.duplicated()].tolist()[:5]
            raise ValidationError(f"[dataset] labels: {self.labels_path} column {id_column!r} has empty or repeated "
                                  f"ids ({', '.join(bad)}); every row needs its own CIF name")
        numeric = [c for c in table.columns if c != id_column and pd.api.types.is_numeric_dtype(table[c])]
        if not numeric:
            raise ValidationError(f"[dataset] labels: {self.labels_path} has no numeric label column besides "
                                  f"{id_column!r}; add one such as co2_working_capacity")
        ignored = [c for c in table.columns if c != id_column and c not in numeric]
        if ignored:
            log.info("hmof: ignoring non-numeric columns of %s: %s", self.labels_path, ", ".join(map(str, ignored)))

        self._paths = [self.cif_dir / f"{i}.cif" for i in ids]
        missing = [p.name for p in self._paths if not p.is_file()]
        if missing:
            raise ValidationError(f"[dataset] cif_dir: {len(missing)} CIF file(s) listed in {self.labels_path} are "
                                  f"missing from {self.cif_dir}: {', '.join(missing[:5])}"
                                  f"{' ...' if len(missing) > 5 else ''}; download them there, set cif_dir, or "
                                  "remove their rows")

        self.ids = ids.tolist()
        self.targets = {str(c): Target(str(c), _units_for(str(c), units), f"column {c!r} of {labels}")
                        for c in numeric}
        self.default_target = "co2_working_capacity" if "co2_working_capacity" in self.targets else str(numeric[0])
        self._values = table[numeric].to_numpy(dtype=np.float64)
        self._names = [str(c) for c in numeric]
        self._parsed: dict[int, Structure] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, i: int) -> Structure:
        if i not in self._parsed:
            path = self._paths[i]
            targets = dict(zip(self._names, self._values[i].tolist()))
            try:
                text = path.read_text(errors="replace")
                self._parsed[i] = parse_cif(text, self.ids[i], targets)
            except BadCIF as exc:
                raise MolplatError(f"{path}: {exc}; fix the CIF or remove row {self.ids[i]!r} from "
                                   f"{self.labels_path}") from None
        return self._parsed[i]
