"""MPNN and MPNN with attention for molplat. The models live in ``molplat_mpnn.model`` (imported lazily)."""
__version__ = "0.1.0"
