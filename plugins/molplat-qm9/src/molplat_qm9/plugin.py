"""Hook implementations of molplat-qm9.

Only light modules are imported here: the dataset code (pandas, ase) loads when
the ``qm9`` dataset is built, never while plugins are listed.
"""
from __future__ import annotations

from molplat.hookspecs import hookimpl
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "R. Ramakrishnan, P. O. Dral, M. Rupp, O. A. von Lilienfeld, Quantum chemistry structures and "
    "properties of 134 kilo molecules, Sci. Data 1, 140022 (2014)"
)

SETTINGS = (
    Setting("subset", "str", "dev", "'dev': ~1,000 molecules drawn with a fixed seed; 'full': all 130,831",
            choices=("dev", "full")),
    Setting("size", "int", None, "draw this many molecules with a fixed seed from all of QM9 (overrides subset)",
            minimum=1, maximum=130831),
    Setting("cache_dir", "path", None,
            "folder where the parsed arrays are cached, created when missing (default: $MOLPLAT_CACHE or "
            "~/.cache/molplat)", must_exist=False),
)


@hookimpl
def molplat_datasets() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="qm9",
            kind="dataset",
            factory="molplat_qm9.dataset:QM9",
            summary="QM9: 130,831 small organic molecules (C, H, N, O, F) with 21 DFT properties and per-atom "
                    "Mulliken charges, energies in eV",
            settings=SETTINGS,
            citation=CITATION,
        )
    ]
