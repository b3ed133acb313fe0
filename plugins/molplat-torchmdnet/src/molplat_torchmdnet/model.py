"""TorchMD-NET's equivariant transformer (ET) on a radius graph.

P. Thölke, G. De Fabritiis, "TorchMD-NET: Equivariant Transformers for Neural Network based
Molecular Potentials", ICLR 2022, arXiv:2202.02541. Written here from the paper.

Every atom carries scalar features ``x`` [N, F] and vector features ``vec`` [N, 3, F] (F
channels of 3-vectors that rotate with the structure; zero at the start).

- Embedding: ``x_i = W [E(Z_i), sum_j E'(Z_j) * (W_n rbf(d_ij)) * phi(d_ij)]``, the element's
  own embedding next to a distance-weighted sum of its neighbours' (neighbour embedding).
- Distances are expanded on exponential-normal radial basis functions
  ``exp(-beta (exp(-alpha d) - mu_k)^2) * phi(d)``, with ``phi`` the cosine cutoff
  ``0.5 (cos(pi d / rc) + 1)`` (PyG's ``ExpNormalSmearing`` and ``CosineCutoff``).
- Each attention layer (pre-LayerNorm on x) forms queries, keys and values from x and
  distance filters ``D_K, D_V = SiLU(W rbf)``; the attention weight of neighbour j is
  ``A_ij = SiLU(sum_heads(Q_i * K_j * D_K_ij)) * phi(d_ij)`` (SiLU instead of a softmax, so an
  atom's weights need not sum to one and fade out smoothly at the cutoff). The values
  ``V_j * D_V_ij`` split into s1 (the attention-weighted scalar message) and s2, s3 (gates of
  the vector message ``s2 * vec_j + s3 * r_ij / |r_ij|``). The summed scalar message y_i
  gives ``o1, o2, o3 = split(O y_i)``, and with ``u1, u2, u3 = split(U vec_i)``:
  ``dx_i = (u1 . u2) * o2 + o3`` and ``dvec_i = sum_j w_ij + o1 * u3``; both added as residuals.
- A final LayerNorm on x, then an output head per atom: an MLP on x (``scalar``, the
  paper's energy head) or two gated equivariant blocks reading x and |vec| (``gated``);
  per-atom values are summed (energies) or averaged per structure.

Departures, none of which changes what the network can represent:
- The vector message is also multiplied by ``phi(d_ij)``. The filters see a cutoff-weighted
  basis but have a bias, so without it a neighbour's vector message would jump from
  ``SiLU(b) r_ij/|r_ij|`` to zero as it leaves the cutoff sphere, and so would the energy.
- Projections whose result can never reach the output are not built: the first layer has
  no vector input (vec is zero there), and with the scalar head the last layer computes no
  vector update. So every parameter learns and no per-edge vector work is wasted.
- Norms of vectors use ``sqrt(|v|^2 + eps)``, so a zero vector (an isolated atom) has a
  finite gradient.

Every shape follows from the batch's tensor shapes (index_add sized by the number of atoms and
structures), so fixed-size padded batches work as they are.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.nn.models.visnet import CosineCutoff, ExpNormalSmearing

from molplat.models import AtomisticModel, ModelOutput
from molplat.representations.adjacency_list import edge_vectors

#: added under the square root of vector norms: finite gradients at zero vectors
_NORM_EPS = 1e-8


class EdgeGeometry(NamedTuple):
    """What the layers need of each directed edge i <- j (centre i receives from neighbour j)."""

    centers: torch.Tensor  # [E]
    neighbors: torch.Tensor  # [E]
    rbf: torch.Tensor  # [E, num_rbf], already times the cutoff envelope
    envelope: torch.Tensor  # [E, 1], phi(d_ij)
    direction: torch.Tensor  # [E, 3], r_ij / |r_ij|


class ExpNormalBasis(ExpNormalSmearing):
    """PyG's exponential-normal basis ``phi(d) exp(-beta (exp(-alpha d) - mu)^2)``, floored.

    With the default widths (beta ~ num_rbf^2) most entries underflow through the float32
    denormal range (1e-38 to 1e-45), where exp and every matmul fed by them run 10-100x slower
    on x86. The exponent is floored at -50: a change of at most e^-50 ~ 2e-22 per entry,
    invisible next to the basis functions that matter, and the filters stay fast.
    """

    def forward(self, dist: torch.Tensor) -> torch.Tensor:
        dist = dist.unsqueeze(-1)
        exponent = -self.betas * (torch.exp(-self.alpha * dist) - self.means) ** 2
        return self.cutoff_fn(dist) * torch.exp(exponent.clamp_min(-50.0))


def vector_norm(vec: torch.Tensor) -> torch.Tensor:
    """|v| over the spatial axis of [N, 3, C] -> [N, C], smooth at zero."""
    return torch.sqrt((vec * vec).sum(1) + _NORM_EPS)


def scatter_sum(messages: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Sum of ``messages`` rows into ``size`` rows; sized from the messages (bf16 autocast may change dtypes)."""
    return messages.new_zeros((size,) + messages.shape[1:]).index_add_(0, index, messages)


class NeighborEmbedding(nn.Module):
    """The paper's embedding: an atom's element embedding combined with its neighbours'."""

    def __init__(self, hidden_channels: int, num_rbf: int, max_atomic_number: int) -> None:
        super().__init__()
        self.neighbor_embedding = nn.Embedding(max_atomic_number + 1, hidden_channels)
        self.distance = nn.Linear(num_rbf, hidden_channels)
        self.combine = nn.Linear(2 * hidden_channels, hidden_channels)

    def forward(self, own: torch.Tensor, numbers: torch.Tensor, edges: EdgeGeometry) -> torch.Tensor:
        # The filter has a bias, so the envelope keeps a leaving neighbour's contribution smooth.
        weights = self.distance(edges.rbf) * edges.envelope
        messages = self.neighbor_embedding(numbers).index_select(0, edges.neighbors) * weights
        summed = scatter_sum(messages, edges.centers, own.shape[0])
        return self.combine(torch.cat([own, summed.to(own.dtype)], dim=-1))


class EquivariantAttention(nn.Module):
    """One ET update layer: multi-head attention with distance filters, updating x and vec.

    ``vector_in``: the layer reads vec (False for the first layer, where vec is zero).
    ``vector_out``: the layer returns a vector update (False for the last layer of a model
    whose output head reads x only). Value, output and vector projections hold only the
    parts the two flags make useful, in the order [scalar, direction, neighbour vector].
    """

    def __init__(self, hidden_channels: int, num_rbf: int, num_heads: int, vector_in: bool,
                 vector_out: bool) -> None:
        super().__init__()
        width = hidden_channels
        self.width, self.num_heads = width, num_heads
        self.vector_in, self.vector_out = vector_in, vector_out
        value_parts = 1 + int(vector_out) + int(vector_in and vector_out)
        self.norm = nn.LayerNorm(width)
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, value_parts * width)
        self.key_filter = nn.Linear(num_rbf, width)
        self.value_filter = nn.Linear(num_rbf, value_parts * width)
        self.out = nn.Linear(width, (1 + int(vector_in) + int(vector_in and vector_out)) * width)
        self.vector_proj = (nn.Linear(width, (2 + int(vector_out)) * width, bias=False) if vector_in else None)

    def forward(self, x: torch.Tensor, vec: torch.Tensor | None,
                edges: EdgeGeometry) -> tuple[torch.Tensor, torch.Tensor | None]:
        n, width, heads = x.shape[0], self.width, self.num_heads
        h = self.norm(x)
        query = self.query(h).index_select(0, edges.centers).view(-1, heads, width // heads)
        key = self.key(h).index_select(0, edges.neighbors).view(-1, heads, width // heads)
        key_filter = F.silu(self.key_filter(edges.rbf)).view(-1, heads, width // heads)
        # A_ij = SiLU(<Q_i, K_j, D_K_ij> per head) * phi(d_ij): [E, heads]
        attention = F.silu((query * key * key_filter).sum(-1)) * edges.envelope
        values = self.value(h).index_select(0, edges.neighbors) * F.silu(self.value_filter(edges.rbf))

        scalar = (values[:, :width].view(-1, heads, width // heads) * attention.unsqueeze(-1)).view(-1, width)
        o = self.out(scatter_sum(scalar, edges.centers, n))
        dx = o[:, :width]
        if self.vector_in:
            u = self.vector_proj(vec)  # [N, 3, k * F]
            dx = dx + (u[..., :width] * u[..., width:2 * width]).sum(1) * o[:, width:2 * width]
        if not self.vector_out:
            return dx, None

        # w_ij = (s3 * r_ij / |r_ij| + s2 * vec_j) * phi(d_ij): the envelope keeps it smooth at the cutoff.
        gates = values[:, width:] * edges.envelope
        messages = edges.direction.unsqueeze(-1) * gates[:, :width].unsqueeze(1)
        if self.vector_in:
            messages = messages + vec.index_select(0, edges.neighbors) * gates[:, width:].unsqueeze(1)
        dvec = scatter_sum(messages, edges.centers, n)
        if self.vector_in:
            dvec = dvec + o[:, 2 * width:].unsqueeze(1) * u[..., 2 * width:]
        return dx, dvec


class ScalarHead(nn.Module):
    """Dense -> SiLU -> Dense on every atom's scalar features."""

    def __init__(self, hidden_channels: int, outputs: int) -> None:
        super().__init__()
        middle = max(hidden_channels // 2, 1)
        self.net = nn.Sequential(nn.Linear(hidden_channels, middle), nn.SiLU(), nn.Linear(middle, outputs))

    def forward(self, x: torch.Tensor, vec: torch.Tensor | None) -> torch.Tensor:
        return self.net(x)


class GatedEquivariantBlock(nn.Module):
    """Mixes scalars with vector norms; the new vectors are gated by scalars (so they stay equivariant).

    ``vector_out=False`` for the last block of a head: only its scalars are used.
    """

    def __init__(self, in_channels: int, out_channels: int, vector_out: bool, activation: bool) -> None:
        super().__init__()
        self.out_channels, self.vector_out, self.activation = out_channels, vector_out, activation
        self.norm_proj = nn.Linear(in_channels, in_channels, bias=False)
        self.vector_proj = nn.Linear(in_channels, out_channels, bias=False) if vector_out else None
        self.update = nn.Sequential(nn.Linear(2 * in_channels, in_channels), nn.SiLU(),
                                    nn.Linear(in_channels, (1 + int(vector_out)) * out_channels))

    def forward(self, x: torch.Tensor, vec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        mixed = self.update(torch.cat([x, vector_norm(self.norm_proj(vec)).to(x.dtype)], dim=-1))
        scalars = mixed[:, :self.out_channels]
        if self.activation:
            scalars = F.silu(scalars)
        if not self.vector_out:
            return scalars, None
        return scalars, mixed[:, self.out_channels:].unsqueeze(1) * self.vector_proj(vec)


class GatedHead(nn.Module):
    """Two gated equivariant blocks, F -> F/2 -> outputs; the outputs are the last block's scalars."""

    def __init__(self, hidden_channels: int, outputs: int) -> None:
        super().__init__()
        middle = max(hidden_channels // 2, 1)
        self.first = GatedEquivariantBlock(hidden_channels, middle, vector_out=True, activation=True)
        self.last = GatedEquivariantBlock(middle, outputs, vector_out=False, activation=False)

    def forward(self, x: torch.Tensor, vec: torch.Tensor | None) -> torch.Tensor:
        x, vec = self.first(x, vec)
        return self.last(x, vec)[0]


_HEADS = {"scalar": ScalarHead, "gated": GatedHead}


class EquivariantTransformer(AtomisticModel):
    """TorchMD-NET's equivariant transformer on the ``adjacency_list`` representation.

    Molecules and periodic crystals: edge vectors are ``pos[j] - pos[i] + edge_shift``
    (``molplat.representations.edge_vectors``), so periodic images count and forces come out
    of autograd. :meth:`features` returns the scalar and vector features (x, vec).
    """

    accepts = ("adjacency_list",)
    embedding_layer = "embedding"

    def __init__(self, n_outputs: int = 1, hidden_channels: int = 128, num_layers: int = 6, num_heads: int = 8,
                 num_rbf: int = 32, trainable_rbf: bool = False, cutoff: float = 5.0, readout: str = "sum",
                 output_head: str = "scalar", max_atomic_number: int = 100, n_atom_outputs: int = 0) -> None:
        super().__init__(n_outputs)
        if readout not in ("sum", "mean"):
            raise ValueError(f"readout must be 'sum' or 'mean', got {readout!r}")
        if output_head not in _HEADS:
            raise ValueError(f"output_head must be one of {sorted(_HEADS)}, got {output_head!r}")
        for name, value in (("hidden_channels", hidden_channels), ("num_layers", num_layers),
                            ("num_heads", num_heads), ("num_rbf", num_rbf), ("max_atomic_number", max_atomic_number)):
            if int(value) < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if hidden_channels % num_heads:
            raise ValueError(f"hidden_channels ({hidden_channels}) must be a multiple of num_heads ({num_heads}): "
                             "each head attends over hidden_channels / num_heads channels")
        if not cutoff > 0:
            raise ValueError(f"cutoff must be positive, got {cutoff}")
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.cutoff = float(cutoff)
        self.readout = readout
        self.output_head = output_head
        self.max_atomic_number = max_atomic_number
        self.n_atom_outputs = n_atom_outputs

        gated = output_head == "gated"
        self.embedding = nn.Embedding(max_atomic_number + 1, hidden_channels)
        self.rbf = ExpNormalBasis(self.cutoff, num_rbf, trainable=trainable_rbf)
        self.envelope = CosineCutoff(self.cutoff)
        self.neighbor_embedding = NeighborEmbedding(hidden_channels, num_rbf, max_atomic_number)
        self.layers = nn.ModuleList(
            EquivariantAttention(hidden_channels, num_rbf, num_heads, vector_in=k > 0,
                                 vector_out=gated or k < num_layers - 1)
            for k in range(num_layers))
        self.out_norm = nn.LayerNorm(hidden_channels)
        self.output = _HEADS[output_head](hidden_channels, n_outputs)
        # Per-atom targets get their own head on the same final features (a charge is not a share of a total).
        self.atom_output = _HEADS[output_head](hidden_channels, n_atom_outputs) if n_atom_outputs else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        self.rbf.reset_parameters()

    def edges(self, batch) -> EdgeGeometry:
        vectors = edge_vectors(batch)
        # No edge has zero length (padding edges of fixed-size batches might): clamp for a finite gradient.
        distances = torch.sqrt((vectors * vectors).sum(-1).clamp_min(1e-12))
        centers, neighbors = batch["edge_index"]
        return EdgeGeometry(centers, neighbors, self.rbf(distances), self.envelope(distances).unsqueeze(-1),
                            vectors / distances.unsqueeze(-1))

    def features(self, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Final scalar features x [N, F] (after the output LayerNorm) and vector features vec
        [N, 3, F] after the last layer that updates them (all layers with the gated head, all but
        the last with the scalar head; None for a one-layer model with the scalar head).
        ``vec`` rotates with the structure: vec(R pos) = R vec(pos), channel by channel."""
        numbers = batch["numbers"]
        edges = self.edges(batch)
        x = self.neighbor_embedding(self.embedding(numbers), numbers, edges)
        vec = None
        for layer in self.layers:
            dx, dvec = layer(x, vec, edges)
            x = x + dx
            if dvec is not None:
                vec = dvec if vec is None else vec + dvec
        return self.out_norm(x), vec

    def forward(self, batch) -> ModelOutput:
        graph = batch["batch"]
        num_graphs = int(batch["num_graphs"])
        x, vec = self.features(batch)
        per_atom = self.output(x, vec)
        y = scatter_sum(per_atom, graph, num_graphs)
        pooled = scatter_sum(x, graph, num_graphs)
        if self.readout == "mean":
            counts = batch["natoms"].to(x.dtype).clamp_min(1).unsqueeze(-1)
            y = y / counts
            pooled = pooled / counts
        out = ModelOutput(y=y, atom_embedding=x, graph_embedding=pooled)
        if self.atom_output is not None:
            out["atom_y"] = self.atom_output(x, vec)
        return out
