"""Writes the small EMT data set that the dataset template ships (run once; the output is committed).

    python templates/plugin/kinds/dataset/make_molecules.py

32 rattled copies of 16 small H/C/N/O molecules from ASE's G2 collection, labelled with
ASE's EMT energies (eV) and forces (eV/Å). EMT is a toy potential for molecules, which is all
a template needs: real numbers with forces, no download, the same file on every machine.
"""
from __future__ import annotations

from pathlib import Path

from ase.build import molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

MOLECULES = ("CH4", "NH3", "H2O", "C2H2", "C2H4", "C2H6", "HCN", "CO2", "H2CO", "CH3OH", "H3CNH2",
             "HCOOH", "CH3CHO", "CH3CN", "N2H4", "CH3CH2OH")
COPIES = 2
RATTLE = 0.05  # Å
OUTPUT = Path(__file__).resolve().parents[2] / "src" / "{{ package }}" / "data" / "molecules.extxyz"


def build() -> list:
    images = []
    for copy in range(COPIES):
        for index, name in enumerate(MOLECULES):
            atoms = molecule(name)
            atoms.rattle(RATTLE, seed=100 * copy + index)
            atoms.calc = EMT()
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
            atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
            atoms.info["name"] = f"{name}-{copy}"
            images.append(atoms)
    return images


if __name__ == "__main__":
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    write(OUTPUT, build(), format="extxyz")
    print(f"wrote {OUTPUT}")
