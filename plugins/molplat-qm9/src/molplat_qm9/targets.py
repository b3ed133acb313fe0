"""The QM9 properties carried by the qm9pack files, their molplat names and units.

Energies are stored in Hartree in the files and converted to eV on load, so that
every molplat component sees eV (see molplat.structure).
"""
from __future__ import annotations

from dataclasses import dataclass

from ase.units import create_units

from molplat.structure import Target


@dataclass(frozen=True)
class Column:
    """One numeric column of a source file and how it becomes a molplat target."""

    name: str  # molplat target name
    source: str  # column header in the qm9pack CSV
    units: str  # units after conversion
    factor: float  # multiply the file value by this
    description: str


# eV per Hartree, CODATA 2018 (27.211386245988; ASE derives 27.2113862458). ase.units.Hartree itself
# still follows CODATA 2014 (27.211386024), which differs in the 9th digit.
_HA = float(create_units("2018")["Hartree"])

# Columns of qm9_part{1,2,3}.csv, in the order of the original QM9 property table.
MAIN_COLUMNS: tuple[Column, ...] = (
    Column("rota", "RotA_GHz", "GHz", 1.0, "rotational constant A"),
    Column("rotb", "RotB_GHz", "GHz", 1.0, "rotational constant B"),
    Column("rotc", "RotC_GHz", "GHz", 1.0, "rotational constant C"),
    Column("mu", "Dipole_debye", "D", 1.0, "dipole moment"),
    Column("alpha", "Polarizability_bohr3", "bohr^3", 1.0, "isotropic polarizability"),
    Column("homo", "HOMO_au", "eV", _HA, "energy of the highest occupied molecular orbital"),
    Column("lumo", "LUMO_au", "eV", _HA, "energy of the lowest unoccupied molecular orbital"),
    Column("gap", "HOMO_LUMO_gap_au", "eV", _HA, "HOMO-LUMO gap"),
    Column("r2", "R2_bohr2", "bohr^2", 1.0, "electronic spatial extent <R^2>"),
    Column("zpve", "ZPVE_au", "eV", _HA, "zero-point vibrational energy"),
    Column("u0", "InternalEnergy_0K_au", "eV", _HA, "total internal energy at 0 K"),
    Column("u", "InternalEnergy_298K_au", "eV", _HA, "total internal energy at 298.15 K"),
    Column("h", "Enthalphy_298K_au", "eV", _HA, "total enthalpy at 298.15 K"),
    Column("g", "GibbsFreeEnergy_298K_au", "eV", _HA, "total Gibbs free energy at 298.15 K"),
    Column("cv", "Heatcapacity_Cv_cal_mol_K", "cal/(mol K)", 1.0, "heat capacity at constant volume, 298.15 K"),
)

# Columns of qm9_polarizability.csv: the static polarizability tensor, in the frame of the stored geometry.
TENSOR_COLUMNS: tuple[Column, ...] = tuple(
    Column(f"alpha_{ij}", f"A_{ij}", "bohr^3", 1.0,
           f"{ij} component of the static polarizability tensor, in the frame of the stored geometry")
    for ij in ("xx", "xy", "yy", "xz", "yz", "zz")
)

COLUMNS: tuple[Column, ...] = MAIN_COLUMNS + TENSOR_COLUMNS

TARGETS: dict[str, Target] = {c.name: Target(c.name, c.units, c.description) for c in COLUMNS}
