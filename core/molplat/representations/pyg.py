"""An ``adjacency_list`` batch seen as a PyTorch Geometric batch, sharing its tensors.

PyG's layers (``PNAConv``, ``NNConv``, ``TransformerConv``, ``Set2Set``, the aggregation
modules) take a ``torch_geometric.data.Batch``. :func:`to_pyg` wraps a molplat batch in one
without copying positions, elements or periodic shifts, so the positions the model reads
are the very tensor the trainer differentiates for forces.

Edge direction is the one thing that differs. molplat's ``edge_index`` row 0 is the centre
atom i, the *receiver*; row 1 its neighbour j, the sender (vectors point from i to j). PyG's
default ``flow="source_to_target"`` reads row 0 as the sender. ``to_pyg(batch)`` therefore
swaps the two rows (one copy of 2 x E integers, the only copy made); with
``flow="target_to_source"`` the index is shared as well, and the PyG layers must be built
with ``flow="target_to_source"``, which makes them read row 0 as the receiver.

torch-geometric is imported on first call: plugins that use it declare it as a dependency.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from molplat.representations.batch import Batch

if TYPE_CHECKING:  # pragma: no cover
    import torch_geometric.data

FLOWS = ("source_to_target", "target_to_source")

#: molplat field -> PyG attribute; fields not listed keep their name
_RENAMED = {"numbers": "z", "positions": "pos"}
#: per-edge fields besides edge_index, and per-structure ones (the rest of the tensors are per atom
#: when their first axis has one row per atom)
_EDGE_FIELDS = ("edge_shift", "cell_offsets", "edges_mask")
_GRAPH_FIELDS = ("natoms", "cell", "pbc", "graphs_mask")


def to_pyg(batch: Batch, flow: str = "source_to_target") -> "torch_geometric.data.Batch":
    """The batch as a ``torch_geometric.data.Batch`` whose tensors are the batch's own.

    Attributes: ``z`` (atomic numbers), ``pos``, ``batch``, ``ptr``, ``edge_index`` (in the
    order ``flow`` names, see the module docstring), ``edge_shift`` (the periodic shift to
    add to ``pos[j] - pos[i]``), ``cell_offsets``, ``cell``, ``pbc``, ``natoms``, and any other
    tensor of the batch under its own name. ``to_data_list()`` gives one ``Data`` per structure.
    A dense batch (``atom_mask``, from adjacency_matrix or point_cloud) has no edge list: use
    the adjacency_list representation.
    """
    from torch_geometric.data import Batch as PygBatch

    if flow not in FLOWS:
        raise ValueError(f"to_pyg: flow must be one of {FLOWS}, got {flow!r}")
    if "edge_index" not in batch or batch.dense:
        raise ValueError("to_pyg needs a sparse batch with an edge_index; use the adjacency_list representation")
    natoms = batch["natoms"]
    num_graphs = int(batch["num_graphs"])
    num_atoms = int(batch["numbers"].shape[0])
    edge_index = batch["edge_index"]
    if flow == "source_to_target":
        edge_index = edge_index.flip(0)

    attributes: dict[str, torch.Tensor] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and key != "edge_index":
            attributes[_RENAMED.get(key, key)] = value
    attributes["batch"] = batch.atom_graph_index()
    attributes["edge_index"] = edge_index
    ptr = torch.zeros(num_graphs + 1, dtype=torch.long, device=natoms.device)
    torch.cumsum(natoms, 0, out=ptr[1:])
    attributes["ptr"] = ptr

    out = PygBatch(**attributes)
    out._num_graphs = num_graphs
    _describe_layout(out, batch, ptr, num_atoms, flow)
    return out


def _describe_layout(out, batch: Batch, ptr: torch.Tensor, num_atoms: int, flow: str) -> None:
    """Set the slice and increment tables PyG keeps for ``Batch.from_data_list`` batches, so
    ``get_example`` and ``to_data_list`` work on the wrapped batch too."""
    num_graphs = ptr.shape[0] - 1
    receivers = batch["edge_index"][0]
    edges_per_graph = torch.bincount(batch.atom_graph_index()[receivers], minlength=num_graphs)
    edge_ptr = torch.zeros(num_graphs + 1, dtype=torch.long, device=ptr.device)
    torch.cumsum(edges_per_graph, 0, out=edge_ptr[1:])
    graph_ptr = torch.arange(num_graphs + 1, device=ptr.device)
    slices, increments = {}, {}
    for key in out.keys():
        value = out[key]
        if not isinstance(value, torch.Tensor) or key in ("ptr", "batch") or value.dim() == 0:
            continue
        if key == "edge_index" or key in _EDGE_FIELDS:
            slices[key] = edge_ptr
        elif key in _GRAPH_FIELDS or value.shape[0] != num_atoms:
            slices[key] = graph_ptr
        else:
            slices[key] = ptr
        increments[key] = ptr[:-1] if key == "edge_index" else torch.zeros(num_graphs, dtype=torch.long)
    out._slice_dict = slices
    out._inc_dict = increments
