"""The model contract."""
from molplat.models.base import AtomisticModel, ModelOutput

__all__ = ["AtomisticModel", "ModelOutput"]
