"""Unit conversions into molplat's units (eV, eV/Å, Å), with the constants named.

MD17 and rMD17 publish energies in kcal/mol and forces in kcal/mol/Å; sGDML-style files may
say otherwise in their ``e_unit``/``r_unit`` keys, which are honoured when present.
"""
from __future__ import annotations

#: kJ/mol per eV: N_A x e / 1000 (CODATA 2018, exact since the 2019 SI)
KJ_PER_MOL_PER_EV = 96.48533212331002
#: 1 kcal/mol in eV (thermochemical calorie, 4.184 J): 0.0433641 eV
KCAL_PER_MOL_EV = 4.184 / KJ_PER_MOL_PER_EV
#: 1 kJ/mol in eV
KJ_PER_MOL_EV = 1.0 / KJ_PER_MOL_PER_EV
#: 1 Hartree in eV (CODATA 2018)
HARTREE_EV = 27.211386245988
#: 1 Bohr in Å (CODATA 2018)
BOHR_ANGSTROM = 0.529177210903
#: 1 nm in Å
NM_ANGSTROM = 10.0

#: energy unit names (lower case, as sGDML files write them) -> eV per unit
ENERGY_UNITS: dict[str, float] = {
    "kcal/mol": KCAL_PER_MOL_EV,
    "kcal mol-1": KCAL_PER_MOL_EV,
    "kj/mol": KJ_PER_MOL_EV,
    "ev": 1.0,
    "ha": HARTREE_EV,
    "hartree": HARTREE_EV,
    "au": HARTREE_EV,
    "a.u.": HARTREE_EV,
}
#: length unit names -> Å per unit
LENGTH_UNITS: dict[str, float] = {
    "ang": 1.0,
    "angstrom": 1.0,
    "å": 1.0,
    "a": 1.0,
    "bohr": BOHR_ANGSTROM,
    "au": BOHR_ANGSTROM,
    "a.u.": BOHR_ANGSTROM,
    "nm": NM_ANGSTROM,
}
#: what MD17 and rMD17 files use when they say nothing
PUBLISHED_ENERGY_UNIT = "kcal/mol"
PUBLISHED_LENGTH_UNIT = "Ang"
