"""CGCNN (Xie & Grossman, PRL 120, 145301, 2018) on molplat's list and matrix batches.

One set of parameters, two evaluation paths: a sparse one over the edges of an
``adjacency_list`` batch (gather, then ``index_add_``) and a dense one over the
padded ``[G, N, N, S]`` pair tensors of an ``adjacency_matrix`` batch (masked sums
over the neighbour and image axes). Both compute the same function, so a model
trained on one form predicts the same numbers on the other.

Departures from the published model, each for a reason:

* Atoms are embedded by a learned table over the atomic number instead of the
  original 92 one-hot elemental descriptors (no external feature file to ship).
* Every message is multiplied by a cosine envelope that falls smoothly to zero
  at ``cutoff``, so energies are continuous and forces exist when a neighbour
  crosses the cutoff.
* The batch norm applied to the per-edge gate pre-activations in the reference
  code is dropped: its batch statistics would jump when an edge enters the
  cutoff. The batch norm of the summed messages is kept for property runs (the
  paper's model), taken over the valid atoms only, so padding never enters the
  statistics.
* Energy+forces runs (the factory's ``heads.forces``) use no batch statistics at
  all: in training mode a batch norm makes a structure's energy, and so its forces,
  depend on the other structures of its batch (a rattled Cu crystal's forces move
  by several units of the energy scale with its batch neighbours), and fitting
  forces needs them per structure.
  There each convolution is ``v' = softplus(LayerNorm(v + sum_j m_ij))``: a layer
  norm over each atom's own features. It sits after the residual sum rather than
  where the batch norm was, because an atom whose last neighbour leaves the cutoff
  has summed messages tending to zero, where a layer norm divides by
  sqrt(eps) and would make the energy needlessly steep; ``v + sum`` never vanishes.

Per-atom targets (``n_atom_outputs`` > 0) are read from the final atom features by
their own MLP, the same shape as the graph head's.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from molplat.models import AtomisticModel, Heads, ModelOutput


def cosine_envelope(d: torch.Tensor, cutoff: float) -> torch.Tensor:
    """0.5 (cos(pi d / rc) + 1) inside the cutoff, 0 outside; C1-continuous at rc."""
    return torch.where(d < cutoff, 0.5 * (torch.cos(d * (math.pi / cutoff)) + 1.0), torch.zeros_like(d))


class GaussianExpansion(nn.Module):
    """exp(-(d - mu_k)^2 / step^2) on evenly spaced centres mu_k in [0, cutoff], as in CGCNN."""

    def __init__(self, num_gaussians: int, cutoff: float) -> None:
        super().__init__()
        centers = torch.linspace(0.0, cutoff, num_gaussians)
        step = cutoff / max(num_gaussians - 1, 1)
        self.register_buffer("centers", centers)
        self.gamma = 1.0 / step**2

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.gamma * (d[..., None] - self.centers) ** 2)


class GatedConvolution(nn.Module):
    """v_i' = softplus(v_i + BN(sum_j f(d_ij) sigma(z_ij W_f + b_f) * softplus(z_ij W_s + b_s))).

    z_ij = v_i (+) v_j (+) u_ij. The linear map of the concatenation is split into
    its three blocks (centre, neighbour, edge) so that the centre and neighbour
    parts are computed once per atom, not once per edge; this is the same
    function as one Linear on the concatenation. With ``per_atom_norm`` the update
    is softplus(LayerNorm(v_i + sum_j ...)) instead (see the module docstring).
    """

    def __init__(self, atom_features: int, edge_features: int, per_atom_norm: bool = False) -> None:
        super().__init__()
        two_f = 2 * atom_features
        self.center = nn.Linear(atom_features, two_f, bias=False)
        self.neighbor = nn.Linear(atom_features, two_f, bias=False)
        self.edge = nn.Linear(edge_features, two_f)  # carries b_f and b_s
        self.per_atom_norm = per_atom_norm
        self.norm = nn.LayerNorm(atom_features) if per_atom_norm else nn.BatchNorm1d(atom_features)

    def _messages(self, pre: torch.Tensor) -> torch.Tensor:
        gate, core = pre.chunk(2, dim=-1)
        return torch.sigmoid(gate) * F.softplus(core)

    def _update(self, v: torch.Tensor, summed: torch.Tensor) -> torch.Tensor:
        """The new features of valid atoms [n, F] from their old ones and their summed messages."""
        if self.per_atom_norm:
            return F.softplus(self.norm(v + summed))
        return F.softplus(v + self.norm(summed))

    def forward_list(self, v: torch.Tensor, u: torch.Tensor, envelope: torch.Tensor,
                     edge_index: torch.Tensor) -> torch.Tensor:
        i, j = edge_index
        pre = self.center(v)[i] + self.neighbor(v)[j] + self.edge(u)
        messages = self._messages(pre) * envelope[:, None]
        summed = torch.zeros_like(v).index_add_(0, i, messages)
        return self._update(v, summed)

    def forward_dense(self, v: torch.Tensor, u: torch.Tensor, weight: torch.Tensor,
                      atom_mask: torch.Tensor) -> torch.Tensor:
        # v [G, N, F]; u [G, N, N, S, K]; weight [G, N, N, S] = envelope * pair_mask
        pre = (self.center(v)[:, :, None, None, :] + self.neighbor(v)[:, None, :, None, :] + self.edge(u))
        summed = (self._messages(pre) * weight[..., None]).sum(dim=(2, 3))  # over neighbours and images
        updated = torch.zeros_like(v)
        updated[atom_mask] = self._update(v[atom_mask], summed[atom_mask])  # statistics over valid atoms only
        return updated


class CGCNN(AtomisticModel):
    """Crystal graph convolutional neural network; see the module docstring."""

    accepts = ("adjacency_list", "adjacency_matrix")
    embedding_layer = "embedding"

    def __init__(self, n_outputs: int = 1, atom_features: int = 64, num_convs: int = 3,
                 num_gaussians: int = 40, cutoff: float = 6.0, hidden: int = 128,
                 readout: str = "mean", max_atomic_number: int = 100, n_atom_outputs: int = 0,
                 heads: Heads | None = None) -> None:
        super().__init__(n_outputs)
        if readout not in ("mean", "sum"):
            raise ValueError(f"cgcnn: readout must be 'mean' or 'sum', got {readout!r}")
        self.cutoff = float(cutoff)
        self.readout = readout
        self.max_atomic_number = max_atomic_number
        self.n_atom_outputs = n_atom_outputs
        #: batch norm couples a batch's structures in training; forces need each on its own
        self.per_atom_norm = bool(heads is not None and heads.forces)
        self.embedding = nn.Embedding(max_atomic_number + 1, atom_features)
        self.expansion = GaussianExpansion(num_gaussians, self.cutoff)
        self.convs = nn.ModuleList(GatedConvolution(atom_features, num_gaussians, self.per_atom_norm)
                                   for _ in range(num_convs))
        self.head = _mlp(atom_features, hidden, n_outputs)
        self.atom_head = _mlp(atom_features, hidden, n_atom_outputs) if n_atom_outputs else None

    def _check_numbers(self, numbers: torch.Tensor) -> None:
        if numbers.numel() and int(numbers.max()) > self.max_atomic_number:
            raise ValueError(
                f"cgcnn: atomic number {int(numbers.max())} exceeds max_atomic_number={self.max_atomic_number}; "
                "raise the setting"
            )

    def forward(self, batch) -> ModelOutput:
        self._check_numbers(batch["numbers"])
        if batch.dense:
            atoms, graph_atoms = self._dense_atoms(batch)
        else:
            atoms, graph_atoms = self._list_atoms(batch), batch.atom_graph_index()
        return self._readout(atoms, graph_atoms, batch["num_graphs"])

    def _list_atoms(self, batch) -> torch.Tensor:
        from molplat.representations.adjacency_list import edge_vectors

        d = edge_vectors(batch).norm(dim=-1)
        u = self.expansion(d)
        envelope = cosine_envelope(d, self.cutoff)
        v = self.embedding(batch["numbers"])
        for conv in self.convs:
            v = conv.forward_list(v, u, envelope, batch["edge_index"])
        return v

    def _dense_atoms(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        from molplat.representations.adjacency_matrix import pair_vectors

        atom_mask, pair_mask = batch["atom_mask"], batch["pair_mask"]
        d2 = pair_vectors(batch).pow(2).sum(dim=-1)
        # Padded and self pairs have zero length; a dummy 1 keeps sqrt's gradient finite there.
        d = torch.where(pair_mask, d2, torch.ones_like(d2)).sqrt()
        u = self.expansion(d)
        weight = cosine_envelope(d, self.cutoff) * pair_mask
        v = self.embedding(batch["numbers"]) * atom_mask[..., None]
        for conv in self.convs:
            v = conv.forward_dense(v, u, weight, atom_mask)
        return v[atom_mask], batch.atom_graph_index()

    def _readout(self, atoms: torch.Tensor, graph_atoms: torch.Tensor, num_graphs: int) -> ModelOutput:
        pooled = atoms.new_zeros(num_graphs, atoms.shape[1]).index_add_(0, graph_atoms, atoms)
        if self.readout == "mean":
            counts = torch.bincount(graph_atoms, minlength=num_graphs).clamp(min=1).to(atoms.dtype)
            pooled = pooled / counts[:, None]
            y = self.head(pooled)
        else:
            per_atom = self.head(atoms)
            y = per_atom.new_zeros(num_graphs, self.n_outputs).index_add_(0, graph_atoms, per_atom)
        out = ModelOutput(y=y, atom_embedding=atoms, graph_embedding=pooled)
        if self.atom_head is not None:
            out["atom_y"] = self.atom_head(atoms)
        return out


def _mlp(features: int, hidden: int, outputs: int) -> nn.Sequential:
    """softplus, Linear F -> hidden, softplus, Linear hidden -> outputs (the paper's output network)."""
    return nn.Sequential(nn.Softplus(), nn.Linear(features, hidden), nn.Softplus(), nn.Linear(hidden, outputs))
