"""molplat-hydronet: HydroNet water clusters (TTM2.1-F) as a molplat dataset, and a GFN2-xTB dev set."""

__version__ = "0.1.0"
