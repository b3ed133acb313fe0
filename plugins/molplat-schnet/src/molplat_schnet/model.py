"""SchNet: continuous-filter convolutions on a radius graph.

Schütt, Sauceda, Kindermans, Tkatchenko, Müller, J. Chem. Phys. 148, 241722 (2018).

Atoms start from an embedding of their element; each interaction block lets every atom
collect its neighbours' features, each weighted element-wise by a filter that a small
network generates from the interatomic distance (expanded on Gaussians). Atom-wise layers
then map the final features to per-atom contributions, summed (extensive targets such as
energies) or averaged (intensive ones such as the HOMO-LUMO gap) over each structure. Per-atom
targets (partial charges) get their own atom-wise head on the same final features, built only
when the run asks for them (``n_atom_outputs`` > 0).

Written for CPU speed without changing the function: the filters depend on the distance
only, so the radial basis, the cutoff and every block's filter network run once per unordered
atom pair (half the directed edges) and are shared by both directions; message passing is one
gather, one multiply and one ``index_add_`` per block; the shift of the shifted softplus is
folded into the next layer's bias; the Gaussians are floored at e^-87 so that no float32
denormals (slow on x86) reach the matmuls.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from molplat.models import AtomisticModel, ModelOutput
from molplat.representations.adjacency_list import edge_vectors

_LOG2 = math.log(2.0)


def shifted_softplus(x: torch.Tensor) -> torch.Tensor:
    """ln(0.5 e^x + 0.5): softplus shifted so that ssp(0) = 0, smooth (needed for forces)."""
    return F.softplus(x) - _LOG2


class ShiftedSoftplus(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shifted_softplus(x)


class GaussianRBF(nn.Module):
    """exp(-gamma (d - mu_k)^2) on ``n`` centres evenly spaced over [0, cutoff].

    The width follows the centre spacing (gamma = 1 / (2 spacing^2)), so the basis covers
    the cutoff sphere evenly whatever the number of Gaussians.
    """

    def __init__(self, num_gaussians: int, cutoff: float) -> None:
        super().__init__()
        centers = torch.linspace(0.0, cutoff, num_gaussians)
        spacing = cutoff / max(num_gaussians - 1, 1)
        self.register_buffer("centers", centers)
        self.gamma = 0.5 / spacing**2

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        diff = distances.unsqueeze(-1) - self.centers
        # Floor at e^-87 (~1.6e-38, the smallest normal float32): identical to float32
        # precision, and no denormals, which slow exp and the matmuls after it ~10x on x86.
        return torch.exp((-self.gamma * diff * diff).clamp_min(-87.0))


def cosine_cutoff(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """0.5 (cos(pi d / rc) + 1) inside the cutoff, 0 beyond: energy stays continuous and
    smooth when an atom crosses the cutoff sphere."""
    value = 0.5 * (torch.cos(distances * (math.pi / cutoff)) + 1.0)
    return value * (distances < cutoff).to(value.dtype)


def linear_after_ssp(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """``layer(ssp(x))`` with the shift folded into the bias: W (softplus(x) - ln2) + b equals
    W softplus(x) + (b - ln2 W 1), same value and same gradients, one pass over x fewer."""
    bias = layer.bias - _LOG2 * layer.weight.sum(1)
    return F.linear(F.softplus(x), layer.weight, bias)


class Interaction(nn.Module):
    """One SchNet interaction block (atom-wise, cfconv, atom-wise, ssp, atom-wise).

    The filter-generating network is rbf -> Dense -> ssp -> Dense -> ssp, times the cosine
    cutoff; it runs once per unordered atom pair and each edge then picks its pair's filter.
    """

    def __init__(self, hidden_channels: int, num_filters: int, num_gaussians: int) -> None:
        super().__init__()
        self.filter_in = nn.Linear(num_gaussians, num_filters)
        self.filter_out = nn.Linear(num_filters, num_filters)
        self.in2f = nn.Linear(hidden_channels, num_filters, bias=False)
        self.f2out = nn.Linear(num_filters, hidden_channels)
        self.dense = nn.Linear(hidden_channels, hidden_channels)

    def filters(self, rbf: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        """W(d) = ssp(Dense(ssp(Dense(rbf)))) * cutoff(d), [pairs, F]; zero at the cutoff."""
        z = linear_after_ssp(self.filter_in(rbf), self.filter_out)
        # ssp(z) * env = softplus(z) * env - ln2 * env, in one fused multiply-add.
        return torch.addcmul(envelope * -_LOG2, F.softplus(z), envelope)

    def forward(self, h: torch.Tensor, rbf: torch.Tensor, envelope: torch.Tensor, pairs: "PairGraph") -> torch.Tensor:
        w = self.filters(rbf, envelope)
        x = self.in2f(h)
        # cfconv: x_i' = sum_j x_j * W(d_ij): one gather, one multiply, one index_add.
        gathered = x.index_select(0, pairs.sources)
        if pairs.per_edge:  # static-shape path: one filter per directed edge, already in edge order
            messages = gathered * w
        elif pairs.pair_of_edge is None:  # edges are [pairs; reversed pairs]: broadcast W, no gather
            messages = (gathered.view(2, -1, x.shape[1]) * w).view(-1, x.shape[1])
        else:
            messages = gathered * w.index_select(0, pairs.pair_of_edge)
        # Sized from the messages, whose dtype may differ from x's under bf16 autocast.
        conv = messages.new_zeros(x.shape[0], messages.shape[1]).index_add_(0, pairs.targets, messages)
        v = linear_after_ssp(self.f2out(conv), self.dense)
        return h + v


class SchNet(AtomisticModel):
    """SchNet on the ``adjacency_list`` representation (molecules and periodic crystals).

    Two paths compute the same function. The default one pairs up i->j and j->i edges
    (``torch.unique``, ``bincount().max()``), which halves the filter work on the CPU but
    gives shapes that depend on the data. The static-shape path (``static_shapes=True``,
    and always for a fixed-size padded batch, one that carries ``graphs_mask``) runs the
    filters once per directed edge, so every shape follows from the batch's tensor shapes:
    it compiles for PopTorch (IPUs) and ``torch.compile(fullgraph=True)``.
    """

    accepts = ("adjacency_list",)
    embedding_layer = "embedding"

    def __init__(self, n_outputs: int = 1, hidden_channels: int = 64, num_filters: int = 64,
                 num_interactions: int = 3, num_gaussians: int = 50, cutoff: float = 5.0,
                 readout: str = "sum", max_atomic_number: int = 100, n_atom_outputs: int = 0,
                 static_shapes: bool = False) -> None:
        super().__init__(n_outputs)
        self.static_shapes = bool(static_shapes)
        if readout not in ("sum", "mean"):
            raise ValueError(f"readout must be 'sum' or 'mean', got {readout!r}")
        self.hidden_channels = hidden_channels
        self.num_filters = num_filters
        self.num_interactions = num_interactions
        self.cutoff = float(cutoff)
        self.readout = readout
        self.max_atomic_number = max_atomic_number
        self.n_atom_outputs = n_atom_outputs

        self.embedding = nn.Embedding(max_atomic_number + 1, hidden_channels)
        self.rbf = GaussianRBF(num_gaussians, cutoff)
        self.interactions = nn.ModuleList(
            Interaction(hidden_channels, num_filters, num_gaussians) for _ in range(num_interactions))
        self.output = _atomwise(hidden_channels, n_outputs)
        # Per-atom targets read the same final features through their own head: a charge is
        # not a share of a total, so it does not go through the pooled output.
        self.atom_output = _atomwise(hidden_channels, n_atom_outputs) if n_atom_outputs else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.embedding.weight, std=1.0)

    def forward(self, batch) -> ModelOutput:
        numbers = batch["numbers"]
        graph = batch["batch"]
        num_graphs = int(batch["num_graphs"])

        vectors = edge_vectors(batch)
        if self.static_shapes or "graphs_mask" in batch:
            pairs = PairGraph.directed(batch["edge_index"])
            pair_vectors = vectors
        else:
            # The filter depends on the distance only, and i->j and j->i are the same distance:
            # run the filter networks once per unordered pair, then hand each edge its pair's filter.
            pairs = PairGraph.build(batch["edge_index"], batch.get("cell_offsets"), numbers.shape[0])
            pair_vectors = vectors.index_select(0, pairs.representative)
        # sqrt has an infinite gradient at 0; no edge has zero length, but clamp for safety.
        distances = torch.sqrt((pair_vectors * pair_vectors).sum(-1).clamp_min(1e-12))
        envelope = cosine_cutoff(distances, self.cutoff).unsqueeze(-1)
        rbf = self.rbf(distances)

        h = self.embedding(numbers)
        for block in self.interactions:
            h = block(h, rbf, envelope, pairs)

        per_atom = self.output(h)
        y = per_atom.new_zeros(num_graphs, self.n_outputs).index_add_(0, graph, per_atom)
        pooled = h.new_zeros(num_graphs, h.shape[1]).index_add_(0, graph, h)
        if self.readout == "mean":
            counts = batch["natoms"].to(h.dtype).clamp_min(1).unsqueeze(-1)
            y = y / counts
            pooled = pooled / counts
        out = ModelOutput(y=y, atom_embedding=h, graph_embedding=pooled)
        if self.atom_output is not None:
            out["atom_y"] = self.atom_output(h)
        return out


def _atomwise(hidden_channels: int, outputs: int) -> nn.Sequential:
    """Dense -> ssp -> Dense applied to every atom's features (the paper's output network)."""
    return nn.Sequential(
        nn.Linear(hidden_channels, max(hidden_channels // 2, 1)),
        ShiftedSoftplus(),
        nn.Linear(max(hidden_channels // 2, 1), outputs),
    )


class PairGraph(NamedTuple):
    """The radius graph seen as unordered atom pairs, where the filters live.

    ``representative`` [P]: one directed edge per pair, whose distance the pair uses.
    Messages flow from ``sources`` to ``targets``; message k uses the filter of pair
    ``pair_of_edge[k]``. When every pair comes in both directions (full neighbour lists)
    the messages are ordered [pairs; reversed pairs] and ``pair_of_edge`` is None, so a
    filter is broadcast to its two messages instead of gathered.
    """

    representative: torch.Tensor | None
    sources: torch.Tensor
    targets: torch.Tensor
    pair_of_edge: torch.Tensor | None
    per_edge: bool = False

    @staticmethod
    def directed(edge_index: torch.Tensor) -> "PairGraph":
        """Every directed edge its own pair: no ``unique``, no data-dependent shape (the static path)."""
        centers, neighbors = edge_index
        return PairGraph(None, neighbors, centers, None, per_edge=True)

    @staticmethod
    def build(edge_index: torch.Tensor, cell_offsets: torch.Tensor | None, num_atoms: int) -> "PairGraph":
        """(i, j, S) and (j, i, -S) are one pair; works whether or not the list holds both
        directions of every pair (e.g. after max_neighbors truncation)."""
        centers, neighbors = edge_index
        swap = centers > neighbors
        key = torch.where(swap, neighbors, centers) * num_atoms + torch.where(swap, centers, neighbors)
        if cell_offsets is not None and cell_offsets.numel() and bool(cell_offsets.any()):
            base = 2 * int(cell_offsets.abs().max()) + 1
            code = (cell_offsets[:, 0] * base + cell_offsets[:, 1]) * base + cell_offsets[:, 2]
            # An atom's own periodic image (i == j): orient the pair by the sign of the shift.
            flip = swap | ((centers == neighbors) & (code < 0))
            key = key * base**3 + torch.where(flip, -code, code) + base**3 // 2
        unique, pair_of_edge = torch.unique(key, return_inverse=True)
        num_edges, num_pairs = key.shape[0], unique.shape[0]
        representative = torch.empty(num_pairs, dtype=torch.long, device=key.device)
        representative.scatter_(0, pair_of_edge, torch.arange(num_edges, device=key.device))
        # At most one edge per direction, so 2 per pair everywhere means both directions everywhere.
        if num_edges == 2 * num_pairs and (num_pairs == 0 or int(torch.bincount(pair_of_edge).max()) == 2):
            i, j = centers.index_select(0, representative), neighbors.index_select(0, representative)
            return PairGraph(representative, torch.cat([j, i]), torch.cat([i, j]), None)
        return PairGraph(representative, neighbors, centers, pair_of_edge)
