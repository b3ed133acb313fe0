"""The model contract: the base class, its output, the heads it predicts and how it is built."""
from molplat.models.base import AtomisticModel, ModelOutput, atom_embedding_module, build_model, factory_arguments
from molplat.models.heads import LOSSES, Head, Heads

__all__ = ["LOSSES", "AtomisticModel", "Head", "Heads", "ModelOutput", "atom_embedding_module", "build_model", "factory_arguments"]
