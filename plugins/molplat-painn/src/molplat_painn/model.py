"""PaiNN: the polarizable atom interaction neural network.

K. T. Schütt, O. T. Unke, M. Gastegger, "Equivariant message passing for the prediction of
tensorial properties and molecular spectra", ICML 2021 (PMLR 139), arXiv:2102.03150.

Every atom carries scalar features ``s`` [N, F] (rotation invariant) and vector features
``v`` [N, 3, F] (F channels of 3-vectors that rotate with the structure), starting from an
element embedding and zero vectors. Blocks alternate:

* message: atom i gathers from each neighbour j a filter W(r_ij) = Linear(rbf(r_ij)) times a
  cosine cutoff, where rbf is the sinc basis sin(n pi r / rc) / r. Multiplied element-wise by
  phi(s_j) (Dense, SiLU, Dense) it splits into three F-channel parts: a scalar message
  (added to s_i), a gate on the neighbour's vectors v_j, and a weight on the unit direction
  r_ij / |r_ij| (both added to v_i). The direction term is how geometry enters the vectors.
* update: two channel-mixing linear maps U and V act on the vectors (they mix channels, never
  the three spatial components, so they commute with rotations); an MLP reads [s, ||V v||] and
  returns a_vv, a_sv, a_ss; then v += a_vv * U v and s += a_sv * <U v, V v> + a_ss.

Scalars stay invariant and vectors equivariant because vectors are only ever scaled by
invariants, mixed across channels, summed, or contracted into norms and dot products.
A per-atom output network (Dense, SiLU, Dense on s, or the paper's gated equivariant blocks on
(s, v)) yields per-atom contributions, summed (extensive targets, energies) or averaged
(intensive ones) per structure. Energies are smooth in the positions, so the core's forces
(-dE/dpositions by autograd) are conservative, and every pair term carries the cosine cutoff,
so the energy and its gradient are continuous when an atom crosses the cutoff sphere.
Periodic crystals work unchanged: edge vectors include the representation's periodic shifts.

torch-geometric provides the cosine cutoff (``visnet.CosineCutoff``), the MLPs and the
scatter-sum aggregation; the sinc basis is the paper's (fixed frequencies; DimeNet's
``BesselBasisLayer`` learns them and uses a polynomial envelope instead).

Cheaper without changing the function: the cutoff is folded into the filter matmul (one
product of [rbf fcut, fcut] with [A b], each block's filters contiguous), and the first
message skips the gated neighbour-vector term, which is zero while every vector is.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch_geometric.nn import MLP
from torch_geometric.nn.models.visnet import CosineCutoff
from torch_geometric.utils import scatter

from molplat.models import AtomisticModel, Heads, ModelOutput
from molplat.representations.adjacency_list import edge_vectors

#: keeps ||V v|| differentiable (twice, for force training) when a vector is zero, as every
#: vector is before the first message
NORM_EPSILON = 1e-8
READOUTS = ("sum", "mean", "auto")
OUTPUT_HEADS = ("mlp", "gated")


def _mlp(channels: list[int]) -> MLP:
    """Dense layers with SiLU between them, nothing after the last (no normalisation: a
    batch norm would make one structure's energy depend on the others in its batch)."""
    return MLP(channels, act="silu", norm=None, plain_last=True)


class SincRadialBasis(nn.Module):
    """sin(n pi r / rc) / r for n = 1..K: the paper's radial basis, fixed frequencies."""

    def __init__(self, num_radial: int, cutoff: float) -> None:
        super().__init__()
        frequencies = torch.arange(1, num_radial + 1, dtype=torch.float32) * (math.pi / cutoff)
        # Not persistent: it follows from the settings, and old state dicts need not carry it.
        self.register_buffer("frequencies", frequencies, persistent=False)

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        d = distances.unsqueeze(-1)
        return torch.sin(d * self.frequencies) / d


class MessageBlock(nn.Module):
    """Equivariant message from every neighbour j to its centre i (paper Fig. 2b)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.phi = _mlp([channels, channels, 3 * channels])

    def forward(self, s: torch.Tensor, v: torch.Tensor | None, filters: torch.Tensor, direction: torch.Tensor,
                centres: torch.Tensor, neighbours: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``v`` None stands for all-zero vectors (before the first block): the gated
        neighbour-vector term is then zero and is skipped."""
        x = self.phi(s).index_select(0, neighbours) * filters  # [E, 3F]
        ds, gate, radial = torch.split(x, self.channels, dim=-1)
        dv = direction.unsqueeze(-1) * radial.unsqueeze(1)  # [E, 3, F]
        if v is not None:
            dv = torch.addcmul(dv, v.index_select(0, neighbours), gate.unsqueeze(1))
        n = s.shape[0]
        s = s + scatter(ds, centres, dim=0, dim_size=n, reduce="sum")
        dv = scatter(dv, centres, dim=0, dim_size=n, reduce="sum")
        return s, dv if v is None else v + dv


class UpdateBlock(nn.Module):
    """Atom-wise mixing of scalars and vectors (paper Fig. 2c)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        # U and V in one matrix: both mix the F channels of each spatial component.
        self.uv = nn.Linear(channels, 2 * channels, bias=False)
        self.mlp = _mlp([2 * channels, channels, 3 * channels])

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        uv, vv = torch.split(self.uv(v), self.channels, dim=-1)  # [N, 3, F] each
        norm = torch.sqrt((vv * vv).sum(1) + NORM_EPSILON)
        a_vv, a_sv, a_ss = torch.split(self.mlp(torch.cat([s, norm], dim=-1)), self.channels, dim=-1)
        return s + a_sv * (uv * vv).sum(1) + a_ss, v + a_vv.unsqueeze(1) * uv


class GatedEquivariantBlock(nn.Module):
    """Scalars and vectors in, scalars (and gated vectors) out (paper Fig. 3).

    The vectors enter the scalars through the norms of a channel mix V v; the MLP returns new
    scalars and, with ``vector_out``, one gate per output channel that scales U v. The last
    block of a scalar head has no vector output (nothing would read it).
    """

    def __init__(self, in_channels: int, out_channels: int, vector_out: bool) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.vector_out = vector_out
        self.v_norm = nn.Linear(in_channels, in_channels, bias=False)
        self.u = nn.Linear(in_channels, out_channels, bias=False) if vector_out else None
        self.mlp = _mlp([2 * in_channels, in_channels, out_channels * (2 if vector_out else 1)])

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        vv = self.v_norm(v)
        x = self.mlp(torch.cat([s, torch.sqrt((vv * vv).sum(1) + NORM_EPSILON)], dim=-1))
        if self.u is None:
            return x, None
        scalars, gate = torch.split(x, self.out_channels, dim=-1)
        return nn.functional.silu(scalars), gate.unsqueeze(1) * self.u(v)


class OutputHead(nn.Module):
    """Per-atom outputs [N, n] from the final (s, v): a scalar MLP or two gated blocks."""

    def __init__(self, kind: str, channels: int, outputs: int) -> None:
        super().__init__()
        hidden = max(channels // 2, 1)
        self.kind = kind
        if kind == "mlp":
            self.mlp = _mlp([channels, hidden, outputs])
        else:
            self.blocks = nn.ModuleList([GatedEquivariantBlock(channels, hidden, vector_out=True),
                                         GatedEquivariantBlock(hidden, outputs, vector_out=False)])

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp":
            return self.mlp(s)
        for block in self.blocks:
            s, v = block(s, v)
        return s


class PaiNN(AtomisticModel):
    """PaiNN on the ``adjacency_list`` representation (molecules and periodic crystals).

    ``features(batch)`` returns the final scalar and vector features (s [N, F], v [N, 3, F]);
    ``forward`` adds the per-atom heads and the readout. Every shape follows from the batch's
    tensor shapes (no ``unique``, no counts read from the data).
    """

    accepts = ("adjacency_list",)
    embedding_layer = "embedding"

    def __init__(self, n_outputs: int = 1, hidden_channels: int = 128, num_interactions: int = 3,
                 num_radial: int = 20, cutoff: float = 5.0, readout: str = "sum", output_head: str = "mlp",
                 shared_filters: bool = False, max_atomic_number: int = 100, n_atom_outputs: int = 0,
                 heads: Heads | None = None) -> None:
        super().__init__(n_outputs)
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if output_head not in OUTPUT_HEADS:
            raise ValueError(f"output_head must be one of {OUTPUT_HEADS}, got {output_head!r}")
        for name, value in (("hidden_channels", hidden_channels), ("num_interactions", num_interactions),
                            ("num_radial", num_radial), ("max_atomic_number", max_atomic_number)):
            if int(value) < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not float(cutoff) > 0:
            raise ValueError(f"cutoff must be positive (Å), got {cutoff}")
        self.hidden_channels = hidden_channels
        self.num_interactions = num_interactions
        self.cutoff = float(cutoff)
        self.readout = readout
        self.max_atomic_number = max_atomic_number
        self.n_atom_outputs = n_atom_outputs
        self.shared_filters = bool(shared_filters)

        # "auto": sum the heads that are totals (energies, ZPVE), average the others (HOMO).
        # Without heads every head counts as intensive.
        graph_heads = heads.graph if heads is not None else ()
        extensive = [bool(h.extensive) for h in graph_heads] if len(graph_heads) == n_outputs else [False] * n_outputs
        if readout == "sum":
            extensive = [True] * n_outputs
        elif readout == "mean":
            extensive = [False] * n_outputs
        self.register_buffer("averaged", torch.tensor([not e for e in extensive], dtype=torch.bool), persistent=False)

        self.embedding = nn.Embedding(max_atomic_number + 1, hidden_channels)
        self.rbf = SincRadialBasis(num_radial, self.cutoff)
        self.envelope = CosineCutoff(self.cutoff)
        # One linear map gives the filters of every block at once (or one set, shared).
        filter_sets = 1 if self.shared_filters else num_interactions
        self.filters = nn.Linear(num_radial, 3 * hidden_channels * filter_sets)
        self.messages = nn.ModuleList(MessageBlock(hidden_channels) for _ in range(num_interactions))
        self.updates = nn.ModuleList(UpdateBlock(hidden_channels) for _ in range(num_interactions))
        self.output = OutputHead(output_head, hidden_channels, n_outputs) if n_outputs else None
        # Per-atom targets (charges) get their own head on the same final features.
        self.atom_output = OutputHead(output_head, hidden_channels, n_atom_outputs) if n_atom_outputs else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear) or (hasattr(module, "weight") and hasattr(module, "in_channels")):
                nn.init.xavier_uniform_(module.weight)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.embedding.weight, std=1.0)

    def features(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Final scalar features s [N, F] (invariant) and vector features v [N, 3, F]
        (equivariant: rotating the structure by R turns every channel v[:, :, f] into v R^T)."""
        centres, neighbours = batch["edge_index"]
        vectors = edge_vectors(batch)
        # sqrt has an infinite gradient at 0; no edge has zero length, but clamp for safety.
        distances = torch.sqrt((vectors * vectors).sum(-1).clamp_min(1e-12))
        direction = vectors / distances.unsqueeze(-1)
        # W(r) = (rbf(r) A^T + b) fcut(r), as one product of [rbf fcut, fcut] with [A b]: no
        # elementwise pass over the filters, and each block's filters [E, 3F] contiguous.
        envelope = self.envelope(distances).unsqueeze(-1)
        scaled = torch.cat([self.rbf(distances) * envelope, envelope], dim=-1)  # [E, K + 1]
        weights = torch.cat([self.filters.weight, self.filters.bias.unsqueeze(-1)], dim=-1)  # [B 3F, K + 1]
        filters = torch.matmul(scaled, weights.view(-1, 3 * self.hidden_channels, weights.shape[-1]).transpose(1, 2))
        per_block = filters.unbind(0) if not self.shared_filters else [filters[0]] * self.num_interactions

        s = self.embedding(batch["numbers"])
        v = None  # zero vectors, materialised by the first message
        for message, update, w in zip(self.messages, self.updates, per_block):
            s, v = message(s, v, w, direction, centres, neighbours)
            s, v = update(s, v)
        return s, v

    def forward(self, batch) -> ModelOutput:
        graph = batch["batch"]
        num_graphs = int(batch["num_graphs"])
        s, v = self.features(batch)
        counts = batch["natoms"].to(s.dtype).clamp_min(1).unsqueeze(-1)

        if self.output is not None:
            per_atom = self.output(s, v)
            y = scatter(per_atom, graph, dim=0, dim_size=num_graphs, reduce="sum")
            y = torch.where(self.averaged, y / counts.to(y.dtype), y)
        else:
            y = s.new_zeros(num_graphs, 0)
        pooled = scatter(s, graph, dim=0, dim_size=num_graphs, reduce="sum")
        if self.readout != "sum":
            pooled = pooled / counts
        out = ModelOutput(y=y, atom_embedding=s, graph_embedding=pooled)
        if self.atom_output is not None:
            out["atom_y"] = self.atom_output(s, v)
        return out
