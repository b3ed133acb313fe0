"""The CoRE MOF 2019 pore descriptors (computed with Zeo++ by Chung et al.), their names and units."""
from __future__ import annotations

from molplat.structure import Target

# CSV column -> (molplat name, units, description). Values are used as published.
COLUMNS: dict[str, tuple[str, str, str]] = {
    "LCD": ("lcd", "Å", "largest cavity diameter (largest included sphere)"),
    "PLD": ("pld", "Å", "pore limiting diameter (largest free sphere)"),
    "LFPD": ("lfpd", "Å", "largest included sphere along the free path"),
    # The column is headed 'cm3_g' but holds the crystal density: it equals ASA_m2_cm3 / ASA_m2_g.
    "cm3_g": ("density", "g/cm^3", "crystal density"),
    "ASA_m2_cm3": ("asa_volumetric", "m^2/cm^3", "accessible surface area per volume"),
    "ASA_m2_g": ("asa_gravimetric", "m^2/g", "accessible surface area per mass"),
    "NASA_m2_cm3": ("nasa_volumetric", "m^2/cm^3", "non-accessible surface area per volume"),
    "NASA_m2_g": ("nasa_gravimetric", "m^2/g", "non-accessible surface area per mass"),
    "AV_VF": ("void_fraction", "dimensionless", "accessible void fraction"),
    "AV_cm3_g": ("pore_volume", "cm^3/g", "accessible pore volume per mass"),
    "NAV_cm3_g": ("nonaccessible_pore_volume", "cm^3/g", "non-accessible pore volume per mass"),
}

TARGETS: dict[str, Target] = {name: Target(name, units, about) for name, units, about in COLUMNS.values()}
