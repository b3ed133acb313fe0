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
    """What ``forward`` returns; explainers read the two embeddings (see docs/contracts.md).

    ``atom_embedding``: every valid atom's final learned features, in batch order.
    ``graph_embedding``: each structure's learned representation at the second-to-last
    layer, the input of the output network: the pooled vector that network reads or, for
    a model that pools after an atom-wise output network (SchNet), the invariant atom
    features entering that network, pooled the same way (sum or mean). One row per
    structure, depending on that structure alone, invariant under rotation, translation
    and reordering of its atoms (UMAP maps and ROGI are computed from it).
    """

    y: torch.Tensor  # [G, n_outputs], per structure
    atom_embedding: torch.Tensor  # [N, F], valid atoms in batch order
    graph_embedding: torch.Tensor  # [G, F], the second-to-last layer, one row per structure
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

    ``embedding_layer`` names (as ``get_submodule`` reads it: ``"embedding"``,
    ``"encoder.atoms"``) the submodule that embeds each atom's input, usually the
    ``nn.Embedding`` of atomic numbers: called once per forward, its output has one row
    per atom of the batch (``[N, F]``; in a padded layout ``[G, N_max, F]``, whose valid
    rows ``batch.flat_atoms`` picks) and ``y`` depends on it. Explainers attribute
    through it (Captum's layer methods); :meth:`atom_embedding_module` returns it.
    """

    accepts: ClassVar[tuple[str, ...]] = ()
    #: dotted name of the per-atom input embedding (every model must set it)
    embedding_layer: ClassVar[str] = ""

    def __init__(self, n_outputs: int = 1) -> None:
        super().__init__()
        self.n_outputs = n_outputs

    def forward(self, batch) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def atom_embedding_module(self) -> nn.Module:
        """The per-atom embedding layer that ``embedding_layer`` names."""
        return atom_embedding_module(self)


def atom_embedding_module(model: nn.Module) -> nn.Module:
    """The submodule a model's ``embedding_layer`` names, for any ``nn.Module`` that declares one.

    Raises ``ValueError`` (saying what to declare) when the name is missing or names nothing.
    """
    name = getattr(model, "embedding_layer", "")
    kind = type(model).__name__
    if not isinstance(name, str) or not name:
        raise ValueError(f"model {kind} declares no embedding_layer; set the class attribute embedding_layer to the "
                         f"name of its per-atom input embedding (usually 'embedding', its nn.Embedding)")
    try:
        module = model.get_submodule(name)
    except AttributeError:
        raise ValueError(f"model {kind} names embedding_layer {name!r}, but it has no such submodule; name one of "
                         f"{[n for n, _ in model.named_children()]}") from None
    return module


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
