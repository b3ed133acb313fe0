"""The ``smiles_csv`` dataset: SMILES rows featurised by RDKit once, in worker processes, then cached.

Each molecule becomes a :class:`MolecularStructure`: a molplat Structure that also carries
its bond graph (atom and bond categories from RDKit), which the ``molecular_graph``
representation reads. In ``graph`` mode the atoms are the heavy atoms (hydrogens are a
per-atom count) and the positions are a 2-D depiction, a drawing rather than a geometry:
pair it with a graph model (``gine``), never a geometric one. In ``3d`` mode the atoms
include the hydrogens and the positions are an ETKDG conformer relaxed with MMFF94 (seeded),
fit for any geometric model (SchNet on adjacency_list).

Rows RDKit cannot read (or, in 3d mode, embed) are left out with one warning naming how
many and the first few line numbers; they never stop the run.
"""
from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from molplat.data import Dataset
from molplat.errors import ValidationError
from molplat.files import atomic_save_npz, cache_dir, load_npz
from molplat.structure import Structure, Target
from molplat_smiles import reading
from molplat_smiles.features import featurize_chunk
from molplat_smiles.plugin import CITATION

log = logging.getLogger(__name__)

#: molecules of the qm9-dev subset
DEV_SIZE = 2000
#: below this many molecules worker processes cost more than they save
PARALLEL_FROM = 1000
#: molecules per task handed to a worker
CHUNK = 256
#: 3: cages get conformer (or lifted) positions in graph mode
CACHE_VERSION = "3"
_FIELDS = ("ids", "smiles", "lines", "targets", "target_names", "numbers", "positions", "atom_offsets",
           "atom_features", "bonds", "bond_features", "bond_offsets")
GAP = Target("gap", "eV", "HOMO-LUMO gap, LUMO minus HOMO energy")


@dataclass
class MolecularStructure(Structure):
    """A Structure with the bond graph of its SMILES: ``graph`` holds ``atom_features`` [n, 7],
    ``bonds`` [B, 2] (each bond once) and ``bond_features`` [B, 3] (see ``molplat_smiles.features``)."""

    smiles: str = ""
    graph: dict[str, np.ndarray] | None = None


def structure_from_smiles(smiles: str, mode: str = "graph", seed: int = 0, id: str = "") -> MolecularStructure:
    """One molecule as the dataset builds it, e.g. to predict with a model trained on ``smiles_csv``."""
    from molplat_smiles.features import featurize_smiles

    arrays = featurize_smiles(smiles, mode, seed)
    return MolecularStructure(arrays["numbers"], arrays["positions"], id=id or smiles, smiles=smiles,
                              graph={k: arrays[k] for k in ("atom_features", "bonds", "bond_features")})


def _workers(setting: int | None) -> int:
    return min(8, os.cpu_count() or 1) if setting is None else setting


def featurize_rows(rows: reading.Rows, mode: str, seed: int, num_workers: int | None) -> dict[str, np.ndarray]:
    """Featurise every row (in worker processes for large sets, with a progress bar); pack the valid ones."""
    from tqdm.auto import tqdm

    tasks = [(rows.smiles[k:k + CHUNK].tolist(), mode, seed) for k in range(0, len(rows.smiles), CHUNK)]
    workers = _workers(num_workers) if len(rows.smiles) >= PARALLEL_FROM else 0
    results: list[Any] = []
    with tqdm(total=len(rows.smiles), desc=f"featurising SMILES ({mode})", unit="molecule", leave=False,
              disable=len(rows.smiles) < PARALLEL_FROM) as bar:
        if workers > 1:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                for chunk in pool.map(featurize_chunk, tasks):
                    results += chunk
                    bar.update(len(chunk))
        else:
            for task in tasks:
                chunk = featurize_chunk(task)
                results += chunk
                bar.update(len(chunk))
    good = np.array([isinstance(r, dict) for r in results], dtype=bool)
    _report_invalid(rows, results, good)
    kept = [r for r in results if isinstance(r, dict)]
    if not kept:
        raise ValidationError(f"[dataset] {rows.source}: RDKit reads none of the {len(results)} SMILES; check "
                              "smiles_column names the SMILES column")
    natoms = np.array([len(r["numbers"]) for r in kept], dtype=np.int64)
    nbonds = np.array([len(r["bonds"]) for r in kept], dtype=np.int64)
    return {
        "ids": rows.ids[good], "smiles": rows.smiles[good], "lines": rows.lines[good],
        "targets": rows.targets[good], "target_names": np.array(rows.target_names),
        "numbers": np.concatenate([r["numbers"] for r in kept]),
        "positions": np.concatenate([r["positions"] for r in kept]),
        "atom_offsets": np.concatenate([[0], np.cumsum(natoms)]).astype(np.int64),
        "atom_features": np.concatenate([r["atom_features"] for r in kept]),
        "bonds": np.concatenate([r["bonds"] for r in kept]).reshape(-1, 2),
        "bond_features": np.concatenate([r["bond_features"] for r in kept]).reshape(-1, 3),
        "bond_offsets": np.concatenate([[0], np.cumsum(nbonds)]).astype(np.int64),
    }


def _report_invalid(rows: reading.Rows, results: list[Any], good: np.ndarray) -> None:
    bad = np.flatnonzero(~good)
    if len(bad) == 0:
        return
    shown = "; ".join(f"line {int(rows.lines[k])} {str(rows.smiles[k])!r} ({results[k]})" for k in bad[:3])
    more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
    log.warning("smiles_csv: left out %d of %d rows of %s whose SMILES RDKit cannot build: %s%s",
                len(bad), len(results), rows.source, shown, more)


def _draw(n: int, count: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).permutation(n)[:min(count, n)])


class SmilesCSV(Dataset):
    """Molecules from a SMILES CSV (or QM9's SMILES), as bond graphs or conformers; targets in eV."""

    targets: dict[str, Target] = {}  # known per instance: the file's target columns
    default_target = "gap"
    citation = CITATION

    def __init__(self, path: str | None = None, subset: str = "qm9-dev", size: int | None = None,
                 smiles_column: str = "smiles", target_columns: list[str] | None = None, units: str = "eV",
                 mode: str = "graph", seed: int = 0, num_workers: int | None = None,
                 cache_dir: str | None = None) -> None:
        if mode not in ("graph", "3d"):
            raise ValidationError(f"[dataset] mode: {mode!r} is not allowed; use 'graph' or '3d'")
        if units not in reading.UNITS:
            raise ValidationError(f"[dataset] units: {units!r} is not one of {', '.join(reading.UNITS)}")
        if subset not in ("qm9-dev", "qm9"):
            raise ValidationError(f"[dataset] subset: {subset!r} is not allowed; use 'qm9-dev' or 'qm9'")
        self.path = None if path is None else Path(path)
        self.mode, self.seed = mode, seed
        root = _cache_root(cache_dir)
        if self.path is not None:
            if not self.path.is_file():
                raise ValidationError(f"[dataset] path: {self.path}: no such file; give the CSV's path (relative "
                                      "to the pipeline file), e.g. pcqm4m-v2/raw/data.csv.gz")
            stat = self.path.stat()
            source = f"{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}|{smiles_column}|{target_columns}|{units}"
            load_rows = lambda: reading.read_csv(self.path, smiles_column, target_columns, units)  # noqa: E731
        else:
            folder = reading.qm9_folder()
            count = size if size is not None else (DEV_SIZE if subset == "qm9-dev" else None)
            source = f"qm9|{reading.qm9_fingerprint(folder)}|{count}|{seed}"
            load_rows = lambda: _qm9_rows(folder, root, count, seed)  # noqa: E731
        self._fingerprint = source
        key = hashlib.sha256(f"{CACHE_VERSION}|{source}|{mode}|{seed}|{_rdkit_version()}".encode()).hexdigest()[:16]
        cached = root / f"{mode}-{key}.npz"
        arrays = load_npz(cached, "SMILES cache")
        if arrays is None or any(f not in arrays for f in _FIELDS):
            arrays = featurize_rows(load_rows(), mode, seed, num_workers)
            atomic_save_npz(cached, **arrays)
        self._a = arrays
        names = arrays["target_names"].tolist()
        self._names = names
        self.targets = {name: GAP if name == "gap" else Target(name, "eV", f"column {name!r} of the CSV")
                        for name in names}
        if "gap" not in names:
            self.default_target = names[0]

    def __len__(self) -> int:
        return len(self._a["ids"])

    def fingerprint(self) -> str:
        return f"{self._fingerprint}|{self.mode}|{self.seed}"

    def get(self, i: int) -> MolecularStructure:
        a = self._a
        start, stop = a["atom_offsets"][i], a["atom_offsets"][i + 1]
        b0, b1 = a["bond_offsets"][i], a["bond_offsets"][i + 1]
        targets = {name: float(v) for name, v in zip(self._names, a["targets"][i]) if np.isfinite(v)}
        return MolecularStructure(
            numbers=a["numbers"][start:stop], positions=a["positions"][start:stop], targets=targets,
            id=str(a["ids"][i]), smiles=str(a["smiles"][i]),
            graph={"atom_features": a["atom_features"][start:stop], "bonds": a["bonds"][b0:b1],
                   "bond_features": a["bond_features"][b0:b1]},
        )

    @property
    def ids(self) -> list[str]:
        return self._a["ids"].tolist()

    def values(self, target: str) -> np.ndarray:
        """All values of one target in dataset order (NaN where a row has none)."""
        if target not in self._names:
            raise ValidationError(f"{target!r} is not a target of this CSV; targets: {', '.join(self._names)}")
        return self._a["targets"][:, self._names.index(target)].copy()


def _cache_root(setting: str | None) -> Path:
    return cache_dir(setting, "smiles")


def _rdkit_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("rdkit")
    except metadata.PackageNotFoundError:  # pragma: no cover - a declared dependency
        return "?"


def _qm9_rows(folder: Path, root: Path, count: int | None, seed: int) -> reading.Rows:
    """QM9's SMILES and gaps, parsed once into a cache; ``count`` rows drawn with ``seed``."""
    table = root / f"qm9-rows-{hashlib.sha256(reading.qm9_fingerprint(folder).encode()).hexdigest()[:12]}.npz"
    data = load_npz(table, "QM9 SMILES cache")
    if data is None or any(k not in data for k in ("ids", "smiles", "lines", "targets")):
        rows = reading.read_qm9(folder)
        atomic_save_npz(table, ids=rows.ids, smiles=rows.smiles, lines=rows.lines, targets=rows.targets)
    else:
        rows = reading.Rows(data["ids"], data["smiles"], data["lines"], data["targets"], ["gap"], "qm9pack")
    if count is not None:
        rows = rows.take(_draw(len(rows.ids), count, seed))
    return rows
