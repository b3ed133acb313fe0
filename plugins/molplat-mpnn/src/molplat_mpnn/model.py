"""MPNN (Gilmer et al. 2017) and MPNN with multi-head attention, on a radius graph.

Gilmer, Schoenholz, Riley, Vinyals, Dahl, "Neural Message Passing for Quantum Chemistry",
ICML 2017, arXiv:1704.01212.

Atoms start from an embedding of their element, h_v^0. For T steps every atom v collects
messages m_v = sum_w M(h_w, e_vw) from its neighbours w and updates its state with a GRU,
h_v <- GRU(h_v, m_v); one message function and one GRU serve every step (weights tied across
steps). A set2set readout (an LSTM that attends over the atoms of each structure for a few
processing steps) turns the final states into one vector per structure, and an MLP maps it to
the targets. Per-atom targets (partial charges) are read from the final atom states by their
own MLP, built only when the run asks for them (``n_atom_outputs`` > 0).

* ``MPNN``: the paper's edge network. The edge features e_vw (Gaussians of the distance) go
  through an MLP to a d x d matrix A(e_vw), and M = A(e_vw) h_w (PyG's ``NNConv``). The matrices
  depend on the geometry only, so they are computed once per forward and shared by the T steps.
* ``MPNNTransformer``: the message function is multi-head attention over the neighbours (PyG's
  ``TransformerConv`` with ``edge_dim``): each head weighs neighbour w by softmax_w(q_v . (k_w +
  W_e e_vw)) and sends it v_w + W_e e_vw. Attention is the message function of every step,
  rather than a separate attention layer after each step, because it then replaces the edge
  network (no d x d matrix per edge: cheaper for wide states), stays on the radius graph
  (linear in the edges, per structure, the same on crystals), and keeps one module per step.

Geometry and smoothness. Distances come from ``edge_vectors(batch)`` (positions plus periodic
shifts), so crystals work and forces are ``-dE/dpositions`` by autograd; every function of the
positions is smooth (SiLU, Gaussians, GRU, LSTM, softmax). Each message is multiplied by the
cosine envelope 0.5 (cos(pi d / rc) + 1), so it fades to zero with its derivative at the
cutoff: the edge network's matrices are scaled by it, and in the attention model each
neighbour's softmax weight is (envelope x exp(score)), normalised over the neighbours and the
atom itself (a self-loop of weight 1, so the normaliser never becomes empty). A plain softmax
would jump when a neighbour crosses the cutoff.

Readout. set2set is an attention-weighted average of the atoms: intensive, the paper's
readout (``readout="mean"``). For extensive targets (total energies) ``readout="sum"`` adds a
sum of per-atom contributions MLP(h_v), which grows with the structure.

Edge direction. molplat's ``edge_index`` row 0 is the receiving centre atom and row 1 the
sending neighbour; PyG's default reads row 0 as the sender. The batch is wrapped with
``to_pyg(batch, flow="target_to_source")`` (no copy) and every PyG layer is built with
``flow="target_to_source"``, so messages go from row 1 to row 0; a test checks this on a
neighbour list truncated by ``max_neighbors``, where some edges run one way only.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch_geometric.nn import MLP, NNConv, Set2Set, TransformerConv
from torch_geometric.nn.models.schnet import GaussianSmearing
from torch_geometric.nn.models.visnet import CosineCutoff
from torch_geometric.utils import scatter, softmax

from molplat.models import AtomisticModel, ModelOutput
from molplat.representations import edge_vectors, to_pyg

if TYPE_CHECKING:  # pragma: no cover
    from molplat.data import TrainingStatistics

#: molplat's edge_index is (receiver, sender); PyG layers read it so with this flow
FLOW = "target_to_source"


class EdgeNetworkConv(NNConv):
    """``NNConv`` whose edge matrices come precomputed as ``edge_attr`` [E, d, d].

    The edge network (``self.nn``) depends on the geometry only and its weights are tied across
    the T steps, so ``MPNN`` runs it once per forward instead of once per step.
    """

    def message(self, x_j: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        return torch.bmm(x_j.unsqueeze(1), edge_attr).squeeze(1)


class EnvelopeTransformerConv(TransformerConv):
    """``TransformerConv`` whose attention weights fade smoothly to zero at the cutoff.

    A neighbour's weight is envelope x exp(score), normalised over the receiver's edges:
    softmax(score + log envelope). Edges with envelope 1 (self-loops) are always present, so the
    normaliser never empties and the output is continuous when the last neighbour leaves.
    """

    # PyG generates ``propagate`` from this signature (the parent's comment lacks log_envelope)
    propagate_type = {"query": torch.Tensor, "key": torch.Tensor, "value": torch.Tensor, "edge_attr": torch.Tensor,
                      "log_envelope": torch.Tensor}

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,  # type: ignore[override]
                envelope: torch.Tensor) -> torch.Tensor:
        heads, channels = self.heads, self.out_channels
        query = self.lin_query(x).view(-1, heads, channels)
        key = self.lin_key(x).view(-1, heads, channels)
        value = self.lin_value(x).view(-1, heads, channels)
        # log(envelope) is -inf beyond the model's cutoff; floored at the smallest normal number of
        # the dtype, such an edge keeps a weight of ~1e-38 relative to its score (nothing).
        log_envelope = torch.log(envelope.clamp_min(torch.finfo(envelope.dtype).tiny))
        out = self.propagate(edge_index, query=query, key=key, value=value, edge_attr=edge_attr,
                             log_envelope=log_envelope)
        out = out.view(-1, heads * channels) if self.concat else out.mean(dim=1)
        if self.root_weight:
            out = out + self.lin_skip(x)
        return out

    def message(self, query_i: torch.Tensor, key_j: torch.Tensor, value_j: torch.Tensor,  # type: ignore[override]
                edge_attr: torch.Tensor, log_envelope: torch.Tensor, index: torch.Tensor,
                ptr: torch.Tensor | None, size_i: int | None) -> torch.Tensor:
        edge = self.lin_edge(edge_attr).view(-1, self.heads, self.out_channels)
        key_j = key_j + edge
        score = (query_i * key_j).sum(dim=-1) / math.sqrt(self.out_channels) + log_envelope.unsqueeze(-1)
        alpha = softmax(score, index, ptr, size_i)
        return (value_j + edge) * alpha.unsqueeze(-1)


class _MessagePassingModel(AtomisticModel):
    """What both models share: embedding, radial features, GRU, set2set readout and heads.

    Subclasses build the message function (``self.conv``) and run the T steps in ``_steps``.
    """

    accepts = ("adjacency_list",)
    embedding_layer = "embedding"

    def __init__(self, n_outputs: int, hidden_channels: int, num_steps: int, num_gaussians: int, cutoff: float,
                 set2set_steps: int, readout: str, max_atomic_number: int, n_atom_outputs: int) -> None:
        super().__init__(n_outputs)
        if readout not in ("mean", "sum"):
            raise ValueError(f"readout must be 'mean' (set2set, intensive) or 'sum' (set2set plus a sum of per-atom "
                             f"contributions, extensive), got {readout!r}")
        if num_gaussians < 2:
            raise ValueError(f"num_gaussians must be at least 2 (their spacing sets their width), got {num_gaussians}")
        for name, value in (("hidden_channels", hidden_channels), ("num_steps", num_steps),
                            ("set2set_steps", set2set_steps), ("max_atomic_number", max_atomic_number)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not cutoff > 0:
            raise ValueError(f"cutoff must be positive (Å), got {cutoff}")
        self.hidden_channels = hidden_channels
        self.num_steps = num_steps
        self.cutoff = float(cutoff)
        self.readout = readout
        self.max_atomic_number = max_atomic_number
        self.n_atom_outputs = n_atom_outputs

        self.embedding = nn.Embedding(max_atomic_number + 1, hidden_channels)
        self.rbf = GaussianSmearing(0.0, self.cutoff, num_gaussians)
        self.envelope = CosineCutoff(self.cutoff)
        # h_v <- GRU(h_v, m_v): one cell for every step (weights tied across steps, as in the paper)
        self.gru = nn.GRUCell(hidden_channels, hidden_channels)
        self.set2set = Set2Set(hidden_channels, processing_steps=set2set_steps)
        self.output = _mlp(2 * hidden_channels, hidden_channels, n_outputs)
        # readout "sum": an extensive term, one contribution per atom summed over the structure
        self.contributions = _mlp(hidden_channels, max(hidden_channels // 2, 1), n_outputs) \
            if readout == "sum" else None
        # Per-atom targets read the final states through their own head; nothing is built without them,
        # so state dicts of runs without per-atom targets keep loading.
        self.atom_output = _mlp(hidden_channels, max(hidden_channels // 2, 1), n_atom_outputs) \
            if n_atom_outputs else None

    def _steps(self, h: torch.Tensor, edge_index: torch.Tensor, rbf: torch.Tensor,
               envelope: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, batch) -> ModelOutput:
        graph = to_pyg(batch, flow=FLOW)
        num_graphs = int(batch["num_graphs"])
        vectors = edge_vectors(batch)
        # sqrt has an infinite gradient at 0; no edge has zero length, but clamp for safety.
        distances = torch.sqrt((vectors * vectors).sum(-1).clamp_min(1e-12))
        # Gaussians far from their centre underflow to float32 denormals (slow on x86): floor them at
        # the smallest normal number, which changes nothing at the dtype's precision.
        rbf = self.rbf(distances).clamp_min(torch.finfo(distances.dtype).tiny)
        envelope = self.envelope(distances).to(distances.dtype)

        h = self.embedding(graph.z)
        h = self._steps(h, graph.edge_index, rbf, envelope)

        pooled = self.set2set(h, index=graph.batch, dim_size=num_graphs)
        y = self.output(pooled)
        if self.contributions is not None:
            y = y + scatter(self.contributions(h), graph.batch, dim=0, dim_size=num_graphs, reduce="sum")
        out = ModelOutput(y=y, atom_embedding=h, graph_embedding=pooled)
        if self.atom_output is not None:
            out["atom_y"] = self.atom_output(h)
        return out


class MPNN(_MessagePassingModel):
    """Gilmer et al.'s MPNN with the edge network message function (``NNConv``), a GRU update and
    a set2set readout, on the ``adjacency_list`` representation (molecules and periodic crystals).

    Messages are summed over neighbours and divided by the training set's average neighbour count
    (``statistics.avg_num_neighbors``, stored as a buffer), so their size does not grow with the
    cutoff; a sum, not a mean, keeps the energy smooth when a neighbour crosses the cutoff.
    """

    def __init__(self, n_outputs: int = 1, hidden_channels: int = 64, num_steps: int = 3, num_gaussians: int = 50,
                 cutoff: float = 5.0, set2set_steps: int = 3, readout: str = "mean", max_atomic_number: int = 100,
                 edge_hidden: int = 128, n_atom_outputs: int = 0,
                 statistics: "TrainingStatistics | None" = None) -> None:
        super().__init__(n_outputs, hidden_channels, num_steps, num_gaussians, cutoff, set2set_steps, readout,
                         max_atomic_number, n_atom_outputs)
        if edge_hidden < 1:
            raise ValueError(f"edge_hidden must be at least 1, got {edge_hidden}")
        # A(e): Gaussians -> hidden -> d x d, smooth activations (forces differentiate through it)
        edge_network = MLP([num_gaussians, edge_hidden, hidden_channels * hidden_channels], act="silu", norm=None)
        # M(h_w, e_vw) = A(e_vw) h_w summed over w; no root term (the GRU carries h_v itself)
        self.conv = EdgeNetworkConv(hidden_channels, hidden_channels, edge_network, aggr="add", root_weight=False,
                                    flow=FLOW)
        average = getattr(statistics, "avg_num_neighbors", None) if statistics is not None else None
        self.register_buffer("neighbor_scale", torch.tensor(1.0 / average if average else 1.0))

    def _steps(self, h: torch.Tensor, edge_index: torch.Tensor, rbf: torch.Tensor,
               envelope: torch.Tensor) -> torch.Tensor:
        d = self.hidden_channels
        # Built once, used by every step: A(e_vw) x envelope(d_vw) / <neighbours>, zero at the cutoff.
        scale = (envelope * self.neighbor_scale.to(envelope.dtype)).view(-1, 1, 1)
        matrices = self.conv.nn(rbf).view(-1, d, d) * scale
        for _ in range(self.num_steps):
            h = self.gru(self.conv(h, edge_index, matrices), h)
        return h


class MPNNTransformer(_MessagePassingModel):
    """MPNN whose message function is multi-head attention over the neighbours (``TransformerConv``
    with the Gaussians as ``edge_dim`` features), with a GRU update and a set2set readout.

    Why attention as the message function (not after each step): see the module docstring. Each
    atom also attends to itself (a self-loop with zero edge features), so attention always has
    somewhere to go, and each neighbour's weight carries the cosine envelope.
    """

    def __init__(self, n_outputs: int = 1, hidden_channels: int = 64, num_steps: int = 3, num_gaussians: int = 50,
                 cutoff: float = 5.0, set2set_steps: int = 3, readout: str = "mean", max_atomic_number: int = 100,
                 attention_heads: int = 4, n_atom_outputs: int = 0) -> None:
        super().__init__(n_outputs, hidden_channels, num_steps, num_gaussians, cutoff, set2set_steps, readout,
                         max_atomic_number, n_atom_outputs)
        if attention_heads < 1 or hidden_channels % attention_heads:
            raise ValueError(f"hidden_channels ({hidden_channels}) must be a multiple of attention_heads "
                             f"({attention_heads}): the heads split the atom state into {attention_heads} parts")
        self.attention_heads = attention_heads
        self.conv = EnvelopeTransformerConv(hidden_channels, hidden_channels // attention_heads,
                                            heads=attention_heads, concat=True,
                                            edge_dim=num_gaussians, flow=FLOW)

    def _steps(self, h: torch.Tensor, edge_index: torch.Tensor, rbf: torch.Tensor,
               envelope: torch.Tensor) -> torch.Tensor:
        atoms = torch.arange(h.shape[0], device=h.device)
        edge_index = torch.cat([edge_index, torch.stack([atoms, atoms])], dim=1)
        rbf = torch.cat([rbf, rbf.new_zeros(h.shape[0], rbf.shape[1])])
        envelope = torch.cat([envelope, envelope.new_ones(h.shape[0])])
        for _ in range(self.num_steps):
            h = self.gru(self.conv(h, edge_index, rbf, envelope), h)
        return h


def _mlp(inputs: int, hidden: int, outputs: int) -> MLP:
    """Dense -> SiLU -> Dense (SiLU: smooth, so forces by autograd are continuous)."""
    return MLP([inputs, hidden, outputs], act="silu", norm=None)
