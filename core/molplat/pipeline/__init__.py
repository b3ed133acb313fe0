"""Pipeline files: loading, validation and running."""
from molplat.pipeline.config import Pipeline

__all__ = ["Pipeline"]
