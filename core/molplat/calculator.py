"""An ASE Calculator backed by a trained molplat model, for simulators and for users' own ASE scripts."""
from __future__ import annotations

import warnings
from typing import Any

from ase.calculators.calculator import Calculator, all_changes

from molplat.structure import Structure


class MolplatCalculator(Calculator):
    """Energy (the run's target, in its units) and forces as minus its gradient.

    Dynamics are only physical for a model trained on an energy, ideally with
    ``[trainer] task = "energy_forces"``; a model trained on energies alone still gives
    the gradient of what it learnt, and the calculator says so once.

    For an ensemble run the energy and forces are the members' mean, and
    ``results["energy_std"]`` (eV) and ``results["forces_std"]`` ([n, 3], eV/Å) their
    standard deviation: ``calc.get_property("energy_std", atoms)``.
    """

    implemented_properties = ["energy", "free_energy", "forces"]
    ensemble_properties = ["energy_std", "forces_std"]

    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model  # molplat.predict.TrainedModel
        if model.ensemble_size > 1:
            self.implemented_properties = self.implemented_properties + self.ensemble_properties
        if not model.task.with_forces:
            warnings.warn(f"the model of {model.run_dir} was not trained on forces; its forces are the gradient "
                          f"of its {model.target!r} prediction", stacklevel=2)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        out = self.model.predict([Structure.from_atoms(self.atoms)], forces=True)
        energy = float(out["y"][0])
        self.results = {"energy": energy, "free_energy": energy, "forces": out["forces"][0]}
        if "y_std" in out:
            self.results["energy_std"] = float(out["y_std"][0])
            self.results["forces_std"] = out["forces_std"][0]
