"""molplat-poptorch: the `poptorch` trainer backend (Graphcore IPUs). Importing it needs no poptorch."""
__version__ = "0.1.0"
