"""Registers PhysNet with molplat. Imports no torch, so listing plugins stays cheap."""
from __future__ import annotations

import molplat
from molplat.specs import MAX_CUTOFF, ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "O. T. Unke, M. Meuwly, PhysNet: A Neural Network for Predicting Energies, Forces, Dipole Moments, "
    "and Partial Charges, J. Chem. Theory Comput. 15, 3678-3693 (2019), doi:10.1021/acs.jctc.9b00181"
)

#: widths beyond this only exhaust memory
MAX_WIDTH = 4096
#: the heaviest element (oganesson)
MAX_ATOMIC_NUMBER = 118
#: |total charge| in e beyond which no molecule is meant
MAX_CHARGE = 20.0

SETTINGS = (
    Setting("hidden_channels", "int", 128, "size of the per-atom feature vectors (F)", minimum=1, maximum=MAX_WIDTH),
    Setting("num_rbf", "int", 64, "exponential radial basis functions exp(-beta (exp(-r) - mu_k)^2) per distance (K)",
            minimum=1, maximum=MAX_WIDTH),
    Setting("num_modules", "int", 5, "stacked modules (interaction + residual + output block each)", minimum=1,
            maximum=64),
    Setting("num_residual_interaction", "int", 3, "residual blocks inside each interaction block", minimum=0,
            maximum=64),
    Setting("num_residual_atomic", "int", 2, "atom-wise residual blocks after each interaction block", minimum=0,
            maximum=64),
    Setting("num_residual_output", "int", 1, "residual blocks in each output block", minimum=0, maximum=64),
    Setting("cutoff", "float", 5.0, "radius in Å of the smooth polynomial cutoff; use the representation's cutoff",
            minimum=0.1, maximum=MAX_CUTOFF),
    Setting("readout", "str", "sum", "pool per-atom outputs: sum (extensive, energies), mean (intensive), or auto "
            "(sum for extensive targets such as zpve or u0, mean for the others)", choices=("sum", "mean", "auto")),
    Setting("max_atomic_number", "int", 100, "largest atomic number the element embedding holds", minimum=1,
            maximum=MAX_ATOMIC_NUMBER),
    Setting("electrostatics", "bool", False, "add the Coulomb energy (eV) of the predicted charges, shielded at short "
            "range, to the first target (an energy in eV, readout sum); molecules only"),
    Setting("dispersion", "bool", False, "add a Grimme-D2 pairwise C6 dispersion energy (eV; fixed D2 C6 and radii, "
            "learned global scale s6, not D3) to the first target (an energy in eV, readout sum)"),
    Setting("total_charge", "float", 0.0, "total charge in e that the predicted partial charges of every structure "
            "sum to", minimum=-MAX_CHARGE, maximum=MAX_CHARGE),
    Setting("charge_output", "str", "auto", "the model's corrected partial charges as the first per-atom target: "
            "first (always), none (per-atom targets get their own outputs), auto (when that target is in e, such "
            "as QM9's mulliken_charge)", choices=("auto", "first", "none")),
)


@molplat.hookimpl
def molplat_models() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="physnet",
            kind="model",
            factory="molplat_physnet.model:PhysNet",
            summary="PhysNet: energies and charge-conserving partial charges, optional electrostatics and "
                    "dispersion (molecules and crystals)",
            settings=SETTINGS,
            accepts=("adjacency_list",),
            outputs=("property", "energy", "forces", "atom_property"),
            citation=CITATION,
        )
    ]
