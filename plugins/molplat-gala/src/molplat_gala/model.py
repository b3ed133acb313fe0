"""Gala: geometric algebra attention on a point cloud.

M. Spellings, *Geometric Algebra Attention Networks for Small Point Clouds*,
arXiv:2110.02393 (2021).

Every atom i sees its environment as a small point cloud of relative vectors
r_ij = r_j - r_i (j over the other atoms, or over the periodic images within the cutoff).
A Gala attention layer forms geometric products of tuples of those vectors (rank 1: r_ij;
rank 2: r_ij r_ik = r_ij . r_ik + r_ij ^ r_ik), takes their rotation-invariant parts (norms,
dot products, bivector magnitudes), turns them into values with a small network, joins them
with the tuple's atom features, and pools the tuples with a softmax attention whose scores a
second network computes. The result for atom i is rotation invariant, so a stack of such
layers with residual MLPs gives invariant atom features; an atom-wise network maps them to
contributions summed (extensive targets such as energies) or averaged (intensive ones) per
structure. The rotation-covariant variant of the layer (the attention-weighted sum of the
tuples' vectors) gives each atom an equivariant vector, whose norm also feeds the prediction
and which the model returns as ``atom_vectors``.

The products, invariants, covariants and value/score plumbing come from the
``geometric-algebra-attention`` package (its PyTorch backend). What this module adds for
molplat: the padded environment tables built from the ``point_cloud`` batch (with periodic
images when a cutoff is set), and a softmax in which every tuple is weighted by a smooth
envelope of its distances plus one null tuple of score 0, so that an atom entering or leaving
the cutoff sphere changes the energy smoothly and an atom with no neighbours gets zeros
instead of NaNs; and norms smoothed at zero (sqrt(|x|^2 + 1e-12)), because a tuple (j, j) has
an exactly zero bivector and training on forces differentiates the norm twice.
"""
from __future__ import annotations

import itertools
import math
from types import SimpleNamespace
from typing import NamedTuple

import torch
from geometric_algebra_attention import pytorch as gala
from torch import nn
from torch_geometric.nn.models.schnet import GaussianSmearing

from molplat.models import AtomisticModel, Heads, ModelOutput

READOUTS = ("auto", "sum", "mean")
#: Å spanned by the distance Gaussians without a cutoff (QM9's largest molecules are ~10 Å across)
GLOBAL_RANGE = 10.0


def cosine_envelope(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """0.5 (cos(pi d / rc) + 1) inside the cutoff, 0 beyond: value and slope vanish at rc,
    so energies and forces stay continuous when a neighbour crosses the cutoff sphere."""
    inside = distances < cutoff
    value = 0.5 * (torch.cos(distances.clamp(max=cutoff) * (math.pi / cutoff)) + 1.0)
    return torch.where(inside, value, torch.zeros_like(value))


def smooth_norm(x: torch.Tensor) -> torch.Tensor:
    """sqrt(|x|^2 + 1e-12) over the last axis: the library's norm, but differentiable twice at
    zero. Bivectors of a tuple (j, j) and of antiparallel periodic images are exactly zero,
    and training on forces differentiates the norm twice."""
    return torch.sqrt((x * x).sum(-1, keepdim=True) + 1e-12)


def _smooth_algebra() -> SimpleNamespace:
    """The library's geometric algebra with :func:`smooth_norm` wherever it takes a norm."""
    algebra = SimpleNamespace(**{k: getattr(gala.geometric_algebra, k) for k in dir(gala.geometric_algebra)
                                 if not k.startswith("__")})
    algebra.custom_norm = smooth_norm
    algebra.vecvec_invariants = lambda p: torch.cat([p[..., :1], smooth_norm(p[..., 1:4])], dim=-1)
    algebra.bivecvec_invariants = lambda q: torch.cat([smooth_norm(q[..., :3]), q[..., 3:4]], dim=-1)
    algebra.trivecvec_invariants = algebra.vecvec_invariants
    return algebra


class _EnvelopeSoftmax:
    """Replaces the library's hard-masked softmax by a smooth, weighted one.

    The library hands ``mask`` to ``_mask_scores`` and that method's result to
    ``_calculate_attention``. Here ``mask`` is a float weight per neighbour, [..., M]; a
    tuple's weight is the product of its members' weights, and

        a_t = w_t exp(s_t) / (1 + sum_t' w_t' exp(s_t'))

    (the 1 is a null tuple of score 0). Tuples of weight 0 (padding, the atom itself,
    neighbours beyond the cutoff) drop out exactly; those near the cutoff fade out.
    """

    algebra = _smooth_algebra()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.init()  # the library builds its kernels only for its own classes, not for subclasses

    def _mask_scores(self, scores, broadcast_indices, mask):
        weights = None
        for index in broadcast_indices:
            member = mask[..., None][index]
            weights = member if weights is None else weights * member
        return scores, weights

    def _calculate_attention(self, scored, values, old_shape):
        scores, weights = scored
        if not self.reduce:  # pragma: no cover - the model only builds reducing layers
            raise NotImplementedError("envelope softmax is written for reduce=True layers")
        dims, reduce_axes = self._get_reduction()
        shape = list(old_shape[:dims]) + [old_shape[dims:].numel()]
        scores = scores.reshape(shape)
        weights = weights.expand(old_shape).reshape(shape)
        present = weights > 0
        # Shift by the largest present score (and the null tuple's 0) before exp; the ratio does
        # not depend on the shift, so it is detached and its choice adds no gradient.
        shift = torch.where(present, scores, torch.full_like(scores, -math.inf)).amax(-1, keepdim=True)
        shift = shift.clamp_min(0.0).detach()
        exps = weights * torch.exp(torch.where(present, scores - shift, torch.full_like(scores, -math.inf)))
        attention = exps / (torch.exp(-shift) + exps.sum(-1, keepdim=True))
        attention = attention.reshape(old_shape)
        return attention, (attention * values).sum(reduce_axes)


class EnvelopeVectorAttention(_EnvelopeSoftmax, gala.VectorAttention):
    """Invariant Gala attention (values in the embedding dimension) with the envelope softmax."""


class EnvelopeVector2VectorAttention(_EnvelopeSoftmax, gala.Vector2VectorAttention):
    """Rotation-covariant Gala attention (one vector per atom) with the envelope softmax."""


class Environments(NamedTuple):
    """Each atom's neighbours, padded: [G, N, M] tables (M = most neighbours of any atom)."""

    vectors: torch.Tensor  # [G, N, M, 3] r_j + shift - r_i, differentiable in the positions
    neighbor: torch.Tensor  # [G, N, M] index of the neighbour atom in its structure
    weights: torch.Tensor  # [G, N, M] envelope (1 without cutoff), 0 for padding


def _image_range(cell: torch.Tensor, pbc: torch.Tensor, cutoff: float) -> list[range]:
    """Lattice translations to try per axis: a lattice plane spacing w_k needs ceil(rc / w_k)
    images on each side, plus one because fractional differences are wrapped to [-1/2, 1/2]."""
    inverse = torch.linalg.inv(cell)
    widths = 1.0 / inverse.norm(dim=0)  # spacing of the planes spanned by the two other vectors
    return [range(-(n := math.ceil(cutoff / float(w)) + 1), n + 1) if bool(periodic) else range(0, 1)
            for w, periodic in zip(widths, pbc)]


class Gala(AtomisticModel):
    """Gala on the ``point_cloud`` representation.

    ``cutoff`` = 0 lets every atom attend to the whole molecule, as in the paper (periodic
    structures are refused: they have infinitely many images). ``cutoff`` > 0 restricts each
    environment to the atoms and periodic images within the cutoff and weights them by a
    cosine envelope, so crystals work and the energy is smooth at the cutoff.

    ``readout`` "auto" sums the atom contributions of extensive targets and averages those of
    intensive ones (it reads ``heads``; without heads it sums).
    """

    accepts = ("point_cloud",)
    embedding_layer = "embedding"

    def __init__(self, n_outputs: int = 1, hidden_channels: int = 32, num_layers: int = 2, rank: int = 2,
                 dilation: float = 2.0, cutoff: float = 0.0, readout: str = "auto", max_atomic_number: int = 100,
                 num_radial: int = 16, n_atom_outputs: int = 0, heads: Heads | None = None) -> None:
        super().__init__(n_outputs)
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if rank not in (1, 2):
            raise ValueError(f"rank must be 1 (single neighbours) or 2 (pairs of neighbours: angles), got {rank!r}")
        if cutoff < 0:
            raise ValueError(f"cutoff must be 0 (attend to the whole cloud) or a radius in Å, got {cutoff!r}")
        if hidden_channels < 1 or num_layers < 1 or dilation <= 0:
            raise ValueError("hidden_channels and num_layers must be at least 1 and dilation positive, got "
                             f"{hidden_channels}, {num_layers}, {dilation}")
        if num_radial < 2:
            raise ValueError(f"num_radial must be at least 2 (Gaussians spread over a range), got {num_radial}")
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.rank = rank
        self.cutoff = float(cutoff)
        self.readout = readout
        self.max_atomic_number = max_atomic_number
        self.n_atom_outputs = n_atom_outputs
        # Which graph outputs are averaged over the atoms (the rest are summed). "auto" asks the
        # heads: extensive targets (energies, ZPVE) are sums, intensive ones (HOMO, gap) means.
        if readout == "auto":
            graph_heads = heads.graph if heads is not None else ()
            averaged = [not h.extensive for h in graph_heads] if len(graph_heads) == n_outputs else [False] * n_outputs
        else:
            averaged = [readout == "mean"] * n_outputs
        self.register_buffer("averaged", torch.tensor(averaged, dtype=torch.bool), persistent=False)
        width = max(1, round(hidden_channels * dilation))
        options = dict(rank=rank, reduce=True, merge_fun="mean", join_fun="mean", invariant_mode="full")
        n_invariants = gala.VectorAttention.get_invariant_dims(rank, "full")

        self.embedding = nn.Embedding(max_atomic_number + 1, hidden_channels)
        # Each neighbour's value: the centre's and the neighbour's features (Open MatSci ML's Gala
        # up-projects the pair of one-hot species the same way), times a filter of their distance
        # on Gaussians, so that species and distance meet before the attention does.
        self.rbf = GaussianSmearing(0.0, self.cutoff if self.cutoff > 0 else GLOBAL_RANGE, num_radial)
        self.centre = nn.ModuleList(nn.Linear(hidden_channels, hidden_channels) for _ in range(num_layers + 1))
        self.neighbour = nn.ModuleList(nn.Linear(hidden_channels, hidden_channels, bias=False)
                                       for _ in range(num_layers + 1))
        self.radial = nn.ModuleList(_value_net(num_radial, hidden_channels, hidden_channels)
                                    for _ in range(num_layers + 1))
        self.attention = nn.ModuleList(
            EnvelopeVectorAttention(hidden_channels, _score_net(hidden_channels, width),
                                    _value_net(n_invariants, hidden_channels, width), **options)
            for _ in range(num_layers))
        self.update = nn.ModuleList(_value_net(hidden_channels, hidden_channels, width) for _ in range(num_layers))
        self.norm = nn.ModuleList(nn.LayerNorm(hidden_channels) for _ in range(num_layers))
        self.vector_attention = EnvelopeVector2VectorAttention(
            hidden_channels, _score_net(hidden_channels, width), _value_net(n_invariants, hidden_channels, width),
            _score_net(hidden_channels, width), covariant_mode="full", **options)
        self.output = _value_net(hidden_channels + 1, n_outputs, width)
        self.atom_output = _value_net(hidden_channels + 1, n_atom_outputs, width) if n_atom_outputs else None

    # -- geometry ---------------------------------------------------------------------------
    def environments(self, batch) -> Environments:
        """Padded neighbour tables of every atom. Which pairs enter is decided without gradients
        (they are either all other atoms or those within the cutoff, where the envelope is 0
        anyway); the vectors are then computed from ``batch.positions`` so forces flow."""
        positions = batch["positions"]
        mask = batch["atom_mask"]
        num_graphs, n_max = mask.shape
        pbc = batch.get("pbc")
        periodic = pbc.any(-1) if pbc is not None else torch.zeros(num_graphs, dtype=torch.bool)
        if self.cutoff == 0 and bool(periodic.any()):
            raise ValueError("gala with cutoff = 0 attends to the whole point cloud, which a periodic structure does "
                             "not have (it has infinitely many images): set [model] cutoff to a radius in Å "
                             "(e.g. 5.0) to run it on crystals")
        tables = []
        with torch.no_grad():
            for g in range(num_graphs):
                n = int(mask[g].sum())
                pos = positions[g, :n].detach()
                if bool(periodic[g]):
                    tables.append(self._periodic_pairs(pos, batch["cell"][g].to(pos.dtype), pbc[g]))
                else:
                    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
                    keep = i != j
                    if self.cutoff > 0:
                        keep &= (pos[j] - pos[i]).norm(dim=-1) < self.cutoff
                    i, j = i[keep], j[keep]
                    tables.append((i, j, pos.new_zeros(i.shape[0], 3)))
        counts = [torch.bincount(i, minlength=n_max) for i, _, _ in tables]
        m_max = max(1, max(int(c.max()) if c.numel() else 0 for c in counts))
        neighbor = torch.zeros(num_graphs, n_max, m_max, dtype=torch.long, device=positions.device)
        shift = positions.new_zeros(num_graphs, n_max, m_max, 3)
        present = torch.zeros(num_graphs, n_max, m_max, dtype=torch.bool, device=positions.device)
        for g, ((i, j, s), count) in enumerate(zip(tables, counts)):
            if i.numel() == 0:
                continue
            order = torch.argsort(i, stable=True)
            i, j, s = i[order], j[order], s[order]
            starts = torch.cumsum(count, 0) - count
            slot = torch.arange(i.shape[0]) - starts[i]
            neighbor[g, i, slot] = j
            shift[g, i, slot] = s
            present[g, i, slot] = True
        centres = positions.unsqueeze(2)  # [G, N, 1, 3]
        others = torch.gather(positions, 1, neighbor.reshape(num_graphs, -1, 1).expand(-1, -1, 3))
        vectors = others.reshape(num_graphs, n_max, m_max, 3) + shift - centres
        # Padding slots get a unit vector: harmless, finite, and their weight is 0.
        filler = torch.zeros_like(vectors)
        filler[..., 0] = 1.0
        vectors = torch.where(present.unsqueeze(-1), vectors, filler)
        weights = present.to(positions.dtype)
        if self.cutoff > 0:
            distances = torch.sqrt((vectors * vectors).sum(-1).clamp_min(1e-12))
            weights = weights * cosine_envelope(distances, self.cutoff)
        return Environments(vectors, neighbor, weights)

    def _periodic_pairs(self, pos: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor):
        """Every (i, j, lattice shift) closer than the cutoff, j == i included for other images."""
        pbc = pbc.bool()
        inverse = torch.linalg.inv(cell)
        frac = (pos[None, :, :] - pos[:, None, :]) @ inverse  # [n, n, 3] fractional r_j - r_i
        base = -torch.where(pbc, torch.round(frac), torch.zeros_like(frac))
        images = torch.tensor(list(itertools.product(*_image_range(cell, pbc, self.cutoff))), dtype=pos.dtype)
        total = (frac + base)[:, :, None, :] + images  # [n, n, K, 3] fractional offsets tried
        cart = total @ cell
        keep = (cart * cart).sum(-1) < self.cutoff**2
        n = pos.shape[0]
        same = torch.eye(n, dtype=torch.bool)[:, :, None] & (images == 0).all(-1)[None, None, :]
        keep &= ~same
        i, j, k = torch.nonzero(keep, as_tuple=True)
        shifts = (base[i, j] + images[k]) @ cell
        return i, j, shifts

    # -- network ----------------------------------------------------------------------------
    def _tuple_values(self, h: torch.Tensor, env: Environments, rbf: torch.Tensor, layer: int) -> torch.Tensor:
        """[G, N, M, F]: (centre + neighbour features) * filter(distance)."""
        num_graphs, n_max, m_max = env.neighbor.shape
        gathered = torch.gather(h, 1, env.neighbor.reshape(num_graphs, -1, 1).expand(-1, -1, h.shape[-1]))
        neighbours = self.neighbour[layer](gathered.reshape(num_graphs, n_max, m_max, -1))
        return (neighbours + self.centre[layer](h).unsqueeze(2)) * self.radial[layer](rbf)

    def forward(self, batch) -> ModelOutput:
        mask = batch["atom_mask"]
        env = self.environments(batch)
        distances = torch.sqrt((env.vectors * env.vectors).sum(-1).clamp_min(1e-12))
        rbf = self.rbf(distances).reshape(*distances.shape, -1)
        h = self.embedding(batch["numbers"])
        for layer in range(self.num_layers):
            values = self._tuple_values(h, env, rbf, layer)
            pooled = self.attention[layer]((env.vectors, values), mask=env.weights)
            h = self.norm[layer](h + self.update[layer](pooled))
        values = self._tuple_values(h, env, rbf, self.num_layers)
        vectors = self.vector_attention((env.vectors, values), mask=env.weights)  # [G, N, 3], equivariant
        lengths = smooth_norm(vectors)
        features = torch.cat([h, lengths], dim=-1)

        atom_mask = mask.unsqueeze(-1).to(h.dtype)
        per_atom = self.output(features) * atom_mask
        counts = batch["natoms"].to(h.dtype).clamp_min(1).unsqueeze(-1)
        y = per_atom.sum(1)
        y = torch.where(self.averaged, y / counts, y)
        # the second-to-last layer: the invariant features the output network reads, pooled
        pooled = (features * atom_mask).sum(1)
        if self.readout != "sum":
            pooled = pooled / counts
        out = ModelOutput(y=y, atom_embedding=batch.flat_atoms(h), graph_embedding=pooled)
        out["atom_vectors"] = batch.flat_atoms(vectors)  # type: ignore[typeddict-unknown-key]
        if self.atom_output is not None:
            out["atom_y"] = batch.flat_atoms(self.atom_output(features))
        return out


def _score_net(channels: int, width: int) -> nn.Sequential:
    """Tuple features -> one attention logit."""
    return nn.Sequential(nn.Linear(channels, width), nn.SiLU(), nn.Linear(width, 1))


def _value_net(inputs: int, outputs: int, width: int) -> nn.Sequential:
    """Invariants (or features) -> values: Dense, SiLU, Dense, as in the paper."""
    return nn.Sequential(nn.Linear(inputs, width), nn.SiLU(), nn.Linear(width, outputs))
