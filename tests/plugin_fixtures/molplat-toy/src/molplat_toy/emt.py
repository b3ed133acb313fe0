"""Rattled copper cells labelled by ASE's EMT potential: real energies and forces, made on the spot."""
import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

from molplat.data import Dataset
from molplat.structure import Structure, Target


class EMTCopper(Dataset):
    targets = {"energy": Target("energy", "eV", "EMT potential energy", extensive=True)}
    default_target = "energy"

    def __init__(self, count: int = 40, seed: int = 0, poison: str = "") -> None:
        self.poison = poison
        rng = np.random.default_rng(seed)
        self.items = []
        for k in range(count):
            atoms = bulk("Cu", "fcc", a=3.61 + rng.normal(0, 0.03), cubic=True)
            atoms.rattle(0.08, seed=int(rng.integers(1 << 30)))
            atoms.calc = EMT()
            structure = Structure.from_atoms(atoms, targets={"energy": atoms.get_potential_energy()}, id=f"cu{k}")
            structure.forces = atoms.get_forces()
            self.items.append(structure)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, index: int) -> Structure:
        """``poison`` spoils structure 3 the way bad files do: NaN coordinates or an element no model embeds."""
        s = self.items[index]
        if index == 3 and self.poison == "nan":
            positions = s.positions.copy()
            positions[0, 0] = np.nan
            return Structure(s.numbers, positions, s.cell, s.pbc, s.forces, dict(s.targets), s.id)
        if index == 3 and self.poison == "heavy":
            numbers = s.numbers.copy()
            numbers[0] = 118
            return Structure(numbers, s.positions, s.cell, s.pbc, s.forces, dict(s.targets), s.id)
        return s
