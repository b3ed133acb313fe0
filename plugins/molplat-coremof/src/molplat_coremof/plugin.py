"""Hook implementations of molplat-coremof.

Only light modules are imported here: CIF parsing (ase, pandas) loads when a
dataset is built, never while plugins are listed.
"""
from __future__ import annotations

from molplat.hookspecs import hookimpl
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

COREMOF_CITATION = (
    "Y. G. Chung, E. Haldoupis, B. J. Bucior, M. Haranczyk, S. Lee, H. Zhang, K. D. Vogiatzis, M. Milisavljevic, "
    "S. Ling, J. S. Camp, et al., Advances, updates, and analytics for the Computation-Ready, Experimental "
    "Metal-Organic Framework database: CoRE MOF 2019, J. Chem. Eng. Data 64, 5985 (2019)"
)
HMOF_CITATION = (
    "C. E. Wilmer, M. Leaf, C. Y. Lee, O. K. Farha, B. G. Hauser, J. T. Hupp, R. Q. Snurr, Large-scale screening "
    "of hypothetical metal-organic frameworks, Nat. Chem. 4, 83 (2012)"
)

#: MOFs in the larger release (2019-ASR; 2019-FSR has 7,061)
LARGEST_RELEASE = 12020
#: atoms per unit cell beyond any CoRE MOF (the largest, RIVDIL, has 10,560 sites)
MAX_ATOMS = 100_000

COREMOF_SETTINGS = (
    Setting("subset", "str", "dev", "'dev': ~100 MOFs drawn with a fixed seed; 'full': every MOF that passes",
            choices=("dev", "full")),
    Setting("size", "int", None, "draw this many MOFs with a fixed seed (overrides subset); at most the "
            f"{LARGEST_RELEASE:,} MOFs of 2019-ASR", minimum=1, maximum=LARGEST_RELEASE),
    Setting("max_atoms", "int", 150, "skip MOFs with more atoms per unit cell (keeps dense batches small); "
            "unset: no limit (large cells parse slowly)", minimum=1, maximum=MAX_ATOMS),
    Setting("release", "str", "2019-ASR", "CoRE MOF 2019 flavour: all solvent removed, or free solvent removed",
            choices=("2019-ASR", "2019-FSR")),
    Setting("cache_dir", "path", None, "folder where parsed structures are cached, created when missing "
            "(default: $MOLPLAT_CACHE or ~/.cache/molplat)", must_exist=False),
)

HMOF_SETTINGS = (
    Setting("root", "path", None, "folder of a downloaded hMOF set (CIF files and a labels CSV), relative to the "
            "pipeline file", required=True),
    Setting("labels", "str", "labels.csv",
            "CSV of labels, relative to root (or absolute): an id column and numeric columns"),
    Setting("cif_dir", "str", "", "folder of the CIF files, relative to root ('' : root itself)"),
    Setting("id_column", "str", "id", "CSV column naming each CIF file (without .cif)"),
    Setting("units", "str", "", "units of every label column ('' : mol/kg for uptakes and working "
            "capacities, otherwise unspecified)"),
)


@hookimpl
def molplat_datasets() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="coremof",
            kind="dataset",
            factory="molplat_coremof.coremof:CoREMOF",
            summary="CoRE MOF 2019: experimental MOF crystals with Zeo++ pore descriptors (LCD, PLD, surface areas)",
            settings=COREMOF_SETTINGS,
            citation=COREMOF_CITATION,
        ),
        ComponentSpec(
            name="hmof",
            kind="dataset",
            factory="molplat_coremof.hmof:HMOF",
            summary="hMOF hypothetical MOFs from a folder you downloaded: CIF files plus a labels CSV",
            settings=HMOF_SETTINGS,
            citation=HMOF_CITATION,
        ),
    ]
