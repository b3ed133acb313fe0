"""The QM9 properties carried by the qm9pack files, their molplat names, units and kinds.

Energies are stored in Hartree in the files and converted to eV on load, so that
every molplat component sees eV (see molplat.structure). Every property was computed
by Ramakrishnan et al. with B3LYP/6-31G(2df,p) at the relaxed geometry.
"""
from __future__ import annotations

from dataclasses import dataclass

from ase.units import create_units

from molplat.structure import Target


@dataclass(frozen=True)
class Column:
    """One numeric column of a source file and how it becomes a molplat target.

    ``extensive``: a total that adds up over separated molecules (the core then fits
    per-element reference values on the training split); ``usable``: False for values an
    invariant model cannot learn (listed, refused as targets).
    """

    name: str  # molplat target name
    source: str  # column header in the qm9pack CSV
    units: str  # units after conversion
    factor: float  # multiply the file value by this
    description: str
    extensive: bool = False
    usable: bool = True

    @property
    def target(self) -> Target:
        return Target(self.name, self.units, self.description, extensive=self.extensive, usable=self.usable)


# eV per Hartree, CODATA 2018 (27.211386245988; ASE derives 27.2113862458). ase.units.Hartree itself
# still follows CODATA 2014 (27.211386024), which differs in the 9th digit.
_HA = float(create_units("2018")["Hartree"])

# Columns of qm9_part{1,2,3}.csv, in the order of the original QM9 property table.
MAIN_COLUMNS: tuple[Column, ...] = (
    Column("rota", "RotA_GHz", "GHz", 1.0, "rotational constant A (largest; 0 for linear molecules)"),
    Column("rotb", "RotB_GHz", "GHz", 1.0, "rotational constant B"),
    Column("rotc", "RotC_GHz", "GHz", 1.0, "rotational constant C (smallest)"),
    Column("mu", "Dipole_debye", "D", 1.0, "magnitude of the electric dipole moment"),
    Column("alpha", "Polarizability_bohr3", "bohr^3", 1.0,
           "isotropic static polarizability (a third of the trace of the tensor; rotation invariant)"),
    Column("homo", "HOMO_au", "eV", _HA, "energy of the highest occupied molecular orbital (HOMO)"),
    Column("lumo", "LUMO_au", "eV", _HA, "energy of the lowest unoccupied molecular orbital (LUMO)"),
    Column("gap", "HOMO_LUMO_gap_au", "eV", _HA, "HOMO-LUMO gap, LUMO minus HOMO energy"),
    Column("r2", "R2_bohr2", "bohr^2", 1.0, "electronic spatial extent <R^2>"),
    Column("zpve", "ZPVE_au", "eV", _HA,
           "zero-point vibrational energy, the sum of hbar*omega/2 over the normal modes",
           extensive=True),
    Column("u0", "InternalEnergy_0K_au", "eV", _HA,
           "total internal energy at 0 K (not the atomization energy)", extensive=True),
    Column("u", "InternalEnergy_298K_au", "eV", _HA, "total internal energy at 298.15 K",
           extensive=True),
    Column("h", "Enthalphy_298K_au", "eV", _HA, "total enthalpy at 298.15 K", extensive=True),
    Column("g", "GibbsFreeEnergy_298K_au", "eV", _HA, "total Gibbs free energy at 298.15 K",
           extensive=True),
    Column("cv", "Heatcapacity_Cv_cal_mol_K", "cal/(mol K)", 1.0, "heat capacity at constant volume, 298.15 K"),
)

# Columns of qm9_polarizability.csv: the static polarizability tensor. Its components are not in the
# frame of the stored geometry (NH3's alpha_xz is 0 although its C3 axis is tilted in the file), so no
# model of the stored atoms can predict them: listed, but refused as targets.
TENSOR_COLUMNS: tuple[Column, ...] = tuple(
    Column(f"alpha_{ij}", f"A_{ij}", "bohr^3", 1.0,
           f"{ij} component of the static polarizability tensor, given in a frame other than that of the stored "
           "geometry, so no model of the stored atoms can learn it; use the isotropic alpha", usable=False)
    for ij in ("xx", "xy", "yy", "xz", "yz", "zz")
)

COLUMNS: tuple[Column, ...] = MAIN_COLUMNS + TENSOR_COLUMNS


@dataclass(frozen=True)
class AtomColumn:
    """A per-atom column of the main files: one bracketed list of numbers per molecule."""

    name: str
    source: str
    units: str
    description: str

    @property
    def target(self) -> Target:
        return Target(self.name, self.units, self.description, level="atom")


ATOM_COLUMNS: tuple[AtomColumn, ...] = (
    AtomColumn("mulliken_charge", "Mulliken_pop", "e",
               "Mulliken partial charge of each atom, in elementary charges (sums to 0 over a molecule)"),
)

TARGETS: dict[str, Target] = {c.name: c.target for c in COLUMNS + ATOM_COLUMNS}
