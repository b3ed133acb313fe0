"""PaiNN for molplat. The model lives in ``molplat_painn.model`` (imported lazily by the core)."""
__version__ = "0.1.0"
