"""The model input of one structure along a simulation, updated step by step.

A calculator is asked for the same structure thousands of times with slightly moved
atoms. Featurising and collating from scratch every step (a neighbour search, numpy
concatenations, dtype casts) costs more than a small model's forward pass, so:

- :class:`VerletListInput` (``adjacency_list`` representations, which every model on
  neighbour pairs uses) builds the batch once with the neighbours within
  ``cutoff + skin`` (a Verlet list) and then only copies the new positions into it. Each
  step it keeps the candidate pairs closer than the cutoff (distances in float64, so the
  pairs are those a fresh search finds) and, with ``max_neighbors``, the same nearest ones.
  The list is rebuilt only when an atom has moved more than half the skin since the last
  build (no pair can then have crossed the cutoff unseen), or when the cell, the atomic
  numbers or the periodicity change.
- :class:`FeaturizedInput` (every other representation: point clouds, dense matrices, a
  plugin's graphs) featurises and collates once per step, directly, without the data
  loader that batch prediction goes through.

Both give a :class:`StepBatch`: the batch in the model's dtype, the position tensor that
forces differentiate, and, when asked, the strain tensor that stress differentiates.
Strain ε (symmetric, zero) moves positions and cell together, ``r -> r (1 + ε)``, and so
every periodic shift built from the cell; ``dE/dε / V`` is the stress.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from molplat.data.samples import SampleCollator, unlabelled_sample
from molplat.models.heads import Heads
from molplat.representations.adjacency_list import AdjacencyList
from molplat.representations.batch import Batch
from molplat.structure import Structure

#: the batch fields that hold lengths in the cell's frame, per built-in representation: the strain moves them
STRAINED_FIELDS = {
    "adjacency_list": ("positions", "cell", "edge_shift"),
    "adjacency_matrix": ("positions", "cell", "image_shifts"),
    "point_cloud": ("positions", "cell"),
}


@dataclass
class StepBatch:
    """The model input of one step: ``positions`` is the leaf forces differentiate; ``strain``
    ([3, 3], zero, symmetrised inside the graph) the leaf stress differentiates, or None."""

    batch: Batch
    positions: torch.Tensor
    strain: torch.Tensor | None


def _structure(atoms: Any) -> Structure:
    return Structure.from_atoms(atoms, id=atoms.get_chemical_formula())


def _deformation(strain: torch.Tensor) -> torch.Tensor:
    """``1 + sym(ε)``: only the symmetric part of a strain is a deformation, not a rotation."""
    return torch.eye(3, dtype=strain.dtype) + 0.5 * (strain + strain.T)


def _strain_leaf(dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros(3, 3, dtype=dtype, requires_grad=True)


def supports_stress(representation: Any) -> bool:
    """Whether the calculator knows which batch fields a strain moves for this representation."""
    return getattr(representation, "name", None) in STRAINED_FIELDS


def is_adjacency_list(representation: Any) -> bool:
    """The core's ``adjacency_list`` (or a subclass that featurises and collates like it)."""
    return isinstance(representation, AdjacencyList) and \
        type(representation).featurize is AdjacencyList.featurize and \
        type(representation).collate is AdjacencyList.collate


class FeaturizedInput:
    """Featurise and collate every step: for representations without a neighbour list to reuse."""

    def __init__(self, representation: Any, heads: Heads, dtype: torch.dtype) -> None:
        self.representation = representation
        self.heads = heads
        self.dtype = dtype
        self.collator = SampleCollator(representation, dtype)
        self.builds = 0

    def step(self, atoms: Any, strain: bool = False) -> StepBatch:
        self.builds += 1
        batch = self.collator([unlabelled_sample(_structure(atoms), self.representation, self.heads)])
        positions = batch["positions"].detach().requires_grad_(True)
        batch["positions"] = positions
        leaf = None
        if strain:
            name = getattr(self.representation, "name", None)
            if name not in STRAINED_FIELDS:
                raise NotImplementedError(f"stress: representation {name!r} is not one whose strained inputs the "
                                          f"calculator knows ({', '.join(STRAINED_FIELDS)})")
            leaf = _strain_leaf(self.dtype)
            deformation = _deformation(leaf)
            for field in STRAINED_FIELDS[name]:
                if field in batch:
                    batch[field] = batch[field] @ deformation
        return StepBatch(batch, positions, leaf)


class VerletListInput:
    """An ``adjacency_list`` batch kept between steps, its pairs taken from a Verlet list.

    ``builds`` counts the neighbour searches; ``skin`` (Å) is how much farther than the
    cutoff the list looks.
    """

    def __init__(self, representation: AdjacencyList, heads: Heads, dtype: torch.dtype, skin: float) -> None:
        self.cutoff = float(representation.cutoff)
        self.max_neighbors = representation.max_neighbors
        self.skin = float(skin)
        self.heads = heads
        self.dtype = dtype
        self._search = AdjacencyList(cutoff=self.cutoff + self.skin)
        self.builds = 0
        self._numbers: np.ndarray | None = None
        self._pbc: np.ndarray | None = None
        self._cell: np.ndarray | None = None
        self._built_at: np.ndarray | None = None
        self._kept: np.ndarray | None = None

    # -- the list ------------------------------------------------------------------------------
    def needs_build(self, atoms: Any) -> bool:
        """Whether the list may miss a pair: new numbers, cell or periodicity, or an atom moved > skin / 2."""
        if self._built_at is None or len(atoms) != len(self._numbers) or \
                not np.array_equal(atoms.numbers, self._numbers) or not np.array_equal(atoms.pbc, self._pbc) or \
                not np.array_equal(atoms.cell.array, self._cell):
            return True
        moved = atoms.positions - self._built_at
        return bool(np.einsum("ij,ij->i", moved, moved).max(initial=0.0) > (0.5 * self.skin) ** 2)

    def build(self, atoms: Any) -> None:
        """Search the neighbours within cutoff + skin and lay out the batch they feed."""
        structure = _structure(atoms)
        features = self._search.featurize(structure)
        template = self._search.collate([features])
        self._numbers = atoms.numbers.copy()
        self._pbc = atoms.pbc.copy()
        self._cell = atoms.cell.array.copy()
        self._built_at = atoms.positions.copy()
        self._edge_index = template["edge_index"]
        self._offsets = template["cell_offsets"]
        self._i, self._j = self._edge_index.numpy()
        self._offset_array = self._offsets.numpy()
        self._shift_array = template["edge_shift"].numpy()  # float64, offsets @ cell
        self._shift = template["edge_shift"].to(self.dtype)
        self._offsets_float = self._offsets.to(self.dtype)
        self._cell_tensor = template["cell"].to(self.dtype)
        self._kept: np.ndarray | None = None
        self._batch = Batch({key: template[key] for key in ("numbers", "batch", "natoms", "num_graphs", "pbc")})
        self._batch["y"] = torch.full((1, self.heads.n_graph), float("nan"), dtype=torch.float64)
        if self.heads.n_atom:
            self._batch["atom_y"] = torch.full((len(atoms), self.heads.n_atom), float("nan"), dtype=torch.float64)
        self.builds += 1

    # -- one step ------------------------------------------------------------------------------
    def step(self, atoms: Any, strain: bool = False) -> StepBatch:
        if self.needs_build(atoms):
            self.build(atoms)
        edges = self._edges_within_cutoff(atoms.positions)
        positions = torch.from_numpy(atoms.positions).to(self.dtype, copy=True).requires_grad_(True)
        batch = Batch(self._batch)
        batch["edge_index"], batch["cell_offsets"], shift, offsets = edges
        leaf = None
        if strain:
            leaf = _strain_leaf(self.dtype)
            deformation = _deformation(leaf)
            cell = self._cell_tensor @ deformation
            batch["positions"] = positions @ deformation
            batch["cell"] = cell
            batch["edge_shift"] = offsets @ cell[0]
        else:
            batch["positions"] = positions
            batch["cell"] = self._cell_tensor
            batch["edge_shift"] = shift
        return StepBatch(batch, positions, leaf)

    def _edges_within_cutoff(self, positions: np.ndarray) -> tuple[torch.Tensor, ...]:
        """edge_index, cell_offsets, edge_shift and float offsets of the candidate pairs a fresh search
        would find now (float64 distances); the tensors of the last step when the pairs are the same."""
        vectors = positions[self._j] - positions[self._i] + self._shift_array
        squared = np.einsum("ij,ij->i", vectors, vectors)
        keep = np.flatnonzero(squared < self.cutoff ** 2)
        if self.max_neighbors is not None:
            keep = self._nearest(keep, np.sqrt(squared[keep]))
        if self._kept is None or not np.array_equal(keep, self._kept):
            index = torch.from_numpy(keep)
            self._kept = keep
            self._edges = (self._edge_index.index_select(1, index), self._offsets.index_select(0, index),
                           self._shift.index_select(0, index), self._offsets_float.index_select(0, index))
        return self._edges

    def _nearest(self, keep: np.ndarray, distances: np.ndarray) -> np.ndarray:
        """The ``max_neighbors`` nearest of each centre, ties broken as ``radius_neighbors`` breaks them."""
        i, j, shifts = self._i[keep], self._j[keep], self._offset_array[keep]
        order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], j, distances, i))
        centres = i[order]
        rank = np.arange(len(order)) - np.searchsorted(centres, centres, side="left")
        return np.sort(keep[order[rank < self.max_neighbors]])
