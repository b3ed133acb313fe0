"""Hook implementations of molplat-hydronet.

Only light modules are imported here: numpy, ASE and tblite load when the dataset is
built, never while plugins are listed.
"""
from __future__ import annotations

from molplat.hookspecs import hookimpl
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

HYDRONET_CITATION = (
    "S. Choudhury, J. A. Bilbrey, L. Ward, S. S. Xantheas, I. Foster, J. P. Heindel, B. Blaiszik, "
    "M. E. Schram, HydroNet: Benchmark Tasks for Preserving Intermolecular Interactions and Structural "
    "Motifs in Predictive and Generative Models for Molecular Data, arXiv:2012.00131 (2020); data: "
    "A. Rakshit, P. Bandyopadhyay, J. P. Heindel, S. S. Xantheas, Atlas of putative minima and low-lying "
    "energy networks of water clusters n = 3-25, J. Chem. Phys. 151, 214307 (2019); dev set: "
    "C. Bannwarth, S. Ehlert, S. Grimme, GFN2-xTB, J. Chem. Theory Comput. 15, 1652 (2019)"
)

#: the published set holds W3 to W30
SMALLEST, LARGEST = 3, 30
#: clusters in the largest per-size file of the release (about 4.5 million in all)
MOST_PER_SIZE = 10_000_000

HYDRONET_SETTINGS = (
    Setting("path", "path", None, "the unzipped W3-W30_all_geoms_TTM2.1-F folder (W{n}_geoms_all.zip or .xyz "
            "files), or one such file, relative to the pipeline file; unset: the GFN2-xTB dev set, generated "
            "and cached"),
    Setting("min_waters", "int", 3, "smallest cluster (water molecules) to read or generate",
            minimum=SMALLEST, maximum=LARGEST),
    Setting("max_waters", "int", None, "largest cluster to read or generate (unset: every published size; "
            "12 for the dev set)", minimum=SMALLEST, maximum=LARGEST),
    Setting("max_per_size", "int", None, "published files: read at most this many clusters of each size, "
            "in file order (unset: all)", minimum=1, maximum=MOST_PER_SIZE),
    Setting("monomer_energy", "float", 0.0, "published files: energy (kcal/mol, the files' zero) of one "
            "isolated water, subtracted n times for binding_energy_per_water; TTM2.1-F energies are "
            "relative to isolated relaxed monomers, so 0", minimum=-1.0e6, maximum=1.0e6),
    Setting("clusters_per_size", "int", 3, "dev set: clusters generated per size", minimum=1, maximum=1000),
    Setting("frames_per_cluster", "int", 8, "dev set: structures per cluster: its GFN2-xTB minimum, then "
            "frames of Langevin MD started from it", minimum=1, maximum=1000),
    Setting("temperature", "float", 300.0, "dev set: Langevin MD temperature (K)", minimum=1.0, maximum=2000.0),
    Setting("seed", "int", 0, "dev set: seed of the starting arrangements and the MD noise",
            minimum=0, maximum=2**31 - 1),
    Setting("cache_dir", "path", None, "folder where generated or parsed clusters are cached, created when "
            "missing (default: $MOLPLAT_CACHE or ~/.cache/molplat)", must_exist=False),
)


@hookimpl
def molplat_datasets() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="hydronet",
            kind="dataset",
            factory="molplat_hydronet.dataset:HydroNet",
            summary="HydroNet water clusters (H2O)n, n = 3-30, TTM2.1-F energies from your download; offline: a "
                    "GFN2-xTB dev set (n = 3-12, shipped) of minima and MD frames with energies and forces; data licence: "
                    "the release states none, follow its download page's terms",
            settings=HYDRONET_SETTINGS,
            citation=HYDRONET_CITATION,
        ),
    ]
