"""The ``coremof`` dataset: CoRE MOF 2019 crystals with their pore descriptors.

Structures that cannot be used (unreadable CIF, overlapping sites, no cell) are
skipped and counted, never fatal. Parsed structures are cached per selection.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np

from molplat.data import Dataset
from molplat.errors import MolplatError, ValidationError
from molplat.files import cache_dir as molplat_cache_dir
from molplat.structure import Structure, Target
from molplat_coremof import source
from molplat_coremof.cif import BadCIF, parse_cif
from molplat_coremof.packed import Packed
from molplat_coremof.plugin import COREMOF_CITATION
from molplat_coremof.targets import COLUMNS, TARGETS

log = logging.getLogger(__name__)

DEV_SIZE = 100
CACHE_VERSION = "2"  # 2: checksummed files


def _read_labels(csv: Path) -> dict[str, dict[str, float]]:
    """Targets by MOF name; rows with a missing value are left out (none in the 2019 releases)."""
    import pandas as pd

    table = pd.read_csv(csv, usecols=["filename", *COLUMNS])
    values = table[list(COLUMNS)].to_numpy(dtype=np.float64)
    names = [COLUMNS[c][0] for c in COLUMNS]
    return {
        str(f): dict(zip(names, row.tolist()))
        for f, row in zip(table["filename"], values)
        if np.isfinite(row).all()
    }


def _reason(error: BadCIF) -> str:
    text = str(error)
    return "larger than max_atoms" if "max_atoms" in text else text.split(":")[0].split(" (")[0]


def build(release: str, count: int | None, max_atoms: int | None) -> tuple[list[Structure], Counter]:
    """Parse MOFs in seeded order until ``count`` pass (all when None); returns them and the skip counts.

    A draw reads the CIF texts of a window of top-ranked candidates (about 40% of CoRE MOFs have at most
    150 atoms, so 4 * count + 50 nearly always suffices) and parses them in rank order only until enough
    pass; the window grows if not. The full set parses the archive as it streams.
    """
    csv, archive = source.data_files(release)
    labels = _read_labels(csv)
    order = source.ranked(sorted(labels))
    done: dict[str, Structure | BadCIF] = {}

    def parse(name: str, text: str | None) -> None:
        if text is None:
            done[name] = BadCIF("CIF missing from the archive")
            return
        try:
            done[name] = parse_cif(text, name, labels[name], max_atoms)
        except BadCIF as exc:
            done[name] = exc

    if count is None:
        from tqdm.auto import tqdm

        # The full set is a one-off parse of minutes (then cached): show how far it has got.
        cifs = source.iter_cifs(archive, set(order))
        for name, text in tqdm(cifs, total=len(order), desc=f"parse CoRE MOF {release} CIFs", unit="cif"):
            parse(name, text)
        for name in set(order) - set(done):
            parse(name, None)
        examined = order
    else:
        window, kept, examined = min(len(order), 4 * count + 50), 0, []
        while kept < count and len(examined) < len(order):
            texts = dict(source.iter_cifs(archive, set(order[len(examined):window])))
            for name in order[len(examined):window]:
                parse(name, texts.get(name))
                examined.append(name)
                kept += isinstance(done[name], Structure)
                if kept == count:
                    break
            window = min(len(order), 4 * window)
    chosen = [done[n] for n in examined if isinstance(done[n], Structure)]
    skipped = Counter(_reason(done[n]) for n in examined if isinstance(done[n], BadCIF))
    return sorted(chosen, key=lambda s: s.id), skipped  # type: ignore[return-value, union-attr]


def _cache_path(cache_dir: str | os.PathLike | None, release: str, selection: str, max_atoms: int | None) -> Path:
    """One file per release, selection and atom limit; the digest changes with the source files."""
    key = f"{CACHE_VERSION}|{source.fingerprint(*source.data_files(release))}|{list(COLUMNS)}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return molplat_cache_dir(cache_dir, "coremof") / f"{release}-{selection}-max{max_atoms or 'all'}-{digest}.npz"


class CoREMOF(Dataset):
    """CoRE MOF 2019 (Chung et al.): computation-ready experimental MOFs, periodic, in Å."""

    targets: dict[str, Target] = TARGETS
    default_target = "lcd"
    citation = COREMOF_CITATION

    def __init__(self, subset: str = "dev", size: int | None = None, max_atoms: int | None = 150,
                 release: str = "2019-ASR", cache_dir: str | None = None) -> None:
        if subset not in ("dev", "full"):
            raise ValidationError(f"[dataset] subset: {subset!r} is not allowed; use 'dev' or 'full'")
        if release not in ("2019-ASR", "2019-FSR"):
            raise ValidationError(f"[dataset] release: {release!r} is not allowed; use '2019-ASR' or '2019-FSR'")
        for key, value in (("size", size), ("max_atoms", max_atoms)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValidationError(f"[dataset] {key}: {value!r} must be a positive integer, or left out")
        self.subset, self.size, self.max_atoms, self.release = subset, size, max_atoms, release
        count = size if size is not None else (DEV_SIZE if subset == "dev" else None)
        selection = f"size{size}" if size is not None else subset
        path = _cache_path(cache_dir, release, selection, max_atoms)
        cached = Packed.load(path, "skip_reasons", "skip_counts")
        if cached is not None and cached[0].target_names.tolist() == list(TARGETS):
            self._packed, extra = cached
            self.skipped = Counter(dict(zip(extra["skip_reasons"].tolist(), extra["skip_counts"].tolist())))
        else:
            start = time.perf_counter()
            structures, self.skipped = build(release, count, max_atoms)
            if not structures:
                raise MolplatError(f"no CoRE MOF {release} structure passed max_atoms={max_atoms}; raise max_atoms")
            self._packed = Packed.from_structures(structures, list(TARGETS))
            self._packed.save(path, skip_reasons=np.array(list(self.skipped), dtype=str),
                              skip_counts=np.array(list(self.skipped.values()), dtype=np.int64))
            log.info("coremof: parsed %d %s structures in %.1f s; skipped %d (%s)", len(structures), release,
                     time.perf_counter() - start, sum(self.skipped.values()),
                     ", ".join(f"{n} {r}" for r, n in self.skipped.most_common()) or "none")
        if count is not None and len(self._packed) < count:
            log.warning("coremof: only %d structures pass max_atoms=%s, fewer than the %d asked for",
                        len(self._packed), max_atoms, count)

    def __len__(self) -> int:
        return len(self._packed)

    def get(self, i: int) -> Structure:
        return self._packed.structure(i)

    @property
    def ids(self) -> list[str]:
        return self._packed.ids.tolist()

    def values(self, target: str) -> np.ndarray:
        """All values of one target, in dataset order."""
        names = self._packed.target_names.tolist()
        if target not in names:
            raise ValidationError(f"{target!r} is not a coremof target; targets: {', '.join(names)}")
        return self._packed.targets[:, names.index(target)].copy()
