"""Built-in representations and the batch type every model receives."""
from molplat.representations.batch import Batch

__all__ = ["Batch"]
