"""MEGNet: graph networks with a global state, for molecules and crystals.

Chen, Ye, Zuo, Zheng, Ong, Chem. Mater. 31, 3564 (2019), doi:10.1021/acs.chemmater.9b01294.

A structure is a graph of atoms ``v_i``, directed edges ``e_k`` (one per neighbour pair and
direction, periodic images included) and one global state vector ``u``. Atoms start from a
learned element embedding, edges from the interatomic distance expanded on Gaussians, the
state from a learned constant vector. Two dense layers (pre-layers) map each of the three to
the block width; then each MEGNet block updates, in order,

* every edge from its two atoms, itself and the state: ``e_k' = phi_e(v_i + v_j + e_k + u)``
  (``+`` is concatenation),
* every atom from the mean of its incoming updated edges, itself and the state:
  ``v_i' = phi_v(mean_k e_k' + v_i + u)``,
* the state from the means of the updated edges and atoms and itself:
  ``u' = phi_u(mean e' + mean v' + u)``,

each ``phi`` a three-layer MLP, with a residual connection around the block and fresh
pre-layers before every block but the first. The paper's readout runs Set2Set over the
atoms and over the edges and an MLP on the two concatenated with the state ("set2set",
intensive targets). Extensive targets such as energies are better read as a sum of
per-atom contributions, each an MLP of the atom's features and its structure's state
("sum"; "mean" averages them instead). Per-atom targets (``n_atom_outputs`` > 0) get their
own MLP on the same atom-and-state features.

Departures from the published model, each for a reason:

* Atoms are embedded by a learned table over the atomic number (the paper's crystal model
  does the same; its molecule model used hand-made atom and bond features instead).
* The initial state is a learned constant vector (the paper's crystals use the constant
  [0, 0]; its molecules a few descriptors that a dataset does not provide here).
* The edge features are the Gaussians times a cosine envelope that falls smoothly to zero at
  the cutoff, and every average over edges (the atom and state updates, the edge Set2Set)
  weighs each edge by that envelope, w_k: ``sum_k w_k x_k / max~(W, 1)`` with
  ``W = sum_k w_k`` and ``max~(W, 1) = W + relu(1 - W)^3``, a twice-differentiable floor.
  That is exactly the weighted mean once the weights add up to one neighbour (so a supercell
  predicts what its cell does), and it falls smoothly to zero as the last neighbour leaves, so the energy and the forces stay
  continuous when an atom crosses the cutoff. A plain mean jumps there, since the count
  of edges changes.
* Set2Set first maps its inputs to its own width by a linear layer, as the authors'
  implementation does; the atom one is torch-geometric's ``Set2Set``, the edge one the same
  module with the envelope in its attention.

Weights start Glorot-uniform with zero biases, as in the authors' Keras code. The signal
shrinks through the stacks of shifted softplus (slope 1/2 at zero), so MEGNet learns more
slowly per epoch than SchNet on small sets; larger initial gains blow up through the residual
stream instead, so they were not taken.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.nn.aggr import Set2Set
from torch_geometric.utils import scatter

from molplat.models import AtomisticModel, ModelOutput
from molplat.representations import edge_vectors

_LOG2 = math.log(2.0)
READOUTS = ("set2set", "sum", "mean")


class ShiftedSoftplus(nn.Module):
    """softplus(x) - ln 2, the paper's activation: smooth (forces) and zero at zero."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In place: softplus's backward reads its input, not its output, so this is safe
        # and saves allocating a second activation tensor.
        return F.softplus(x).sub_(_LOG2)


def dense(*widths: int, last_activation: bool = True) -> nn.Sequential:
    """Linear layers of the given widths, each followed by a shifted softplus."""
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or k < len(widths) - 2:
            layers.append(ShiftedSoftplus())
    return nn.Sequential(*layers)


class GaussianExpansion(nn.Module):
    """exp(-(d - mu_k)^2 / sigma^2) on centres evenly spaced over [0, cutoff].

    The width is the paper's own setting (0.5 Å), independent of the spacing of the
    centres, so torch-geometric's ``GaussianSmearing`` (width tied to spacing) does not fit.
    """

    def __init__(self, num_gaussians: int, cutoff: float, width: float) -> None:
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, cutoff, num_gaussians))
        self.gamma = 1.0 / width**2

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        diff = distances.unsqueeze(-1) - self.centers
        # Floored at e^-87, the smallest normal float32: no denormals, which slow x86 ~10x.
        return torch.exp((-self.gamma * diff * diff).clamp_min(-87.0))


def cosine_envelope(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """0.5 (cos(pi d / rc) + 1) inside the cutoff, 0 beyond: value and slope vanish at rc."""
    value = 0.5 * (torch.cos(distances * (math.pi / cutoff)) + 1.0)
    return value * (distances < cutoff).to(value.dtype)


def soft_count(total: torch.Tensor) -> torch.Tensor:
    """W for W >= 1, W + (1 - W)^3 below: never under 0.6, 1 at W = 0, twice differentiable.

    Dividing a weighted sum by it gives the exact weighted mean as soon as the weights add up
    to one neighbour, and a value that fades smoothly to zero as the last neighbour leaves.
    """
    return total + torch.relu(1.0 - total) ** 3


def smooth_mean(x: torch.Tensor, weight: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """sum_k w_k x_k / soft_count(sum_k w_k) per group (see the module docstring)."""
    total = scatter(weight, index, 0, dim_size=dim_size, reduce="sum")
    summed = scatter(x * weight.unsqueeze(-1), index, 0, dim_size=dim_size, reduce="sum")
    return summed / soft_count(total).unsqueeze(-1)


class EnvelopeSet2Set(Set2Set):
    """torch-geometric's Set2Set with each element's attention weighted by its envelope w_k.

    a_k = w_k exp(q . x_k) / sum_l w_l exp(q . x_l): an edge entering the cutoff starts
    with zero attention instead of taking its share at once; and the read vector is scaled by
    W / soft_count(W) (1 once the weights add up to one edge), so that it goes to zero
    smoothly as a structure's last edge leaves.
    """

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None, ptr: torch.Tensor | None = None,
                dim_size: int | None = None, dim: int = -2, weight: torch.Tensor | None = None) -> torch.Tensor:
        if weight is None:
            return super().forward(x, index, ptr, dim_size, dim)
        assert index is not None and dim_size is not None, "the envelope-weighted path pools by index"
        total = scatter(weight, index, 0, dim_size=dim_size, reduce="sum")
        fade = (total / soft_count(total)).unsqueeze(-1)
        live = weight > 0
        state = (x.new_zeros(self.lstm.num_layers, dim_size, self.in_channels),
                 x.new_zeros(self.lstm.num_layers, dim_size, self.in_channels))
        q_star = x.new_zeros(dim_size, self.out_channels)
        for _ in range(self.processing_steps):
            q, state = self.lstm(q_star.unsqueeze(0), state)
            q = q.view(dim_size, self.in_channels)
            score = (x * q.index_select(0, index)).sum(-1)
            # Shift by each group's largest live score (the ratio does not depend on it) so
            # that exp neither overflows nor underflows; dead edges (w = 0) never count.
            score = torch.where(live, score, torch.full_like(score, -math.inf))
            top = scatter(score.detach(), index, 0, dim_size=dim_size, reduce="max")
            top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
            p = weight * torch.exp(score - top.index_select(0, index))
            norm = scatter(p, index, 0, dim_size=dim_size, reduce="sum")
            norm = torch.where(norm > 0, norm, torch.ones_like(norm)).unsqueeze(-1)
            read = scatter(p.unsqueeze(-1) * x, index, 0, dim_size=dim_size, reduce="sum") / norm * fade
            q_star = torch.cat([q, read], dim=-1)
        return q_star


class MEGNetBlock(nn.Module):
    """Pre-layers (all blocks but the first), then the edge, atom and state updates.

    Returns the updates only; the caller adds the residual. The first layer of the edge
    MLP acts on [v_i, v_j, e_k, u]: it is split into its four blocks so that the atom and
    state parts run once per atom and per structure, not once per edge (same function).
    """

    def __init__(self, channels: int, hidden: int, pre_layers: bool) -> None:
        super().__init__()
        self.channels = channels
        if pre_layers:
            self.pre_atom = dense(channels, hidden, channels)
            self.pre_edge = dense(channels, hidden, channels)
            self.pre_state = dense(channels, hidden, channels)
        else:
            self.pre_atom = self.pre_edge = self.pre_state = None
        self.edge_first = nn.Linear(4 * channels, hidden)
        self.edge_rest = nn.Sequential(ShiftedSoftplus(), *dense(hidden, hidden, channels))
        self.atom_mlp = dense(3 * channels, hidden, hidden, channels)
        self.state_mlp = dense(3 * channels, hidden, hidden, channels)

    def forward(self, v: torch.Tensor, e: torch.Tensor, u: torch.Tensor, graph: "GraphIndex"
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.pre_atom is not None:
            v, e, u = self.pre_atom(v), self.pre_edge(e), self.pre_state(u)
        w_i, w_j, w_e, w_u = self.edge_first.weight.split(self.channels, dim=1)
        pre = (F.linear(v, w_i).index_select(0, graph.centers)
               + F.linear(v, w_j).index_select(0, graph.neighbors)
               + F.linear(e, w_e, self.edge_first.bias)
               + F.linear(u, w_u).index_select(0, graph.edge_graph))
        e_new = self.edge_rest(pre)
        # Messages flow neighbour j -> centre i: atom i reads the edges it is the centre of.
        incoming = smooth_mean(e_new, graph.weight, graph.centers, v.shape[0])
        v_new = self.atom_mlp(torch.cat([incoming, v, u.index_select(0, graph.atom_graph)], dim=-1))
        edges_mean = smooth_mean(e_new, graph.weight, graph.edge_graph, u.shape[0])
        atoms_mean = scatter(v_new, graph.atom_graph, 0, dim_size=u.shape[0], reduce="mean")
        u_new = self.state_mlp(torch.cat([edges_mean, atoms_mean, u], dim=-1))
        return v_new, e_new, u_new


class GraphIndex:
    """The index tensors every block reads, computed once per batch."""

    def __init__(self, edge_index: torch.Tensor, atom_graph: torch.Tensor, weight: torch.Tensor) -> None:
        self.centers, self.neighbors = edge_index[0], edge_index[1]
        self.atom_graph = atom_graph
        self.edge_graph = atom_graph.index_select(0, self.centers)
        self.weight = weight


class MEGNet(AtomisticModel):
    """MEGNet on the ``adjacency_list`` representation (molecules and periodic crystals);
    see the module docstring."""

    accepts = ("adjacency_list",)
    embedding_layer = "embedding"

    def __init__(self, n_outputs: int = 1, atom_features: int = 16, hidden_channels: int = 64,
                 block_channels: int = 32, set2set_channels: int = 16, num_blocks: int = 3,
                 set2set_steps: int = 3, state_features: int = 2, num_gaussians: int = 100,
                 gaussian_width: float = 0.5, cutoff: float = 5.0, readout: str = "set2set",
                 max_atomic_number: int = 100, n_atom_outputs: int = 0) -> None:
        super().__init__(n_outputs)
        if readout not in READOUTS:
            raise ValueError(f"megnet: readout must be one of {', '.join(READOUTS)}; got {readout!r}")
        for name, value in (("atom_features", atom_features), ("hidden_channels", hidden_channels),
                            ("block_channels", block_channels), ("set2set_channels", set2set_channels),
                            ("num_blocks", num_blocks), ("set2set_steps", set2set_steps),
                            ("state_features", state_features), ("num_gaussians", num_gaussians),
                            ("max_atomic_number", max_atomic_number)):
            if int(value) < 1:
                raise ValueError(f"megnet: {name} must be at least 1, got {value}")
        if not cutoff > 0 or not gaussian_width > 0:
            raise ValueError(f"megnet: cutoff and gaussian_width must be positive, got {cutoff} and {gaussian_width}")
        self.cutoff = float(cutoff)
        self.readout = readout
        self.max_atomic_number = max_atomic_number
        self.n_atom_outputs = n_atom_outputs
        c, h, s = block_channels, hidden_channels, set2set_channels

        self.embedding = nn.Embedding(max_atomic_number + 1, atom_features)
        #: the global state every structure starts from; learned (the paper's crystals use zeros,
        #: which would leave the state pre-layer's first weights without a gradient)
        self.initial_state = nn.Parameter(torch.randn(state_features))
        self.expansion = GaussianExpansion(num_gaussians, self.cutoff, gaussian_width)
        self.atom_in = dense(atom_features, h, c)
        self.edge_in = dense(num_gaussians, h, c)
        self.state_in = dense(state_features, h, c)
        self.blocks = nn.ModuleList(MEGNetBlock(c, h, pre_layers=k > 0) for k in range(num_blocks))

        if readout == "set2set":
            self.atom_project = nn.Linear(c, s)
            self.edge_project = nn.Linear(c, s)
            self.atom_set2set = Set2Set(s, set2set_steps)
            self.edge_set2set = EnvelopeSet2Set(s, set2set_steps)
            self.head = dense(4 * s + c, c, s, n_outputs, last_activation=False)
        else:
            # per-atom contributions from the atom's features and its structure's state
            self.head = dense(2 * c, c, s, n_outputs, last_activation=False)
        self.atom_head = dense(2 * c, c, s, n_atom_outputs, last_activation=False) if n_atom_outputs else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights and zero biases (the authors' Keras defaults): torch's default
        init shrinks the signal through these deep stacks of shifted softplus layers until every
        structure looks alike. The LSTMs keep their own initialisation."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.embedding.weight, std=1.0)

    def forward(self, batch) -> ModelOutput:
        numbers = batch["numbers"]
        atom_graph = batch["batch"]
        num_graphs = int(batch["num_graphs"])

        vectors = edge_vectors(batch)
        # sqrt has an infinite gradient at 0; no edge has zero length, but clamp for safety.
        distances = torch.sqrt((vectors * vectors).sum(-1).clamp_min(1e-12))
        weight = cosine_envelope(distances, self.cutoff)
        graph = GraphIndex(batch["edge_index"], atom_graph, weight)

        v = self.atom_in(self.embedding(numbers))
        e = self.edge_in(self.expansion(distances) * weight.unsqueeze(-1))
        u = self.state_in(self.initial_state.to(v.dtype).expand(num_graphs, -1))
        for block in self.blocks:
            dv, de, du = block(v, e, u, graph)
            v, e, u = v + dv, e + de, u + du

        atom_state = torch.cat([v, u.index_select(0, atom_graph)], dim=-1)
        if self.readout == "set2set":
            atoms = self.atom_set2set(self.atom_project(v), atom_graph, dim_size=num_graphs)
            edges = self.edge_set2set(self.edge_project(e), graph.edge_graph, dim_size=num_graphs, weight=weight)
            embedding = torch.cat([atoms, edges, u], dim=-1)
            y = self.head(embedding)
        else:
            per_atom = self.head(atom_state)
            y = scatter(per_atom, atom_graph, 0, dim_size=num_graphs, reduce=self.readout)
            embedding = torch.cat([scatter(v, atom_graph, 0, dim_size=num_graphs, reduce=self.readout), u], dim=-1)
        out = ModelOutput(y=y, atom_embedding=v, graph_embedding=embedding)
        if self.atom_head is not None:
            out["atom_y"] = self.atom_head(atom_state)
        return out
