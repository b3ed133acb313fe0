"""PNA with HydraGNN-style multi-task heads.

Corso, Cavalleri, Beaini, Liò, Veličković, "Principal Neighbourhood Aggregation for Graph
Nets", NeurIPS 2020 (arXiv:2004.05718); heads after Lupo Pasini, Zhang, Reeve, Choi,
HydraGNN (arXiv:2202.01954).

Atoms start from an embedding of their element. Each PNA layer (PyG's ``PNAConv``) builds a
message from the centre's features, the neighbour's and the edge's (Gaussians of the distance
times a cosine envelope), aggregates the messages of every atom with several aggregators
(mean, min, max, standard deviation), and multiplies each aggregate by degree scalers
(identity, amplification log(d + 1) / delta, attenuation delta / log(d + 1), optionally linear
d / mean degree), where delta is the mean of log(d + 1) over the training set's in-degree
histogram, handed over by the core in ``statistics.degree_histogram``. A dense update network
mixes the result with the atom's features; layers are residual, with SiLU in between.
The first layer of the message network is evaluated per atom where it can (same function,
same parameters as PyG's; see ``SmoothPNAConv.project``).

Heads, as in HydraGNN: every target shares the PNA layers. Graph targets pool the atoms
(global mean pool), pass the result through shared dense layers and then each through its
own MLP; per-atom targets each get their own MLP on the final atom features. With
``readout = "sum"`` the shared layers and graph MLPs run per atom and the results are summed,
so a total energy is a sum of atomic terms (extensive). The core weights the heads' losses.

Smoothness: PNA counts neighbours, so a neighbour crossing the cutoff sphere changes the
mean, min, max and the degree scalers by a jump, however smooth the edge features are; and
a hard max has a kink wherever two messages tie, as those of symmetric neighbours do. With
``smooth`` (the default) every message is weighted by w, the square of the cosine envelope,
which falls to zero at the cutoff to fourth order: the degree is the sum of the weights; the mean is
sum(w m) / max(d, 1) (the max taken smoothly below 1); the standard deviation follows from
the same weighted moments; max and min are softmax-weighted means with sharpness beta over
the messages and one zero message (an absent neighbour). With every weight 1 and degrees
of at least one, mean, std and the scalers are PyG's exactly, and max and min tend to PyG's
(clipped at zero) as beta grows. The energy is then a smooth function of the positions,
continuous at the cutoff, and forces are well defined at symmetric geometries.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch_geometric.nn import MLP, PNAConv, global_mean_pool
from torch_geometric.nn.models.schnet import GaussianSmearing
from torch_geometric.nn.models.visnet import CosineCutoff
from torch_geometric.utils import scatter

from molplat.data import TrainingStatistics
from molplat.models import AtomisticModel, Heads, ModelOutput
from molplat.representations import edge_vectors, to_pyg

#: The in-degree histogram used when no training statistics are given (a model built
#: standalone, outside a run): every atom with 16 neighbours, the median of QM9's dev set
#: within 5 Å (mean 15.6). A run always passes the histogram of its own training split.
DEFAULT_DEGREE = 16
DEFAULT_DEGREE_HISTOGRAM: tuple[int, ...] = (0,) * DEFAULT_DEGREE + (1,)

AGGREGATORS = ("mean", "min", "max", "std", "var", "sum")
SCALERS = ("identity", "amplification", "attenuation", "linear", "inverse_linear")
#: variance floor of the standard deviation (PyG's): keeps its gradient finite at zero spread
STD_EPS = 1e-5


def degree_histogram(statistics: TrainingStatistics | None) -> tuple[list[int], bool]:
    """The training split's in-degree histogram, or the default one; and whether it is the default.

    A histogram without any edge (every atom isolated) says nothing about degrees and would
    make delta zero, so it falls back to the default too.
    """
    histogram = None if statistics is None else statistics.degree_histogram
    if histogram and sum(histogram) > 0 and sum(histogram[1:]) > 0:
        return [int(v) for v in histogram], False
    return list(DEFAULT_DEGREE_HISTOGRAM), True


def soft_floor_one(degree: Tensor) -> Tensor:
    """max(d, 1), rounded below 1 by (1 + d^2) / 2: equal to d from 1 up, with a continuous
    slope, and never below d (so the weighted variance stays non-negative)."""
    return torch.where(degree >= 1, degree, 0.5 * (1 + degree * degree))


class SmoothPNAConv(PNAConv):
    """PyG's PNAConv whose aggregation can weight every message by the cutoff envelope.

    Messages and updates are PNAConv's own (towers, pre- and post-networks, edge encoder).
    Given ``edge_weight`` [E] (in [0, 1], zero at the cutoff), ``aggregate`` computes the
    weighted aggregators and soft degrees described in the module docstring; without it,
    PyG's counting aggregation runs.
    The scalers' normalisers (PyG's ``avg_deg_lin``/``avg_deg_log`` buffers) come from the
    ``deg`` histogram, so they travel in the state_dict.
    """

    def __init__(self, *args, aggregators: Sequence[str], scalers: Sequence[str], sharpness: float = 10.0,
                 **kwargs) -> None:
        super().__init__(*args, aggregators=list(aggregators), scalers=list(scalers), **kwargs)
        self.aggregator_names = tuple(aggregators)
        self.scaler_names = tuple(scalers)
        self.sharpness = float(sharpness)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                edge_weight: Tensor | None = None) -> Tensor:
        """PNAConv.forward, with the edge weights handed on to ``aggregate`` and the first
        message layer split by its inputs (see ``project``)."""
        if self.divide_input:
            x = x.view(-1, self.towers, self.F_in)
        else:
            x = x.view(-1, 1, self.F_in).expand(-1, self.towers, -1)
        centre, neighbour, edge = self.project(x, edge_attr)
        # PyG compiles propagate from this signature (PNAConv's own passes x and edge_attr):
        # propagate_type: (centre: Tensor, neighbour: Tensor, edge: OptTensor, edge_weight: OptTensor)
        out = self.propagate(edge_index, centre=centre, neighbour=neighbour, edge=edge, edge_weight=edge_weight)
        out = torch.cat([x, out], dim=-1)
        out = torch.cat([net(out[:, i]) for i, net in enumerate(self.post_nns)], dim=1)
        return self.lin(out)

    def project(self, x: Tensor, edge_attr: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """The first layer of each tower's message network, W [x_i, x_j, enc(e)] + b, as
        W_i x (per atom, with b) + W_j x (per atom) + (W_e enc)(e) (per edge, the edge encoder
        folded in): the same function as PNAConv's, without an [E, 3F] concatenation and with
        two thirds of the per-edge matrix product moved to the atoms (~15x fewer rows)."""
        size = self.F_in
        centre, neighbour, edge = [], [], []
        for t, net in enumerate(self.pre_nns):
            first, xt = net[0], x[:, t]
            weight = first.weight
            centre.append(F.linear(xt, weight[:, :size], first.bias))
            neighbour.append(F.linear(xt, weight[:, size:2 * size]))
            if edge_attr is not None:
                block = weight[:, 2 * size:]
                edge.append(F.linear(edge_attr, block @ self.edge_encoder.weight, block @ self.edge_encoder.bias))
        return (torch.stack(centre, 1), torch.stack(neighbour, 1),
                torch.stack(edge, 1) if edge_attr is not None else None)

    def message(self, centre_i: Tensor, neighbour_j: Tensor, edge: Tensor | None) -> Tensor:
        """Each tower's message network on (centre, neighbour, edge); its first layer is in ``project``."""
        h = centre_i + neighbour_j if edge is None else centre_i + neighbour_j + edge
        if all(len(net) == 1 for net in self.pre_nns):
            return h
        return torch.stack([net[1:](h[:, t]) for t, net in enumerate(self.pre_nns)], dim=1)

    def aggregate(self, inputs: Tensor, index: Tensor, ptr: Tensor | None = None, dim_size: int | None = None,
                  edge_weight: Tensor | None = None) -> Tensor:
        if edge_weight is None:
            return super().aggregate(inputs, index, ptr, dim_size)
        return self.smooth_aggregate(inputs, index, edge_weight, dim_size)

    def smooth_aggregate(self, messages: Tensor, index: Tensor, edge_weight: Tensor, dim_size: int | None) -> Tensor:
        """Weighted aggregators times soft-degree scalers, [N, towers, F * A * S]
        in PyG's layout (aggregators inside scalers)."""
        weight = edge_weight.to(messages.dtype)
        weighted = messages * weight.view(-1, 1, 1)
        degree = scatter(weight, index, 0, dim_size, reduce="sum")  # [N], continuous in the geometry
        floor = soft_floor_one(degree).view(-1, 1, 1)
        total = scatter(weighted, index, 0, dim_size, reduce="sum")
        mean = total / floor
        parts = []
        for name in self.aggregator_names:
            if name == "sum":
                parts.append(total)
            elif name == "mean":
                parts.append(mean)
            elif name in ("var", "std"):
                second = scatter(weighted * messages, index, 0, dim_size, reduce="sum") / floor
                variance = F.relu(second - mean * mean)
                # sqrt(var + eps) - sqrt(eps): zero at no spread, smooth, finite slope there
                parts.append(variance if name == "var" else
                             torch.sqrt(variance + STD_EPS) - math.sqrt(STD_EPS))
            elif name == "max":
                parts.append(self.soft_extreme(messages, weight, index, dim_size, self.sharpness))
            elif name == "min":
                parts.append(self.soft_extreme(messages, weight, index, dim_size, -self.sharpness))
            else:  # pragma: no cover - refused in PNA.__init__
                raise ValueError(f"unknown aggregator {name!r}")
        out = torch.cat(parts, dim=-1)
        degree = degree.view(-1, 1, 1)
        avg_log = self.aggr_module.avg_deg_log.to(out.dtype)
        avg_lin = self.aggr_module.avg_deg_lin.to(out.dtype)
        scaled = []
        for name in self.scaler_names:
            if name == "identity":
                scaled.append(out)
            elif name == "amplification":
                scaled.append(out * (torch.log(degree + 1) / avg_log))
            elif name == "attenuation":
                scaled.append(out * (avg_log / torch.log(floor + 1)))
            elif name == "linear":
                scaled.append(out * (degree / avg_lin))
            elif name == "inverse_linear":
                scaled.append(out * (avg_lin / floor))
            else:  # pragma: no cover - refused in PNA.__init__
                raise ValueError(f"unknown scaler {name!r}")
        return torch.cat(scaled, dim=-1)

    @staticmethod
    def soft_extreme(messages: Tensor, weight: Tensor, index: Tensor, dim_size: int | None, beta: float) -> Tensor:
        """Smooth max (beta > 0) or min (beta < 0): sum w e^(beta m) m / (1 + sum w e^(beta m)).

        The softmax-weighted mean of the messages and of one zero message of weight 1 (an
        absent neighbour): a neighbour whose weight falls to zero at the cutoff leaves it
        continuously, an atom without neighbours gets 0 (PyG's empty max), and it is a smooth
        function of the messages, so ties between symmetric neighbours (the H of a methyl)
        leave no kink in the energy. As |beta| grows it tends to max(0, max m) (min(0, min m)).
        """
        scaled = beta * messages
        # e^(beta m - c) with c the per-atom max of beta m and 0: no overflow; c cancels exactly.
        shift = scatter(scaled.detach(), index, 0, dim_size, reduce="max").clamp_min(0)
        weights = weight.view(-1, 1, 1) * torch.exp(scaled - shift.index_select(0, index))
        numerator = scatter(weights * messages, index, 0, dim_size, reduce="sum")
        denominator = torch.exp(-shift) + scatter(weights, index, 0, dim_size, reduce="sum")
        return numerator / denominator


class PNA(AtomisticModel):
    """PNA on the ``adjacency_list`` representation, one MLP per target (molecules and crystals).

    ``statistics`` (from the core: the training split's ``TrainingStatistics``) supplies the
    in-degree histogram; without it the model uses ``DEFAULT_DEGREE_HISTOGRAM``. ``heads``
    names the graph and atom MLPs (``graph_heads.gap``, ``atom_heads.mulliken_charge``), so
    a run started from another run's weights (``[model] init``) keeps the heads they share.
    """

    accepts = ("adjacency_list",)
    embedding_layer = "embedding"

    def __init__(self, n_outputs: int = 1, hidden_channels: int = 64, num_layers: int = 3, num_radial: int = 16,
                 cutoff: float = 5.0, aggregators: Sequence[str] = ("mean", "min", "max", "std"),
                 scalers: Sequence[str] = ("identity", "amplification", "attenuation"), towers: int = 1,
                 pre_layers: int = 1, post_layers: int = 1, shared_layers: int = 1, head_layers: int = 1,
                 head_channels: int = 64, readout: str = "mean", smooth: bool = True, sharpness: float = 10.0,
                 max_atomic_number: int = 100, n_atom_outputs: int = 0, heads: Heads | None = None,
                 statistics: TrainingStatistics | None = None) -> None:
        super().__init__(n_outputs)
        aggregators, scalers = list(aggregators), list(scalers)
        _check_names("aggregators", aggregators, AGGREGATORS)
        _check_names("scalers", scalers, SCALERS)
        if readout not in ("sum", "mean"):
            raise ValueError(f"readout must be 'sum' or 'mean', got {readout!r}")
        if hidden_channels % towers:
            raise ValueError(f"hidden_channels ({hidden_channels}) must be a multiple of towers ({towers}): "
                             "each tower gets an equal share of the features")
        if num_radial < 2:
            raise ValueError(f"num_radial must be at least 2 (Gaussians spaced over [0, cutoff]), got {num_radial}")
        if not cutoff > 0:
            raise ValueError(f"cutoff must be positive, got {cutoff}")
        if not sharpness > 0:
            raise ValueError(f"sharpness must be positive, got {sharpness}")
        graph_names, atom_names = _head_names(heads, n_outputs, n_atom_outputs)

        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.cutoff = float(cutoff)
        self.readout = readout
        self.smooth = bool(smooth)
        self.max_atomic_number = max_atomic_number
        self.n_atom_outputs = n_atom_outputs
        self.degree_histogram, self.default_histogram = degree_histogram(statistics)

        self.embedding = nn.Embedding(max_atomic_number + 1, hidden_channels)
        self.rbf = GaussianSmearing(0.0, self.cutoff, num_radial)
        self.envelope = CosineCutoff(self.cutoff)
        deg = torch.tensor(self.degree_histogram, dtype=torch.long)
        self.convs = nn.ModuleList(
            SmoothPNAConv(hidden_channels, hidden_channels, aggregators=aggregators, scalers=scalers, deg=deg,
                          edge_dim=num_radial, sharpness=sharpness, towers=towers, pre_layers=pre_layers,
                          post_layers=post_layers, divide_input=False, act="silu", flow="target_to_source")
            for _ in range(num_layers))

        # Graph heads: shared dense layers, then one MLP per head.
        self.shared = (MLP([hidden_channels] + [head_channels] * shared_layers, act="silu", norm=None,
                           plain_last=False) if shared_layers else nn.Identity())
        shared_out = head_channels if shared_layers else hidden_channels
        self.graph_heads = nn.ModuleDict(
            (key, _head_mlp(shared_out, head_channels, head_layers)) for key in _module_keys(graph_names))
        self.atom_heads = nn.ModuleDict(
            (key, _head_mlp(hidden_channels, head_channels, head_layers)) for key in _module_keys(atom_names))
        self.graph_head_names, self.atom_head_names = tuple(graph_names), tuple(atom_names)
        nn.init.normal_(self.embedding.weight, std=1.0)

    def forward(self, batch) -> ModelOutput:
        data = to_pyg(batch, flow="target_to_source")  # molplat's order: row 0 receives, row 1 sends
        graph = batch["batch"]
        num_graphs = int(batch["num_graphs"])

        vectors = edge_vectors(batch)  # includes periodic shifts; differentiable in the positions
        # sqrt has an infinite gradient at 0; no edge has zero length, but clamp for safety.
        distances = torch.sqrt((vectors * vectors).sum(-1).clamp_min(1e-12))
        envelope = self.envelope(distances).to(distances.dtype)
        edge_attr = self.rbf(distances) * envelope.unsqueeze(-1)
        # Message weights: the envelope squared vanishes to fourth order at the cutoff, so even
        # the steep std of a lone neighbour (slope 1 / (2 sqrt(eps)) at no spread) stays flat there.
        weight = envelope * envelope

        h = self.embedding(batch["numbers"])
        for conv in self.convs:
            update = conv(h, data.edge_index, edge_attr, weight if self.smooth else None)
            h = h + F.silu(update)

        if self.readout == "mean":  # HydraGNN: pool, shared dense layers, one MLP per head
            pooled = global_mean_pool(h, graph, size=num_graphs)
            shared = self.shared(pooled)
            y = _stack([head(shared) for head in self.graph_heads.values()], num_graphs, h)
        else:  # the same networks per atom, then summed: extensive
            pooled = h.new_zeros(num_graphs, h.shape[1]).index_add_(0, graph, h)
            shared = self.shared(h)
            per_atom = _stack([head(shared) for head in self.graph_heads.values()], h.shape[0], h)
            y = per_atom.new_zeros(num_graphs, per_atom.shape[1]).index_add_(0, graph, per_atom)
        out = ModelOutput(y=y, atom_embedding=h, graph_embedding=pooled)
        if self.atom_heads:
            out["atom_y"] = torch.cat([head(h) for head in self.atom_heads.values()], dim=1)
        return out


def _head_mlp(in_channels: int, channels: int, layers: int) -> nn.Module:
    """One head's own MLP: ``layers`` hidden SiLU layers, then a linear output of one value."""
    return MLP([in_channels] + [channels] * layers + [1], act="silu", norm=None)


def _stack(columns: list[Tensor], rows: int, like: Tensor) -> Tensor:
    """Head outputs side by side, [rows, heads]; [rows, 0] for a run without graph heads."""
    return torch.cat(columns, dim=1) if columns else like.new_zeros(rows, 0)


def _check_names(what: str, names: list[str], allowed: tuple[str, ...]) -> None:
    if not names:
        raise ValueError(f"{what} must name at least one of {', '.join(allowed)}")
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; allowed: {', '.join(allowed)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} {names} name one twice; list each once")


def _head_names(heads: Heads | None, n_outputs: int, n_atom_outputs: int) -> tuple[list[str], list[str]]:
    """The graph and atom head names: from ``heads`` when the core gives it, else y0.. and a0.."""
    if heads is None:
        return [f"y{k}" for k in range(n_outputs)], [f"a{k}" for k in range(n_atom_outputs)]
    graph, atom = [h.name for h in heads.graph], [h.name for h in heads.atom]
    if len(graph) != n_outputs or len(atom) != n_atom_outputs:
        raise ValueError(f"heads name {len(graph)} graph and {len(atom)} atom targets, but n_outputs is "
                         f"{n_outputs} and n_atom_outputs {n_atom_outputs}")
    return graph, atom


def _module_keys(names: list[str]) -> list[str]:
    """Module names for the heads: the target's name where it is a valid, free attribute name
    (so state_dict keys read ``graph_heads.gap``), else its position ``head3``."""
    keys: list[str] = []
    reserved = set(dir(nn.ModuleDict()))
    for k, name in enumerate(names):
        key = re.sub(r"\W", "_", name)
        if not key or key in reserved or key in keys or key.startswith("head"):
            key = f"head{k}"
        keys.append(key)
    return keys
