"""CGCNN for molplat. The model lives in ``molplat_cgcnn.model`` (imports torch); the
hook implementations in ``molplat_cgcnn.plugin`` (does not)."""

__version__ = "0.1.0"
