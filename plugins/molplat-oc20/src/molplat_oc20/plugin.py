"""Hook implementations of molplat-oc20.

Only light modules are imported here: ASE (reading, EMT) loads when a dataset is
built, never while plugins are listed.
"""
from __future__ import annotations

from molplat.hookspecs import hookimpl
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "L. Chanussot, A. Das, S. Goyal, T. Lavril, M. Shuaibi, M. Riviere, K. Tran, J. Heras-Domingo, C. Ho, W. Hu, "
    "A. Palizhati, A. Sriram, B. Wood, J. Yoon, D. Parikh, C. L. Zitnick, Z. Ulissi, Open Catalyst 2020 (OC20) "
    "Dataset and Community Challenges, ACS Catal. 11, 6059 (2021); data licence CC BY 4.0"
)
LICENCE = "CC BY 4.0"

#: adsorbate+slab systems the EMT dev set can hold (metals x facets x adsorbates x sites, see devset.py)
MAX_SYSTEMS = 150
#: BFGS steps per relaxation, at most
MAX_STEPS = 500

DEV_SETTINGS = (
    Setting("systems", "int", 40, "dev set (no path): adsorbate+slab systems relaxed with ASE's EMT, drawn with "
            "seed from Cu, Pt, Ni, Pd, Au fcc(111)/(100) slabs and H, C, N, O, OH, CO adsorbates",
            minimum=1, maximum=MAX_SYSTEMS),
    Setting("seed", "int", 0, "dev set: seed of the draw of systems, adsorbate placement and rattling",
            minimum=0, maximum=2**31 - 1),
    Setting("max_steps", "int", 40, "dev set: BFGS steps per relaxation at most (fmax 0.05 eV/Å)",
            minimum=1, maximum=MAX_STEPS),
    Setting("cache_dir", "path", None, "folder where the dev set and parsed files are cached, created when missing "
            "(default: $MOLPLAT_CACHE or ~/.cache/molplat; subfolder oc20/)", must_exist=False),
)

S2EF_SETTINGS = (
    Setting("path", "path", None, "a folder of uncompressed OC20 S2EF files (N.extxyz beside N.txt), or one .extxyz "
            "file with its .txt; unset: the EMT dev set"),
    Setting("pattern", "str", "*.extxyz", "glob of the extxyz files inside path"),
    Setting("split_by", "str", "system", "'system': every frame of one adsorbate+slab system in one split (no "
            "leakage along a relaxation); 'frame': frames split independently", choices=("system", "frame")),
    *DEV_SETTINGS,
)

IS2RE_SETTINGS = (
    Setting("path", "path", None, "an extxyz file, an ASE database (.db) or a folder of them holding initial "
            "structures with the relaxed energy in info (converted from the published LMDB: see the README); "
            "unset: the EMT dev set"),
    Setting("pattern", "str", "*.extxyz", "glob of the files inside path ('*.db' for ASE databases)"),
    Setting("energy_key", "str", "auto", "info key of the relaxed adsorption energy (eV); 'auto': y_relaxed, "
            "else relaxed_energy"),
    *DEV_SETTINGS,
)


@hookimpl
def molplat_datasets() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="oc20_s2ef",
            kind="dataset",
            factory="molplat_oc20.datasets:OC20S2EF",
            summary="OC20 S2EF: adsorbate+catalyst slab frames with energies and forces (eV, eV/Å), from the "
                    f"published extxyz+txt files or an EMT dev set; data {LICENCE}",
            settings=S2EF_SETTINGS,
            citation=CITATION,
        ),
        ComponentSpec(
            name="oc20_is2re",
            kind="dataset",
            factory="molplat_oc20.datasets:OC20IS2RE",
            summary="OC20 IS2RE: initial adsorbate+catalyst structures with their relaxed adsorption energy (eV), "
                    f"from converted extxyz/ASE db files or an EMT dev set; data {LICENCE}",
            settings=IS2RE_SETTINGS,
            citation=CITATION,
        ),
    ]
