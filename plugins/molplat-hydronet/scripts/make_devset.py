"""Make the dev set shipped with molplat-hydronet: the default settings, (H2O)n for n = 3 to 12.

    python plugins/molplat-hydronet/scripts/make_devset.py

GFN2-xTB through tblite (one thread), a few minutes on one core. Writes
src/molplat_hydronet/data/devset.npz: the packed clusters, the monomer energy, the key of
the settings it was made with (a run with those settings reads it instead of generating)
and the tblite version.
"""
from __future__ import annotations

import json
import time
from importlib.metadata import version

import numpy as np

from molplat.files import atomic_save_npz
from molplat_hydronet.dataset import DEV_LARGEST, SHIPPED, dev_key, generate_dev
from molplat_hydronet.plugin import SMALLEST

SIZES = range(SMALLEST, DEV_LARGEST + 1)
CLUSTERS, FRAMES, TEMPERATURE, SEED = 3, 8, 300.0, 0  # the dataset's defaults


def main() -> None:
    start = time.perf_counter()
    packed, monomer = generate_dev(SIZES, CLUSTERS, FRAMES, TEMPERATURE, SEED)
    key = dev_key(SIZES, CLUSTERS, FRAMES, TEMPERATURE, SEED)
    SHIPPED.parent.mkdir(parents=True, exist_ok=True)
    fields = {name: getattr(packed, name) for name in ("ids", "numbers", "positions", "offsets", "energies",
                                                        "waters", "groups", "forces")}
    atomic_save_npz(SHIPPED, **fields, monomer=np.float64(monomer), key=np.array(json.dumps(key, sort_keys=True)),
                    tblite=np.array(version("tblite")))
    print(f"{len(packed)} structures of {len(set(packed.groups.tolist()))} clusters, n = {SIZES.start}-"
          f"{SIZES.stop - 1}, in {time.perf_counter() - start:.0f} s: {SHIPPED} ({SHIPPED.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
