"""Write examples/data/qm9-xtb.extxyz: rattled QM9 dev-set molecules with GFN2-xTB energies and forces.

The fine-tuning example (examples/finetune-xtb.toml) trains on this file. It is shipped,
so nothing runs xTB at run time; this script says how it was made and remakes it
byte for byte on the same tblite version:

    pip install tblite            # GFN2-xTB as an ASE calculator (not a molplat dependency)
    python examples/data/make_xtb_set.py

Which molecules: the first MOLECULES of the QM9 dev set (in its shipped order), each
rattled RATTLES times with a Gaussian of RATTLE_STD Å per coordinate from a fixed seed,
so the set holds forces far from zero (a relaxed geometry has none to learn).
Units: eV and eV/Å (tblite's ASE calculator returns them).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

MOLECULES = 40
RATTLES = 3
RATTLE_STD = 0.05  # Å
SEED = 0
OUT = Path(__file__).with_name("qm9-xtb.extxyz")


def labelled_structures(molecules: int = MOLECULES, rattles: int = RATTLES, seed: int = SEED) -> list:
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from tblite.ase import TBLite

    from molplat_qm9.dataset import QM9

    dev = QM9(subset="dev")
    rng = np.random.default_rng(seed)
    out = []
    for index in range(molecules):
        structure = dev[index]
        for copy in range(rattles):
            atoms = Atoms(numbers=structure.numbers, positions=structure.positions
                          + rng.normal(0.0, RATTLE_STD, structure.positions.shape))
            atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
            atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
            atoms.info["qm9_id"] = structure.id
            atoms.info["rattle"] = copy
            out.append(atoms)
    return out


def main() -> None:
    from ase.io import write

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--molecules", type=int, default=MOLECULES)
    args = parser.parse_args()
    structures = labelled_structures(args.molecules)
    write(args.out, structures, format="extxyz")
    print(f"wrote {len(structures)} structures to {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
