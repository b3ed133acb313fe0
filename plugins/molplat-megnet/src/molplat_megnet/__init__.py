"""MEGNet for molplat. The model lives in ``molplat_megnet.model`` (imports torch and
torch-geometric); the hook implementations in ``molplat_megnet.plugin`` (do not)."""

__version__ = "0.1.0"
