"""E(n)-equivariant graph neural network (EGNN).

V. G. Satorras, E. Hoogeboom, M. Welling, "E(n) Equivariant Graph Neural Networks", ICML 2021
(arXiv:2102.09844).

Every atom carries invariant features h_i (an embedding of its element) and coordinates x_i.
One equivariant graph convolutional layer (EGCL, eqs. 3-6 of the paper) does, for every edge
i <- j of the radius graph,

    m_ij    = phi_e(h_i, h_j, ||x_i - x_j||^2, a_ij) * f_c(d_ij)
    x_i'    = x_i + C sum_j (x_i - x_j) phi_x(m_ij) f_c(d_ij)
    h_i'    = h_i + phi_h(h_i, sum_j e_ij m_ij)

with e_ij = 1, or the optional attention gate sigmoid(W m_ij). Only distances enter the
features, so h stays invariant and x' rotates and translates with the input (equivariant).

Choices beyond the paper, each to make it a smooth, size-independent model of atoms:
- The graph is molplat's radius graph with periodic images, so x_j means j's image:
  x_i - x_j - s_ij with the edge's lattice shift s_ij.
- C is one over the training set's average number of neighbours: a constant, where the
  paper's 1/(M - 1) over the current neighbours would jump when an atom enters the cutoff.
  Messages are summed plainly, as in the paper.
- f_c is the cosine envelope of the *input* distance d_ij, applied to every message and every
  coordinate update, so each edge's whole contribution fades smoothly at the cutoff even after
  the coordinates have moved: energies are smooth functions of the positions and forces come
  from autograd.
- The edge attribute a_ij is a Gaussian expansion of the input distance (``num_radial``).
- phi_x ends in tanh (an option of the authors' code) so the coordinate steps stay bounded.
- The last layer updates no coordinates: no output would read them.
phi_e's first layer is applied to h once per atom (W [h_i, h_j, g] = W_i h_i + W_j h_j + W_g g),
the same function with the widest product done per atom instead of per edge.
Invariant per-atom outputs come from an atom-wise MLP on the final h, summed (extensive
targets) or averaged (intensive ones) per structure.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch_geometric.nn.models.schnet import GaussianSmearing
from torch_geometric.utils import scatter

from molplat.models import AtomisticModel, ModelOutput
from molplat.representations.adjacency_list import edge_vectors


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
    """One EGCL (eqs. 3-6): messages from invariants, coordinates moved along x_i - x_j."""

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
            # Start close to the identity map on coordinates, as the authors' code does.
            nn.init.xavier_uniform_(self.coord_mlp[-1].weight, gain=0.001)

    def split_first_layer(self, h: torch.Tensor,
                          geometry: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """phi_e's first Linear on [h_i, h_j, geometry] as W_i h_i + W_j h_j + (W_g geometry + b):
        the same function, with the wide part computed once per atom instead of once per edge."""
        first = self.edge_mlp[0]
        width = h.shape[1]
        nodes = nn.functional.linear(h, torch.cat([first.weight[:, :width], first.weight[:, width:2 * width]]))
        centre, neighbour = nodes.split(first.out_features, dim=-1)
        return centre, neighbour, nn.functional.linear(geometry, first.weight[:, 2 * width:], first.bias)

    def forward(self, h: torch.Tensor, x: torch.Tensor, receivers: torch.Tensor, senders: torch.Tensor,
                shift: torch.Tensor, radial: torch.Tensor, envelope: torch.Tensor,
                scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        # x_i - (x_j + s_ij): from the neighbour's (periodic image) position to the centre.
        diff = x.index_select(0, receivers) - x.index_select(0, senders) - shift
        d2 = (diff * diff).sum(-1, keepdim=True) * self.inverse_cutoff_sq
        centre, neighbour, geometric = self.split_first_layer(h, torch.cat([d2, radial], dim=-1))
        pre = centre.index_select(0, receivers) + neighbour.index_select(0, senders) + geometric
        m = self.edge_mlp[1:](pre) * envelope
        if self.attention is not None:
            m = m * torch.sigmoid(self.attention(m))
        if self.coord_mlp is not None:
            step = diff * (torch.tanh(self.coord_mlp(m)) * envelope)
            x = x + scatter(step, receivers, dim=0, dim_size=x.shape[0], reduce="sum") * scale
        aggregated = scatter(m, receivers, dim=0, dim_size=h.shape[0], reduce="sum")
        h = h + self.node_mlp(torch.cat([h, aggregated], dim=-1))
        return h, x


class EGNN(AtomisticModel):
    """E(n)-GNN on the ``adjacency_list`` representation (molecules and periodic crystals)."""

    accepts = ("adjacency_list",)
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
        # The last layer's coordinates would reach no output, so it moves none (and has no phi_x).
        self.layers = nn.ModuleList(
            EquivariantLayer(hidden_channels, num_radial, self.update_coords and k < num_layers - 1, attention,
                             self.cutoff)
            for k in range(num_layers))
        self.output = mlp([hidden_channels, hidden_channels, n_outputs])
        self.atom_output = mlp([hidden_channels, hidden_channels, n_atom_outputs]) if n_atom_outputs else None

    def embed(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Final invariant features h [N, F] and equivariantly updated coordinates x [N, 3]
        (the input positions when ``update_coords`` is off)."""
        receivers, senders = batch["edge_index"]
        vectors = edge_vectors(batch)  # x_j + s_ij - x_i, differentiable in batch.positions
        shift = batch["edge_shift"].to(vectors.dtype)
        distances = torch.sqrt((vectors * vectors).sum(-1).clamp_min(1e-12))
        envelope = cosine_envelope(distances, self.cutoff).unsqueeze(-1)
        radial = self.radial(distances) if self.radial is not None else vectors.new_zeros(len(vectors), 0)
        h = self.embedding(batch["numbers"])
        x = batch["positions"]
        for layer in self.layers:
            h, x = layer(h, x, receivers, senders, shift, radial, envelope, self.neighbor_scale)
        return h, x

    def forward(self, batch) -> ModelOutput:
        h, _ = self.embed(batch)
        return readout(self, h, batch)


def readout(model: EGNN, h: torch.Tensor, batch) -> ModelOutput:
    """Atom-wise MLP, pooled per structure with the model's readout; per-atom heads on the same h."""
    graph = batch["batch"]
    num_graphs = int(batch["num_graphs"])
    per_atom = model.output(h)
    y = scatter(per_atom, graph, dim=0, dim_size=num_graphs, reduce="sum")
    pooled = scatter(h, graph, dim=0, dim_size=num_graphs, reduce="sum")
    if model.readout == "mean":
        counts = batch["natoms"].to(h.dtype).clamp_min(1).unsqueeze(-1)
        y, pooled = y / counts, pooled / counts
    out = ModelOutput(y=y, atom_embedding=h, graph_embedding=pooled)
    if model.atom_output is not None:
        out["atom_y"] = model.atom_output(h)
    return out


def neighbor_scale(statistics) -> float:
    """C of the coordinate update: one over the training set's average neighbour count (1 without
    statistics). A constant, unlike the paper's 1/(M - 1) over each atom's current neighbours,
    so an atom entering the cutoff changes nothing abruptly."""
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
