"""molplat-qm9: the QM9 molecules as a molplat dataset, read from the qm9pack data files."""

__version__ = "0.1.0"
