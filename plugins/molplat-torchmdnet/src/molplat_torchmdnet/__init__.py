"""TorchMD-NET's equivariant transformer for molplat. The model lives in ``molplat_torchmdnet.model``
(imported lazily by the core)."""
__version__ = "0.1.0"
