"""molplat: a plugin platform for machine learning on molecules, crystals and MOFs.

Only light modules are imported here, so ``import molplat`` (and listing plugins)
never pulls in torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from molplat.errors import MolplatError, PluginError, RunError, ValidationError
from molplat.hookspecs import hookimpl
from molplat.specs import KINDS, ComponentSpec, Setting

__version__ = "0.1.0"
#: The plugin API this core implements; plugins declare a range with ``MOLPLAT_API``.
PLUGIN_API_VERSION = "1.0"

if TYPE_CHECKING:  # pragma: no cover
    from molplat.pipeline.config import Pipeline
    from molplat.predict import TrainedModel

__all__ = [
    "KINDS",
    "PLUGIN_API_VERSION",
    "ComponentSpec",
    "MolplatError",
    "PluginError",
    "RunError",
    "Setting",
    "ValidationError",
    "hookimpl",
    "load_pipeline",
    "load_model",
]


def load_pipeline(source: Any) -> "Pipeline":
    """A validated Pipeline from a TOML path or a dict (for notebooks)."""
    from molplat.pipeline.config import Pipeline

    return Pipeline.load(source)


def load_model(run_dir: Any, checkpoint: str = "best") -> "TrainedModel":
    """The trained model of a run directory, ready to predict on ASE Atoms."""
    from molplat.predict import TrainedModel

    return TrainedModel.from_run(run_dir, checkpoint=checkpoint)
