"""Hook implementations of molplat-adios.

Only light modules are imported here: adios2 loads when a store is written or read,
never while plugins are listed.
"""
from __future__ import annotations

from molplat.hookspecs import hookimpl
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "W. F. Godoy et al., ADIOS 2: The Adaptable Input Output System. A framework for high-performance data "
    "management, SoftwareX 12, 100561 (2020); the layout follows HydraGNN's ADIOS store: M. Lupo Pasini, "
    "P. Zhang, S. T. Reeve, J. Y. Choi, Multi-task graph neural networks for simultaneous prediction of global "
    "and atomic properties in ferromagnetic systems, arXiv:2202.01954 (2022)"
)

SETTINGS = (
    Setting("part_size", "int", 10_000, "graphs per BP5 file; each file is written by one writer process and holds "
            "its graphs in memory while it is written", minimum=1, maximum=10_000_000),
    Setting("cache_mb", "int", 1024, "per process: parts first touched while fewer MB than this are held are read "
            "whole (one ADIOS selection per field) and their graphs sliced from memory; the rest are read one "
            "selection per field and graph. 0: always per graph", minimum=0, maximum=1_000_000),
    Setting("verify", "bool", True, "check every file's size and SHA-256 digest when a store is opened (a bit "
            "flip is found; about a second per 1.5 GB)"),
)


@hookimpl
def molplat_store_backends() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="adios",
            kind="store_backend",
            factory="molplat_adios.store:AdiosBackend",
            summary="ADIOS2 BP5 files in HydraGNN's layout: a global array per field with per-graph counts and "
                    "offsets, written by parallel writer processes, read per graph or per rank",
            settings=SETTINGS,
            citation=CITATION,
        )
    ]
