"""Registers the rogi explainer and the `molplat rogi` command. Imports no torch, rogi or RDKit."""
from __future__ import annotations

import molplat
from molplat.specs import CommandSpec, ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = ("M. Aldeghi, D. E. Graff, N. Frey, J. A. Morrone, E. O. Pyzer-Knapp, K. E. Jordan, C. W. Coley, "
            "Roughness of Molecular Property Landscapes and Its Impact on Modellability, "
            "J. Chem. Inf. Model. 62, 4660-4671 (2022)")

SETTINGS = (
    Setting("split", "str", "test", "structures the landscape is measured on", choices=("train", "val", "test", "all")),
    Setting("max_structures", "int", 1000, "at most this many structures (a seeded sample); clustering is O(n²)",
            minimum=10, maximum=5000),
    Setting("seed", "int", 0, "seed of that sample", minimum=0, maximum=2**31 - 1),
    Setting("descriptor", "str", "auto", "input descriptor: Morgan fingerprints with Tanimoto distance for "
            "molecules, element-fraction vectors for crystals (auto: crystals when any structure is periodic)",
            choices=("auto", "morgan", "composition")),
    Setting("radius", "int", 2, "Morgan fingerprint radius (bonds)", minimum=1, maximum=6),
    Setting("n_bits", "int", 2048, "Morgan fingerprint length", minimum=64, maximum=16384),
    Setting("min_dt", "float", 0.01, "smallest step between the distance thresholds of the integral",
            minimum=0.0, maximum=0.1),
    Setting("batch_size", "int", 64, "structures per forward pass when computing embeddings", minimum=1, maximum=4096),
)


@molplat.hookimpl
def molplat_explainers() -> list[ComponentSpec]:
    return [ComponentSpec(
        name="rogi",
        kind="explainer",
        factory="molplat_rogi.explainer:RogiExplainer",
        summary="Roughness index (ROGI) of each target on the learned embeddings and on input descriptors",
        settings=SETTINGS,
        citation=CITATION,
    )]


@molplat.hookimpl
def molplat_commands() -> list[CommandSpec]:
    return [CommandSpec("rogi", "molplat_rogi.cli:rogi",
                        "ROGI against test MAE across runs: a table and a PNG")]
