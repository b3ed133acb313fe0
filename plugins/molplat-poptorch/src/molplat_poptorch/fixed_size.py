"""Fixed-size padded batches: the same node, edge and graph counts in every batch.

An IPU runs a graph compiled for one set of tensor shapes, so every batch must have the
same shapes (poptorch_geometric's FixedSizeDataLoader solves the same problem). Here:

* ``FixedSizes`` holds the counts: ``num_graphs`` = the most real structures per batch
  plus one padding graph, ``num_nodes`` and ``num_edges`` the totals including padding.
* ``choose_fixed_sizes`` picks the counts from the data: a percentile of the atom and edge
  counts of batches drawn as training would draw them, so a rare large batch is split
  rather than padding every batch to its size.
* ``PackingBatchSampler`` packs structures into batches that fit those counts (a batch
  that would overflow is closed and the structure starts the next one); a single
  structure larger than the counts is refused with one line.
* ``FixedSizeCollator`` collates with the run's collator, then pads: extra atoms go into
  the padding graph, which is last; padding edges are self-loops on the first padding atom
  (so no message reaches a real atom); labels are zero there; ``graphs_mask``,
  ``nodes_mask`` and ``edges_mask`` (True = real) let the core's task average over real
  entries only (``molplat.training.AtomisticTask.loss``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from molplat.errors import ValidationError
from molplat.representations.batch import Batch

#: per-atom batch fields (first axis = atoms); everything else per edge or per graph is listed below
NODE_FIELDS = ("numbers", "positions", "batch", "atom_y", "forces")
EDGE_FIELDS = ("edge_shift", "cell_offsets")  # edge_index is [2, E], padded on its second axis
GRAPH_FIELDS = ("natoms", "cell", "pbc", "y")
MASKS = ("graphs_mask", "nodes_mask", "edges_mask")


@dataclass(frozen=True)
class FixedSizes:
    """Counts every padded batch has: graphs (the last one is padding), atoms and edges."""

    num_graphs: int
    num_nodes: int
    num_edges: int

    def __post_init__(self) -> None:
        if self.num_graphs < 2 or self.num_nodes < 1 or self.num_edges < 1:
            raise ValueError(f"fixed sizes need num_graphs >= 2 (one is padding), num_nodes >= 1 and num_edges >= 1, "
                             f"got {self}")

    @property
    def max_real_graphs(self) -> int:
        return self.num_graphs - 1

    @property
    def max_real_nodes(self) -> int:
        """One atom is always left for the padding graph, to carry the padding edges."""
        return self.num_nodes - 1

    def fits(self, graphs: int, nodes: int, edges: int) -> bool:
        return graphs <= self.max_real_graphs and nodes <= self.max_real_nodes and edges <= self.num_edges

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def sample_sizes(samples: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Atoms and edges of every sample (``Sample`` objects of an ``adjacency_list`` run)."""
    nodes = np.empty(len(samples), dtype=np.int64)
    edges = np.empty(len(samples), dtype=np.int64)
    for k in range(len(samples)):
        features = samples[k].features
        nodes[k] = len(features["numbers"])
        edges[k] = np.asarray(features["edge_index"]).shape[1]
    return nodes, edges


def choose_fixed_sizes(nodes: np.ndarray, edges: np.ndarray, batch_size: int, percentile: float = 99.0,
                       num_nodes: int = 0, num_edges: int = 0, draws: int = 64, seed: int = 0) -> FixedSizes:
    """Counts for batches of ``batch_size`` structures drawn at random from these sizes.

    ``num_nodes``/``num_edges`` (when > 0) are kept as given. Otherwise the count is the
    ``percentile`` of the totals of ``draws`` random batches, plus one padding atom, and
    never below the largest single structure (which must fit somewhere).
    """
    if len(nodes) == 0:
        raise ValueError("no structures to size batches from")
    rng = np.random.default_rng(seed)
    size = min(batch_size, len(nodes))
    picks = np.stack([rng.choice(len(nodes), size=size, replace=False) for _ in range(draws)])
    if num_nodes <= 0:
        num_nodes = max(int(np.ceil(np.percentile(nodes[picks].sum(1), percentile))), int(nodes.max())) + 1
    if num_edges <= 0:
        num_edges = max(int(np.ceil(np.percentile(edges[picks].sum(1), percentile))), int(edges.max()), 1)
    return FixedSizes(num_graphs=batch_size + 1, num_nodes=int(num_nodes), num_edges=int(num_edges))


def refuse_oversized(nodes: np.ndarray, edges: np.ndarray, sizes: FixedSizes, split: str) -> None:
    """One line naming the first structure that no batch of these sizes can hold, and the fix."""
    too_big = np.flatnonzero((nodes > sizes.max_real_nodes) | (edges > sizes.num_edges))
    if len(too_big):
        k = int(too_big[0])
        raise ValidationError(
            f"[trainer] num_nodes/num_edges: {split} structure {k} has {int(nodes[k])} atoms and {int(edges[k])} "
            f"edges, more than a fixed-size batch holds ({sizes.max_real_nodes} real atoms, {sizes.num_edges} "
            f"edges; {len(too_big)} such structures); raise num_nodes/num_edges or set them to 0 (chosen from the "
            f"data)")


class PackingBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of indices that fit ``sizes``: at most ``max_real_graphs`` structures, and their
    atoms and edges within the fixed counts; a batch that would overflow is closed early.

    ``shuffle`` draws a new seeded order every epoch (its own generator, as the core's
    sampler does, so the order does not depend on other random draws).
    """

    def __init__(self, nodes: np.ndarray, edges: np.ndarray, sizes: FixedSizes, shuffle: bool = False,
                 seed: int = 0) -> None:
        self.nodes, self.edges, self.sizes, self.shuffle = nodes, edges, sizes, shuffle
        self.generator = torch.Generator().manual_seed(seed)
        self._length: int | None = None

    def __iter__(self) -> Iterator[list[int]]:
        n = len(self.nodes)
        order = torch.randperm(n, generator=self.generator).tolist() if self.shuffle else range(n)
        batch: list[int] = []
        used_nodes = used_edges = 0
        for index in order:
            a, e = int(self.nodes[index]), int(self.edges[index])
            if batch and not self.sizes.fits(len(batch) + 1, used_nodes + a, used_edges + e):
                yield batch
                batch, used_nodes, used_edges = [], 0, 0
            batch.append(index)
            used_nodes += a
            used_edges += e
        if batch:
            yield batch

    def __len__(self) -> int:
        """Batches of the unshuffled order (a shuffled epoch may pack one more or fewer)."""
        if self._length is None:
            self._length = sum(1 for _ in PackingBatchSampler(self.nodes, self.edges, self.sizes))
        return self._length


class FixedSizeCollator:
    """The run's collator, then padding to ``sizes`` with masks (see the module docstring)."""

    def __init__(self, collator: Callable[[list[Any]], Batch], sizes: FixedSizes) -> None:
        self.collator = collator
        self.sizes = sizes

    def __call__(self, samples: list[Any]) -> Batch:
        return pad_batch(self.collator(samples), self.sizes)


def pad_batch(batch: Batch, sizes: FixedSizes) -> Batch:
    """``batch`` (an ``adjacency_list`` batch) padded to ``sizes``; a batch that does not fit is a ValueError."""
    graphs, nodes, edges = int(batch["num_graphs"]), int(batch["numbers"].shape[0]), int(batch["edge_index"].shape[1])
    if not sizes.fits(graphs, nodes, edges):
        raise ValueError(f"a batch of {graphs} structures, {nodes} atoms and {edges} edges does not fit {sizes}")
    extra_graphs, extra_nodes, extra_edges = sizes.num_graphs - graphs, sizes.num_nodes - nodes, \
        sizes.num_edges - edges
    out = Batch()
    for key, value in batch.items():
        if not isinstance(value, torch.Tensor):
            continue
        if key in NODE_FIELDS:
            out[key] = _pad_rows(value, extra_nodes)
        elif key in EDGE_FIELDS:
            out[key] = _pad_rows(value, extra_edges)
        elif key in GRAPH_FIELDS:
            out[key] = _pad_rows(value, extra_graphs)
        elif key == "edge_index":
            loops = torch.full((2, extra_edges), nodes, dtype=value.dtype)  # the first padding atom
            out[key] = torch.cat([value, loops], dim=1)
        else:
            raise ValueError(f"fixed-size padding does not know batch field {key!r} (shape {tuple(value.shape)}); "
                             f"the poptorch backend pads adjacency_list batches")
    out["batch"][nodes:] = sizes.num_graphs - 1  # padding atoms form the padding graph, which is last
    out["natoms"][graphs:] = 0
    out["natoms"][-1] = extra_nodes
    out["positions"][nodes:] = _padding_positions(extra_nodes, out["positions"].dtype)
    out["num_graphs"] = sizes.num_graphs
    out["graphs_mask"] = torch.arange(sizes.num_graphs) < graphs
    out["nodes_mask"] = torch.arange(sizes.num_nodes) < nodes
    out["edges_mask"] = torch.arange(sizes.num_edges) < edges
    return out


def _pad_rows(value: torch.Tensor, extra: int) -> torch.Tensor:
    return torch.cat([value, value.new_zeros((extra, *value.shape[1:]))]) if extra else value.clone()


def _padding_positions(count: int, dtype: torch.dtype) -> torch.Tensor:
    """Padding atoms 100 Å apart on a line: finite, distinct, and far from each other."""
    positions = torch.zeros(count, 3, dtype=dtype)
    positions[:, 0] = 100.0 * torch.arange(1, count + 1, dtype=dtype)
    return positions


def padding_fraction(batches: Sequence[list[int]], nodes: np.ndarray, edges: np.ndarray,
                     sizes: FixedSizes) -> dict[str, float]:
    """The share of atom, edge and graph slots that are padding over these batches."""
    count = max(len(batches), 1)
    real_nodes = sum(int(nodes[b].sum()) for b in batches)
    real_edges = sum(int(edges[b].sum()) for b in batches)
    real_graphs = sum(len(b) for b in batches)
    return {
        "nodes": 1.0 - real_nodes / (count * sizes.num_nodes),
        "edges": 1.0 - real_edges / (count * sizes.num_edges),
        "graphs": 1.0 - real_graphs / (count * sizes.num_graphs),
    }
