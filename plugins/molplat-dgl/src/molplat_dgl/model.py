"""E(n)-equivariant GNN written with DGL message passing (model ``egnn_dgl``).

V. G. Satorras, E. Hoogeboom, M. Welling, "E(n) Equivariant Graph Neural Networks", ICML 2021
(arXiv:2102.09844).

The same function as molplat-egnn's ``egnn``, with the same parameter names, computed on a
``dgl.DGLGraph`` (edges j -> i, messages flowing from the neighbour to the centre). One layer
(EGCL, eqs. 3-6 of the paper):

    m_ij = phi_e(h_i, h_j, ||x_i - x_j - s_ij||^2, a_ij) * f_c(d_ij)      apply_edges
    x_i' = x_i + C sum_j (x_i - x_j - s_ij) tanh(phi_x(m_ij)) f_c(d_ij)   update_all(copy_e, sum)
    h_i' = h_i + phi_h(h_i, sum_j e_ij m_ij)                              update_all(copy_e, sum)

with s_ij the lattice shift of j's periodic image, f_c a cosine envelope of the input distance
(energies smooth in the positions, forces by autograd), a_ij Gaussians of the input distance,
C one over the training set's average neighbour count (a constant), and e_ij = 1 or the optional attention
gate sigmoid(W m_ij). The last layer moves no coordinates (no output reads them). Per-atom
outputs come from an atom-wise MLP on the final h, pooled with ``dgl.readout_nodes``.

It takes the ``dgl_graph`` representation (the batched DGLGraph of the batch) and the core's
``adjacency_list`` (a DGLGraph built from ``edge_index`` in forward); both give the same
predictions. DGL's own ``dgl.nn.EGNNConv`` is not used: it has no periodic shifts, averages the
coordinate updates over the current neighbours and has no cutoff envelope, so its energies
jump when an atom crosses the cutoff.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch_geometric.nn.models.schnet import GaussianSmearing

from molplat.models import AtomisticModel, ModelOutput
from molplat_dgl._dgl import import_dgl

dgl = import_dgl()
import dgl.function as fn  # noqa: E402  (after the shim above)


def cosine_envelope(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """0.5 (cos(pi d / rc) + 1) inside the cutoff, 0 beyond: zero with zero slope at rc."""
    value = 0.5 * (torch.cos(distances * (math.pi / cutoff)) + 1.0)
    return value * (distances < cutoff).to(value.dtype)


def mlp(sizes: list[int], last_activation: bool = False, last_bias: bool = True) -> nn.Sequential:
    """Linear layers with SiLU (the paper's Swish) between them."""
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        last = k == len(sizes) - 2
        layers.append(nn.Linear(a, b, bias=last_bias or not last))
        if not last or last_activation:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class EquivariantLayer(nn.Module):
    """One EGCL on a DGLGraph; parameters named as in molplat-egnn."""

    def __init__(self, hidden_channels: int, num_radial: int, update_coords: bool, attention: bool,
                 cutoff: float) -> None:
        super().__init__()
        self.inverse_cutoff_sq = 1.0 / cutoff**2
        self.edge_mlp = mlp([2 * hidden_channels + 1 + num_radial, hidden_channels, hidden_channels],
                            last_activation=True)
        self.attention = nn.Linear(hidden_channels, 1) if attention else None
        self.coord_mlp = mlp([hidden_channels, hidden_channels, 1], last_bias=False) if update_coords else None
        self.node_mlp = mlp([2 * hidden_channels, hidden_channels, hidden_channels])
        if self.coord_mlp is not None:
            nn.init.xavier_uniform_(self.coord_mlp[-1].weight, gain=0.001)  # start near x' = x

    def forward(self, graph: Any, h: torch.Tensor, x: torch.Tensor, shift: torch.Tensor, radial: torch.Tensor,
                envelope: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        first = self.edge_mlp[0]
        width = h.shape[1]
        with graph.local_scope():
            # phi_e's first Linear on [h_i, h_j, geometry] = W_i h_i + W_j h_j + W_g geometry + b:
            # the wide products once per atom, then one u_add_v per edge (DGL's usual trick).
            graph.ndata["x"] = x
            graph.ndata["centre"] = nn.functional.linear(h, first.weight[:, :width])
            graph.ndata["neighbour"] = nn.functional.linear(h, first.weight[:, width:2 * width])
            graph.apply_edges(fn.v_sub_u("x", "x", "diff"))  # x_i - x_j (destination minus source)
            diff = graph.edata["diff"] - shift
            d2 = (diff * diff).sum(-1, keepdim=True) * self.inverse_cutoff_sq
            graph.apply_edges(fn.u_add_v("neighbour", "centre", "pre"))
            geometric = nn.functional.linear(torch.cat([d2, radial], dim=-1), first.weight[:, 2 * width:], first.bias)
            m = self.edge_mlp[1:](graph.edata["pre"] + geometric) * envelope
            if self.attention is not None:
                m = m * torch.sigmoid(self.attention(m))
            # One aggregation for both sums: [messages, coordinate steps] per edge.
            if self.coord_mlp is not None:
                graph.edata["out"] = torch.cat([m, diff * (torch.tanh(self.coord_mlp(m)) * envelope)], dim=-1)
            else:
                graph.edata["out"] = m
            graph.update_all(fn.copy_e("out", "msg"), fn.sum("msg", "total"))
            total = graph.ndata["total"]
        if self.coord_mlp is not None:
            total, step = total.split([width, 3], dim=-1)
            x = x + step * scale
        h = h + self.node_mlp(torch.cat([h, total], dim=-1))
        return h, x


class EGNNDGL(AtomisticModel):
    """E(n)-GNN with DGL message passing, on ``dgl_graph`` or ``adjacency_list`` batches."""

    accepts = ("dgl_graph", "adjacency_list")
    embedding_layer = "embedding"

    def __init__(self, n_outputs: int = 1, hidden_channels: int = 64, num_layers: int = 4, num_radial: int = 16,
                 cutoff: float = 5.0, update_coords: bool = True, attention: bool = False, readout: str = "sum",
                 max_atomic_number: int = 100, n_atom_outputs: int = 0, statistics=None) -> None:
        super().__init__(n_outputs)
        check_settings(hidden_channels, num_layers, num_radial, cutoff, readout, max_atomic_number)
        self.hidden_channels = hidden_channels
        self.cutoff = float(cutoff)
        self.update_coords = bool(update_coords)
        self.readout = readout
        self.max_atomic_number = max_atomic_number
        self.n_atom_outputs = n_atom_outputs
        self.neighbor_scale = neighbor_scale(statistics)

        self.embedding = nn.Embedding(max_atomic_number + 1, hidden_channels)
        self.radial = GaussianSmearing(0.0, self.cutoff, num_radial) if num_radial else None
        self.layers = nn.ModuleList(
            EquivariantLayer(hidden_channels, num_radial, self.update_coords and k < num_layers - 1, attention,
                             self.cutoff)
            for k in range(num_layers))
        self.output = mlp([hidden_channels, hidden_channels, n_outputs])
        self.atom_output = mlp([hidden_channels, hidden_channels, n_atom_outputs]) if n_atom_outputs else None

    def embed(self, batch) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Final invariant features h [N, F], equivariantly updated coordinates x [N, 3] and the
        batched DGLGraph they were computed on."""
        positions = batch["positions"]
        graph, shift = batch_graph(batch)
        with graph.local_scope():
            graph.ndata["x"] = positions
            graph.apply_edges(fn.u_sub_v("x", "x", "vector"))  # x_j - x_i: differentiable in the positions
            vectors = graph.edata["vector"] + shift
        distances = torch.sqrt((vectors * vectors).sum(-1).clamp_min(1e-12))
        envelope = cosine_envelope(distances, self.cutoff).unsqueeze(-1)
        radial = self.radial(distances) if self.radial is not None else vectors.new_zeros(len(vectors), 0)
        h = self.embedding(batch["numbers"])
        x = positions
        for layer in self.layers:
            h, x = layer(graph, h, x, shift, radial, envelope, self.neighbor_scale)
        return h, x, graph

    def forward(self, batch) -> ModelOutput:
        h, _, graph = self.embed(batch)
        op = "mean" if self.readout == "mean" else "sum"
        with graph.local_scope():
            graph.ndata["y"] = self.output(h)
            graph.ndata["h"] = h
            y = dgl.readout_nodes(graph, "y", op=op)
            pooled = dgl.readout_nodes(graph, "h", op=op)
        out = ModelOutput(y=y, atom_embedding=h, graph_embedding=pooled)
        if self.atom_output is not None:
            out["atom_y"] = self.atom_output(h)
        return out


def batch_graph(batch) -> tuple[Any, torch.Tensor]:
    """The batch's DGLGraph (``dgl_graph``) or one built from ``edge_index`` (``adjacency_list``),
    on the positions' device, with its lattice shifts [E, 3] in the positions' dtype."""
    positions = batch["positions"]
    if "graph" in batch:
        graph = batch["graph"]
        if graph.device != positions.device:
            graph = graph.to(positions.device)
        shift = graph.edata["shift"]
    else:
        centers, neighbors = batch["edge_index"]
        graph = dgl.graph((neighbors, centers), num_nodes=positions.shape[0], idtype=torch.int64,
                          device=positions.device)
        natoms = batch["natoms"].to(positions.device)
        graph.set_batch_num_nodes(natoms)
        per_graph = torch.bincount(batch["batch"].index_select(0, centers), minlength=int(batch["num_graphs"]))
        graph.set_batch_num_edges(per_graph)
        shift = batch["edge_shift"]
    return graph, shift.to(dtype=positions.dtype, device=positions.device)


def neighbor_scale(statistics) -> float:
    """C of the coordinate update: one over the training set's average neighbour count (1 without
    statistics); a constant, unlike the paper's 1/(M - 1), so an atom entering the cutoff changes
    nothing abruptly."""
    average = getattr(statistics, "avg_num_neighbors", None)
    return 1.0 / average if average and average > 1.0 else 1.0


def check_settings(hidden_channels: int, num_layers: int, num_radial: int, cutoff: float, readout: str,
                   max_atomic_number: int) -> None:
    """Clear errors for values the spec's bounds cannot express (or a direct caller skips)."""
    if readout not in ("sum", "mean"):
        raise ValueError(f"readout must be 'sum' or 'mean', got {readout!r}")
    if num_radial == 1 or num_radial < 0:
        raise ValueError(f"num_radial must be 0 (no radial basis) or at least 2 Gaussians, got {num_radial}")
    for name, value in (("hidden_channels", hidden_channels), ("num_layers", num_layers),
                        ("max_atomic_number", max_atomic_number)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive (Å), got {cutoff}")
