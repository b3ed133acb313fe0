"""Statistics of the training split, for components that need data before they are built.

This is molplat's one hook for "fit something on the training data first": the task
standardises targets and fits per-element reference energies with it, and a model
factory that takes a ``statistics`` argument receives it (PNA its degree histogram, a
model its average neighbour count). It is computed in one streaming pass, so a split
larger than memory costs no more than an epoch, and it is stored in every checkpoint,
so a model is rebuilt from a checkpoint with the numbers it was trained with.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from molplat.models.heads import Heads
from molplat.structure import MAX_ATOMIC_NUMBER

_Z = MAX_ATOMIC_NUMBER + 1


@dataclass
class TargetStatistics:
    """One head's numbers on the training split, in the target's units.

    ``mean``/``std``: of the values (graph heads over structures, atom heads over
    atoms); ``references``: per element (atomic number as a string), for extensive
    graph heads the least-squares fit of the value on the composition, for atom heads
    the mean per element; ``residual_std``: the std of what those leave unexplained;
    ``positive_fraction`` for classification heads.
    """

    mean: float
    std: float
    minimum: float
    maximum: float
    count: int
    references: dict[str, float] = field(default_factory=dict)
    residual_std: float = 1.0
    positive_fraction: float | None = None


@dataclass
class TrainingStatistics:
    """Numbers about the training split; every field is plain JSON (see the module docstring)."""

    num_structures: int
    num_atoms: int
    element_counts: dict[str, int]
    targets: dict[str, TargetStatistics]
    degree_histogram: list[int] | None = None
    avg_num_neighbors: float | None = None
    forces_rms: float | None = None

    @property
    def elements(self) -> list[int]:
        """Atomic numbers seen in training, ascending."""
        return sorted(int(z) for z, n in self.element_counts.items() if n > 0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingStatistics":
        values = dict(data)
        values["targets"] = {k: TargetStatistics(**v) for k, v in data["targets"].items()}
        return cls(**values)


class StatisticsAccumulator:
    """Streams samples (one pass, constant memory) into TrainingStatistics."""

    def __init__(self, heads: Heads) -> None:
        self.heads = heads
        self.n = 0
        self.atoms = 0
        self.element_counts = np.zeros(_Z, dtype=np.int64)
        ng, na = heads.n_graph, heads.n_atom
        # graph heads: moments, and the normal equations of value ~ composition
        self.g_sum, self.g_sq = np.zeros(ng), np.zeros(ng)
        self.g_min, self.g_max = np.full(ng, np.inf), np.full(ng, -np.inf)
        self.ctc = np.zeros((_Z, _Z))
        self.cty = np.zeros((_Z, ng))
        # atom heads: per-element moments
        self.a_sum, self.a_sq = np.zeros((_Z, na)), np.zeros((_Z, na))
        self.a_min, self.a_max = np.full(na, np.inf), np.full(na, -np.inf)
        self.degrees: np.ndarray | None = None
        self.edges = 0
        self.f_sq = 0.0
        self.f_count = 0

    def add(self, numbers: np.ndarray, y: np.ndarray, atom_y: np.ndarray | None = None,
            forces: np.ndarray | None = None, edge_index: np.ndarray | None = None) -> None:
        numbers = np.asarray(numbers, dtype=np.int64)
        composition = np.bincount(numbers, minlength=_Z).astype(np.float64)
        self.n += 1
        self.atoms += len(numbers)
        self.element_counts += composition.astype(np.int64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if y.size:
            self.g_sum += y
            self.g_sq += y * y
            self.g_min, self.g_max = np.minimum(self.g_min, y), np.maximum(self.g_max, y)
            present = np.nonzero(composition)[0]
            self.ctc[np.ix_(present, present)] += np.outer(composition[present], composition[present])
            self.cty[present] += composition[present, None] * y[None, :]
        if atom_y is not None and self.heads.n_atom:
            atom_y = np.asarray(atom_y, dtype=np.float64).reshape(len(numbers), -1)
            np.add.at(self.a_sum, numbers, atom_y)
            np.add.at(self.a_sq, numbers, atom_y * atom_y)
            self.a_min = np.minimum(self.a_min, atom_y.min(axis=0))
            self.a_max = np.maximum(self.a_max, atom_y.max(axis=0))
        if forces is not None:
            forces = np.asarray(forces, dtype=np.float64)
            self.f_sq += float((forces * forces).sum())
            self.f_count += forces.size
        if edge_index is not None:
            degree = np.bincount(np.asarray(edge_index)[0], minlength=len(numbers))
            histogram = np.bincount(degree)
            if self.degrees is None:
                self.degrees = np.zeros(0, dtype=np.int64)
            if len(histogram) > len(self.degrees):
                self.degrees = np.pad(self.degrees, (0, len(histogram) - len(self.degrees)))
            self.degrees[: len(histogram)] += histogram
            self.edges += int(np.asarray(edge_index).shape[1])

    def result(self) -> TrainingStatistics:
        targets: dict[str, TargetStatistics] = {}
        n = max(self.n, 1)
        mean = self.g_sum / n
        std = np.sqrt(np.maximum(self.g_sq / n - mean * mean, 0.0))
        present = np.nonzero(self.element_counts)[0]
        for k, head in enumerate(self.heads.graph):
            stats = TargetStatistics(float(mean[k]), _positive(std[k]), float(self.g_min[k]), float(self.g_max[k]),
                                     self.n)
            if head.classification:
                stats.positive_fraction = float(mean[k])
                stats.residual_std = 1.0
            elif head.extensive:
                refs, residual = self._composition_fit(present, k)
                stats.references = {str(int(z)): float(r) for z, r in zip(present, refs)}
                stats.residual_std = _positive(residual)
            else:
                stats.residual_std = stats.std
            targets[head.name] = stats
        atom_counts = self.element_counts.astype(np.float64)
        for k, head in enumerate(self.heads.atom):
            total = max(self.atoms, 1)
            a_mean = float(self.a_sum[:, k].sum() / total)
            a_std = float(np.sqrt(max(self.a_sq[:, k].sum() / total - a_mean * a_mean, 0.0)))
            per_element = self.a_sum[present, k] / atom_counts[present]
            residual = (self.a_sq[present, k] - atom_counts[present] * per_element**2).sum() / total
            stats = TargetStatistics(a_mean, _positive(a_std), float(self.a_min[k]), float(self.a_max[k]), self.atoms)
            if head.classification:
                stats.positive_fraction, stats.residual_std = a_mean, 1.0
            else:
                stats.references = {str(int(z)): float(v) for z, v in zip(present, per_element)}
                stats.residual_std = _positive(float(np.sqrt(max(residual, 0.0))))
            targets[head.name] = stats
        histogram = None if self.degrees is None else [int(v) for v in self.degrees]
        return TrainingStatistics(
            num_structures=self.n,
            num_atoms=self.atoms,
            element_counts={str(int(z)): int(self.element_counts[z]) for z in present},
            targets=targets,
            degree_histogram=histogram,
            avg_num_neighbors=None if self.degrees is None else self.edges / max(self.atoms, 1),
            forces_rms=float(np.sqrt(self.f_sq / self.f_count)) if self.f_count else None,
        )

    def _composition_fit(self, present: np.ndarray, k: int) -> tuple[np.ndarray, float]:
        """Least squares of head k on the element counts, from the accumulated normal equations.

        Elements that always occur together make the system singular; the pseudo-inverse
        then gives the smallest references that fit, which predict the same totals.
        """
        a = self.ctc[np.ix_(present, present)]
        b = self.cty[present, k]
        refs = np.linalg.pinv(a, rcond=1e-10) @ b
        # sum of squared residuals = y.y - 2 r.C'y + r.C'C r
        sse = self.g_sq[k] - 2 * refs @ b + refs @ a @ refs
        return refs, float(np.sqrt(max(sse, 0.0) / max(self.n, 1)))


def _positive(value: float) -> float:
    """A usable scale: tiny, zero or non-finite spreads become 1 so nothing divides by zero."""
    value = float(value)
    return value if np.isfinite(value) and value > 1e-8 else 1.0


def compute_statistics(samples: Iterable[Any], heads: Heads) -> TrainingStatistics:
    """Statistics of featurised samples (``molplat.data.Sample``), in one pass."""
    accumulator = StatisticsAccumulator(heads)
    for s in samples:
        accumulator.add(s.features["numbers"], s.y, s.atom_y, s.forces, s.features.get("edge_index"))
    return accumulator.result()
