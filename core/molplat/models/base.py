"""Base class of every molplat model, and how the core builds one.

A model maps a Batch to per-structure (and, when asked, per-atom) predictions in
standardised units; the trainer owns target scaling and computes forces as minus the
gradient of the energy with respect to ``batch.positions``, so a model only has to be
a smooth function of the positions it is given.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, NotRequired, TypedDict

import torch
from torch import nn

from molplat.models.heads import Heads

if TYPE_CHECKING:  # pragma: no cover
    from molplat.data.statistics import TrainingStatistics


class ModelOutput(TypedDict):
    y: torch.Tensor  # [G, n_outputs], per structure
    atom_embedding: torch.Tensor  # [N, F], valid atoms in batch order
    graph_embedding: torch.Tensor  # [G, F]
    atom_y: NotRequired[torch.Tensor]  # [N, n_atom_outputs], per-atom targets, valid atoms in batch order


class AtomisticModel(nn.Module):
    """Subclasses set ``accepts`` (representation names) and implement ``forward``.

    The factory is called with the model's validated settings plus ``n_outputs`` (the
    number of graph-level targets). A model that declares ``"atom_property"`` in its
    spec's outputs also takes ``n_atom_outputs`` and returns ``atom_y``. A factory may
    also take ``heads`` (:class:`~molplat.models.Heads`: names, levels, losses, whether
    forces are trained) and ``statistics`` (:class:`~molplat.data.TrainingStatistics`
    of the training split: element counts, degree histogram, target means, reference
    energies); the core passes each one the factory's signature names. Every parameter
    is built in ``__init__``, so a state_dict saved after training loads into a fresh
    instance built from the same settings, heads and statistics.

    Models with an element embedding set ``max_atomic_number``; the core then refuses
    structures with heavier elements with a message instead of an index error.
    """

    accepts: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_outputs: int = 1) -> None:
        super().__init__()
        self.n_outputs = n_outputs

    def forward(self, batch) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError


def factory_arguments(factory: Callable[..., Any]) -> set[str]:
    """The keyword names a factory takes (everything, when it takes ``**kwargs``)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {"n_outputs"}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {"n_outputs", "n_atom_outputs", "heads", "statistics"}
    return set(params)


def build_model(factory: Callable[..., Any], settings: dict[str, Any], heads: Heads,
                statistics: "TrainingStatistics | None" = None) -> nn.Module:
    """Call a model factory with its settings and the core's arguments that it takes."""
    takes = factory_arguments(factory)
    extra: dict[str, Any] = {"n_outputs": heads.n_graph}
    if heads.n_atom:
        extra["n_atom_outputs"] = heads.n_atom
    elif "n_atom_outputs" in takes:
        extra["n_atom_outputs"] = 0
    if "heads" in takes:
        extra["heads"] = heads
    if "statistics" in takes:
        extra["statistics"] = statistics
    return factory(**settings, **extra)
