"""What a model must predict: one head per target, each with its level, loss and weight.

The core decides the heads from the pipeline (``[dataset] target`` and ``[targets.NAME]``)
and hands them to the model's factory, so a model never guesses how many outputs it
needs or whether a target is per structure or per atom. The same object is stored in
every checkpoint, so a model is rebuilt with exactly the heads it was trained with.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

LEVELS = ("graph", "atom")
LOSSES = ("mse", "l1", "huber", "bce")


@dataclass(frozen=True)
class Head:
    """One target: ``level`` graph (one value per structure) or atom (one per atom).

    ``loss`` bce makes it a binary classification head (the model predicts a logit;
    predictions are probabilities). ``extensive`` graph heads get per-element reference
    values fitted on the training split (see ``molplat.data.TrainingStatistics``).
    """

    name: str
    level: str = "graph"
    units: str = ""
    loss: str = "mse"
    weight: float = 1.0
    extensive: bool = False

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"head {self.name!r}: level {self.level!r} is not one of {LEVELS}")
        if self.loss not in LOSSES:
            raise ValueError(f"head {self.name!r}: loss {self.loss!r} is not one of {LOSSES}")

    @property
    def classification(self) -> bool:
        return self.loss == "bce"


@dataclass(frozen=True)
class Heads:
    """The heads of one run, graph heads first in the order the pipeline names them.

    ``forces``: the first graph head is an energy and forces (minus its gradient with
    respect to the positions) are trained too.
    """

    heads: tuple[Head, ...] = field(default_factory=lambda: (Head("y"),))
    forces: bool = False

    def __post_init__(self) -> None:
        names = [h.name for h in self.heads]
        if len(names) != len(set(names)):
            raise ValueError(f"heads {names}: a target is named twice")
        if self.forces and (not self.graph or self.graph[0].classification):
            raise ValueError("forces need a first graph-level regression head (the energy)")

    @property
    def graph(self) -> tuple[Head, ...]:
        return tuple(h for h in self.heads if h.level == "graph")

    @property
    def atom(self) -> tuple[Head, ...]:
        return tuple(h for h in self.heads if h.level == "atom")

    @property
    def n_graph(self) -> int:
        return len(self.graph)

    @property
    def n_atom(self) -> int:
        return len(self.atom)

    @property
    def names(self) -> list[str]:
        return [h.name for h in self.graph + self.atom]

    def as_dict(self) -> dict[str, Any]:
        return {"heads": [asdict(h) for h in self.heads], "forces": self.forces}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Heads":
        return cls(tuple(Head(**h) for h in data["heads"]), bool(data.get("forces", False)))

    @classmethod
    def single(cls, name: str = "y", units: str = "", forces: bool = False, extensive: bool = False) -> "Heads":
        """One graph-level regression target, the common case."""
        return cls((Head(name, "graph", units, extensive=extensive or forces),), forces)
