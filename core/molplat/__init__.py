"""molplat: a plugin platform for machine learning on molecules, crystals and MOFs.

Only light modules are imported here, so ``import molplat`` (and listing plugins)
never pulls in torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from molplat.errors import MolplatError, PluginError, RunError, ValidationError
from molplat.hookspecs import hookimpl
from molplat.specs import KINDS, CommandSpec, ComponentSpec, Setting

__version__ = "0.1.0"
#: The plugin API this core implements; plugins declare a range with ``MOLPLAT_API``.
PLUGIN_API_VERSION = "1.0"

#: The typed public surface: the only molplat modules a plugin (first-party or not) may
#: import. Everything else (``molplat.pipeline.*``, ``molplat.training.lightning``, the CLI)
#: is internal and may change in any release; the SDK checks plugins against this list.
PUBLIC_MODULES: tuple[str, ...] = (
    "molplat",
    "molplat.errors",
    "molplat.specs",
    "molplat.hookspecs",
    "molplat.structure",
    "molplat.files",
    "molplat.data",
    "molplat.data.store",
    "molplat.models",
    "molplat.representations",
    "molplat.representations.batch",
    "molplat.representations.base",
    "molplat.representations.neighbors",
    "molplat.representations.adjacency_list",
    "molplat.representations.adjacency_matrix",
    "molplat.representations.point_cloud",
    "molplat.representations.pyg",
    "molplat.training",
    "molplat.rundir",
    "molplat.results",
    "molplat.search_space",
    "molplat.predict",
    "molplat.calculator",
    "molplat.ensemble",
    "molplat.metrics",
    "molplat.loggers",
    "molplat.plugins",
    "molplat.processes",
)

if TYPE_CHECKING:  # pragma: no cover
    from molplat.pipeline.config import Pipeline
    from molplat.predict import TrainedModel

__all__ = [
    "KINDS",
    "PLUGIN_API_VERSION",
    "PUBLIC_MODULES",
    "CommandSpec",
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


def load_pipeline(source: Any, manager: Any = None) -> "Pipeline":
    """A validated Pipeline from a TOML path or a dict (for notebooks); ``manager``: a
    ``molplat.plugins.PluginManager`` other than the process-wide one (the SDK's)."""
    from molplat.pipeline.config import Pipeline

    return Pipeline.load(source, manager=manager)


def load_model(run_dir: Any, checkpoint: str = "best", manager: Any = None) -> "TrainedModel":
    """The trained model of a run directory, ready to predict on ASE Atoms (``manager``: as in load_pipeline)."""
    from molplat.predict import TrainedModel

    return TrainedModel.from_run(run_dir, checkpoint=checkpoint, manager=manager)
