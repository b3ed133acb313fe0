"""PhysNet: energies and partial charges from stacked interaction modules.

O. T. Unke, M. Meuwly, "PhysNet: A Neural Network for Predicting Energies, Forces, Dipole
Moments, and Partial Charges", J. Chem. Theory Comput. 15, 3678 (2019).

Atoms start from an embedding of their element. Every distance within the cutoff is expanded
on exponential radial basis functions exp(-beta_k (exp(-r) - mu_k)^2) times a smooth
polynomial cutoff. A stack of modules refines the atom features; each module is an
interaction block (messages from the neighbours, their features gated element-wise by a
linear map of the basis, then residual blocks, then a gated residual update of the atom),
atom-wise residual blocks, and an output block that maps the module's features to per-atom
contributions: one per graph-level target and one partial charge. The contributions of every
module are added up (the paper's sum over modules), scaled and shifted per element, and
pooled per structure (sum for extensive targets, mean for intensive ones).

The raw charges are corrected so that each structure's charges sum to its total charge (the
paper's q_i - (sum_j q_j - Q) / N). They can serve as the first per-atom target (QM9's Mulliken
charges) and feed two optional physical energy terms added to the first target:

- electrostatics: k_e sum_{i<j} q_i q_j chi(r_ij) over every pair of a molecule, where
  chi(r) = phi(2r) / sqrt(r^2 + 1) + (1 - phi(2r)) / r switches smoothly from a shielded
  Coulomb law at short range (where the network's own terms dominate) to the bare one, as in
  the paper; molecules only (a periodic Coulomb sum needs Ewald summation);
- dispersion: Grimme's D2 (J. Comput. Chem. 27, 1787 (2006)), -s6 sum C6_ij / r^6 f_damp(r),
  with D2's per-element C6 and radii, its Fermi damping, a learned global scale s6 and the
  model's smooth cutoff. PhysNet uses D3 with learned parameters; D2 is the simpler pairwise
  stand-in (no coordination-dependent C6, no C8 term).

The model's outputs are in the trainer's standardised units; the physical terms are in eV,
so they are divided by the first target's scale from the training statistics before being
added (and the charge output is standardised likewise), which makes them exact in the
units the trainer reports.

Written to keep float32 denormals out of the matmuls (see ExponentialRBF): the cutoff
multiplies the filters after the bias-free linear map rather than the basis, and far basis
functions are exactly zero.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.utils import scatter

from molplat.errors import ValidationError
from molplat.models import AtomisticModel, ModelOutput
from molplat.representations.adjacency_list import edge_vectors

if TYPE_CHECKING:  # pragma: no cover
    from molplat.data import TrainingStatistics
    from molplat.models import Heads

_LOG2 = math.log(2.0)
#: Coulomb's constant in eV Å / e^2
COULOMB_CONSTANT = 14.399645
#: one J nm^6 mol^-1 (D2's unit of C6) in eV Å^6
_J_NM6_PER_MOL = 10.364269
#: D2's C6 (J nm^6 mol^-1) and van der Waals radii R0 (Å) for H..Xe, Grimme 2006, Table 1;
#: heavier elements take xenon's values (D2 stops there)
D2_C6 = (
    0.14, 0.08, 1.61, 1.61, 3.13, 1.75, 1.23, 0.70, 0.75, 0.63, 5.71, 5.71, 10.79, 9.23, 7.84, 5.57, 5.07, 4.61,
    10.80, 10.80, *[10.80] * 10, 16.99, 17.10, 16.37, 12.64, 12.47, 12.01,
    24.67, 24.67, *[24.67] * 10, 37.32, 38.71, 38.44, 31.74, 31.50, 29.99,
)
D2_R0 = (
    1.001, 1.012, 0.825, 1.408, 1.485, 1.452, 1.397, 1.342, 1.287, 1.243, 1.144, 1.364, 1.639, 1.716, 1.705, 1.683,
    1.639, 1.595, 1.485, 1.474, *[1.562] * 10, 1.650, 1.727, 1.760, 1.771, 1.749, 1.727,
    1.628, 1.606, *[1.639] * 10, 1.672, 1.804, 1.881, 1.892, 1.892, 1.881,
)
#: D2's damping steepness, and its s6 for PBE (where the learned scale starts)
D2_STEEPNESS = 20.0
D2_S6 = 0.75

#: basis functions below e^-30 are set to exactly zero (see ExponentialRBF)
_RBF_FLOOR = 30.0

READOUTS = ("sum", "mean", "auto")
CHARGE_OUTPUTS = ("auto", "first", "none")
#: units of the first target that the physical energy terms (eV) may be added to
ENERGY_UNITS = ("", "eV")


def shifted_softplus(x: torch.Tensor) -> torch.Tensor:
    """ln(0.5 e^x + 0.5), PhysNet's activation: smooth (needed for forces), zero at zero."""
    return F.softplus(x) - _LOG2


def polynomial_cutoff(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """phi(r) = 1 - 6x^5 + 15x^4 - 10x^3 with x = r / cutoff, 0 beyond: value, slope and
    curvature all vanish at the cutoff, so energies and forces stay smooth there."""
    x = distances / cutoff
    x3 = x * x * x
    value = 1.0 + x3 * (-10.0 + x * (15.0 - 6.0 * x))
    return torch.where(x < 1.0, value, torch.zeros_like(value))


class ExponentialRBF(nn.Module):
    """exp(-beta (exp(-r) - mu_k)^2), mu_k evenly spaced on [exp(-cutoff), 1] and
    beta = (2 (1 - exp(-cutoff)) / K)^-2, as the paper: dense at short range, where the
    energy varies fastest, sparse near the cutoff.

    The paper's basis is this times the cutoff phi(r). The filter G g is linear without a bias,
    so G (phi g) = phi (G g): the interaction blocks multiply by phi after G instead. Same
    function, but the matmul never sees the tiny products of phi and far basis functions,
    float32 denormals that slow every matmul touching them ~10x on x86.
    """

    def __init__(self, num_rbf: int, cutoff: float) -> None:
        super().__init__()
        low = math.exp(-float(cutoff))
        self.register_buffer("centers", torch.linspace(low, 1.0, num_rbf), persistent=False)
        self.beta = (2.0 * (1.0 - low) / num_rbf) ** -2

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        diff = torch.exp(-distances).unsqueeze(-1) - self.centers.to(distances.dtype)
        # exp(max(., -30)) - e^-30: exactly 0 for far centres instead of tiny values whose products in
        # the matmuls are float32 denormals (~10x slower on x86). Continuous, shifted by 1e-13 at most,
        # which float32 cannot resolve next to the basis' maximum of 1.
        return torch.exp((-self.beta * diff * diff).clamp_min(-_RBF_FLOOR)) - math.exp(-_RBF_FLOOR)


class Residual(nn.Module):
    """x + W2 ssp(W1 ssp(x) + b1) + b2: the paper's pre-activation residual block."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.first = nn.Linear(width, width)
        self.second = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.second(shifted_softplus(self.first(shifted_softplus(x))))


class Interaction(nn.Module):
    """v_i = ssp(W_I ssp(x_i) + b_I) + sum_j (G g(r_ij)) * ssp(W_J ssp(x_j) + b_J), residual
    blocks on v, then x_i' = u * x_i + W ssp(v_i) + b with a learned gate u (starts at 1)."""

    def __init__(self, width: int, num_rbf: int, num_residual: int) -> None:
        super().__init__()
        self.rbf_to_filter = nn.Linear(num_rbf, width, bias=False)
        self.dense_self = nn.Linear(width, width)
        self.dense_neighbor = nn.Linear(width, width)
        self.residuals = nn.ModuleList(Residual(width) for _ in range(num_residual))
        self.dense_out = nn.Linear(width, width)
        self.gate = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor, rbf: torch.Tensor, envelope: torch.Tensor, centers: torch.Tensor,
                neighbors: torch.Tensor) -> torch.Tensor:
        a = shifted_softplus(x)
        own = shifted_softplus(self.dense_self(a))
        sent = shifted_softplus(self.dense_neighbor(a)).index_select(0, neighbors)
        # Row 0 of edge_index is the receiving centre i, row 1 the sending neighbour j.
        filters = self.rbf_to_filter(rbf) * envelope  # G (phi g): zero at and beyond the cutoff
        v = own + scatter(filters * sent, centers, dim=0, dim_size=x.shape[0], reduce="sum")
        for block in self.residuals:
            v = block(v)
        return self.gate * x + self.dense_out(shifted_softplus(v))


class PhysNetModule(nn.Module):
    """One PhysNet module: interaction, atom-wise residual blocks (whose output feeds the next
    module), and an output block (residual blocks, then a bias-free linear map) giving this
    module's per-atom contributions."""

    def __init__(self, width: int, num_rbf: int, num_outputs: int, num_residual_interaction: int,
                 num_residual_atomic: int, num_residual_output: int) -> None:
        super().__init__()
        self.interaction = Interaction(width, num_rbf, num_residual_interaction)
        self.atomic = nn.ModuleList(Residual(width) for _ in range(num_residual_atomic))
        self.output_residuals = nn.ModuleList(Residual(width) for _ in range(num_residual_output))
        self.output = nn.Linear(width, num_outputs, bias=False)

    def forward(self, x: torch.Tensor, rbf: torch.Tensor, envelope: torch.Tensor, centers: torch.Tensor,
                neighbors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.interaction(x, rbf, envelope, centers, neighbors)
        for block in self.atomic:
            x = block(x)
        out = x
        for block in self.output_residuals:
            out = block(out)
        return x, self.output(shifted_softplus(out))


class PhysNet(AtomisticModel):
    """PhysNet on the ``adjacency_list`` representation (molecules and periodic crystals).

    Per-atom output columns: ``n_outputs`` graph-target contributions, then one partial charge
    when anything uses charges (electrostatics, or charges as the first per-atom target), then
    the per-atom targets that are not the charge. Settings are checked here, so a bad
    combination is one line at ``molplat validate``.
    """

    accepts = ("adjacency_list",)
    embedding_layer = "embedding"

    def __init__(self, n_outputs: int = 1, hidden_channels: int = 128, num_rbf: int = 64, num_modules: int = 5,
                 num_residual_interaction: int = 3, num_residual_atomic: int = 2, num_residual_output: int = 1,
                 cutoff: float = 5.0, readout: str = "sum", max_atomic_number: int = 100,
                 electrostatics: bool = False, dispersion: bool = False, total_charge: float = 0.0,
                 charge_output: str = "auto", n_atom_outputs: int = 0, heads: Heads | None = None,
                 statistics: TrainingStatistics | None = None) -> None:
        super().__init__(n_outputs)
        if readout not in READOUTS:
            raise ValidationError(f"[model] readout: must be one of {READOUTS}, got {readout!r}")
        if charge_output not in CHARGE_OUTPUTS:
            raise ValidationError(f"[model] charge_output: must be one of {CHARGE_OUTPUTS}, got {charge_output!r}")
        self.cutoff = float(cutoff)
        self.readout = readout
        self.max_atomic_number = max_atomic_number
        self.n_atom_outputs = n_atom_outputs
        self.electrostatics = bool(electrostatics)
        self.dispersion = bool(dispersion)
        self.total_charge = float(total_charge)

        graph_heads = heads.graph if heads is not None else ()
        atom_heads = heads.atom if heads is not None else ()
        if charge_output == "first" and n_atom_outputs == 0:
            raise ValidationError("[model] charge_output: 'first' makes the charges the first per-atom target, but "
                                  "the run has none: add one such as mulliken_charge, or use charge_output = 'auto'")
        self.charges_are_atom_output = n_atom_outputs > 0 and (
            charge_output == "first"
            or (charge_output == "auto" and bool(atom_heads) and atom_heads[0].units == "e"))
        self.has_charges = self.electrostatics or self.charges_are_atom_output
        self._check_energy_terms(graph_heads)

        # Which graph columns are summed (extensive) and which averaged; derived from settings and heads.
        if readout == "auto":
            summed = [bool(h.extensive) for h in graph_heads] if graph_heads else [True] * n_outputs
        else:
            summed = [readout == "sum"] * n_outputs
        self.register_buffer("summed", torch.tensor(summed, dtype=torch.bool), persistent=False)

        # Standardisation of the physical terms (eV and e) into the units of the model's outputs.
        energy_scale, charge_scale = 1.0, 1.0
        charge_reference = torch.zeros(max_atomic_number + 1)
        if statistics is not None and graph_heads and graph_heads[0].name in statistics.targets:
            energy_scale = _positive(statistics.targets[graph_heads[0].name].residual_std)
        if statistics is not None and self.charges_are_atom_output and atom_heads[0].name in statistics.targets:
            stats = statistics.targets[atom_heads[0].name]
            charge_scale = _positive(stats.residual_std)
            for z, value in stats.references.items():
                if int(z) <= max_atomic_number:
                    charge_reference[int(z)] = value
        self.register_buffer("energy_scale", torch.tensor(energy_scale))
        self.register_buffer("charge_scale", torch.tensor(charge_scale))
        self.register_buffer("charge_reference", charge_reference)

        self.num_free_atom_outputs = n_atom_outputs - int(self.charges_are_atom_output)
        num_columns = n_outputs + int(self.has_charges) + self.num_free_atom_outputs
        self.embedding = nn.Embedding(max_atomic_number + 1, hidden_channels)
        self.rbf = ExponentialRBF(num_rbf, cutoff)
        self.blocks = nn.ModuleList(
            PhysNetModule(hidden_channels, num_rbf, num_columns, num_residual_interaction, num_residual_atomic,
                          num_residual_output) for _ in range(num_modules))
        # The paper's element-wise scale and shift of every per-atom output.
        self.element_scale = nn.Embedding(max_atomic_number + 1, num_columns)
        self.element_shift = nn.Embedding(max_atomic_number + 1, num_columns)
        if self.dispersion:
            numbers = torch.arange(max_atomic_number + 1).clamp(1, len(D2_C6)) - 1
            c6 = torch.tensor(D2_C6, dtype=torch.float64)[numbers] * _J_NM6_PER_MOL
            self.register_buffer("d2_sqrt_c6", c6.sqrt().float(), persistent=False)
            self.register_buffer("d2_radius", torch.tensor(D2_R0)[numbers], persistent=False)
            # softplus(raw) = s6 > 0, starting at D2's PBE value
            self.d2_raw_s6 = nn.Parameter(torch.tensor(math.log(math.expm1(D2_S6))))
        self.reset_parameters()

    def _check_energy_terms(self, graph_heads) -> None:
        """The physical terms are energies in eV added to the first graph target, pooled by a sum."""
        terms = [name for name, on in (("electrostatics", self.electrostatics), ("dispersion", self.dispersion)) if on]
        if not terms:
            return
        what = " and ".join(terms)
        where = f"[model] {', '.join(terms)}:"
        if self.n_outputs == 0:
            raise ValidationError(f"{where} {what} add an energy to the first graph-level target, and the run "
                                  "has none")
        first = graph_heads[0] if graph_heads else None
        if first is not None and (first.classification or first.units not in ENERGY_UNITS):
            raise ValidationError(f"{where} {what} add an energy in eV to the first target, but {first.name!r} is "
                                  f"{'a classification target' if first.classification else f'in {first.units!r}'}: "
                                  "name an energy first in [dataset] target, or turn them off")
        summed = self.readout == "sum" or (self.readout == "auto" and (first is None or first.extensive))
        if not summed:
            raise ValidationError(f"{where} {what} add total energies, so the first target must be pooled by a sum: "
                                  "use readout = 'sum' (or 'auto' with an extensive first target)")

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # The paper starts the output layers at zero, so the first predictions are the trainer's means;
        # small instead of zero, so that every parameter gets a gradient from the first step.
        for block in self.blocks:
            nn.init.xavier_uniform_(block.output.weight, gain=0.05)
        # Unit-variance embedding entries, as the paper (uniform on [-sqrt3, sqrt3]).
        nn.init.uniform_(self.embedding.weight, -math.sqrt(3.0), math.sqrt(3.0))
        nn.init.ones_(self.element_scale.weight)
        nn.init.zeros_(self.element_shift.weight)

    def forward(self, batch) -> ModelOutput:
        numbers = batch["numbers"]
        graph = batch["batch"]
        num_graphs = int(batch["num_graphs"])
        centers, neighbors = batch["edge_index"]

        vectors = edge_vectors(batch)
        # sqrt has an infinite gradient at 0; no edge has zero length, but clamp for safety.
        distances = torch.sqrt((vectors * vectors).sum(-1).clamp_min(1e-12))
        rbf = self.rbf(distances)
        envelope = polynomial_cutoff(distances, self.cutoff).unsqueeze(-1)

        x = self.embedding(numbers)
        per_atom = None
        for block in self.blocks:
            x, contribution = block(x, rbf, envelope, centers, neighbors)
            per_atom = contribution if per_atom is None else per_atom + contribution
        per_atom = per_atom * self.element_scale(numbers) + self.element_shift(numbers)

        counts = batch["natoms"].to(x.dtype).clamp_min(1)
        summed = scatter(per_atom[:, :self.n_outputs], graph, dim=0, dim_size=num_graphs, reduce="sum")
        y = torch.where(self.summed, summed, summed / counts.unsqueeze(-1))

        atom_outputs = []
        energies = []  # physical terms in eV, added to the first target
        if self.has_charges:
            # The network predicts each charge in the target's standardised units around its element's
            # training mean (scale 1 e and no reference without statistics), so its outputs stay O(1).
            reference = self.charge_reference.to(x.dtype).index_select(0, numbers)
            raw = reference + self.charge_scale * per_atom[:, self.n_outputs]
            charges = self.corrected_charges(raw, graph, counts, num_graphs)
            if self.electrostatics:
                energies.append(self.electrostatic_energy(batch, charges, num_graphs))
            if self.charges_are_atom_output:
                atom_outputs.append(((charges - reference) / self.charge_scale).unsqueeze(-1))
        if self.dispersion:
            energies.append(self.dispersion_energy(numbers, distances, centers, neighbors, graph, num_graphs))
        if energies:
            energy = torch.stack(energies).sum(0) / self.energy_scale
            y = torch.cat([y[:, :1] + energy.unsqueeze(-1), y[:, 1:]], dim=1)

        pooled = scatter(x, graph, dim=0, dim_size=num_graphs, reduce="sum")
        if self.readout != "sum":
            pooled = pooled / counts.unsqueeze(-1)
        out = ModelOutput(y=y, atom_embedding=x, graph_embedding=pooled)
        if self.n_atom_outputs:
            atom_outputs.append(per_atom[:, self.n_outputs + int(self.has_charges):])
            out["atom_y"] = torch.cat(atom_outputs, dim=1)
        return out

    def corrected_charges(self, raw: torch.Tensor, graph: torch.Tensor, counts: torch.Tensor,
                          num_graphs: int) -> torch.Tensor:
        """q_i = q~_i - (sum_j q~_j - Q) / N: the excess spread evenly, so every structure's
        charges sum to the total charge Q exactly."""
        excess = scatter(raw, graph, dim=0, dim_size=num_graphs, reduce="sum") - self.total_charge
        return raw - (excess / counts).index_select(0, graph)

    def electrostatic_energy(self, batch, charges: torch.Tensor, num_graphs: int) -> torch.Tensor:
        """k_e sum_{i<j} q_i q_j chi(r_ij) over every pair of each molecule, [G] in eV."""
        pbc = batch.get("pbc")
        if pbc is not None and bool(pbc.any()):
            raise ValidationError(
                "[model] electrostatics: physnet's electrostatics handle molecules only (the Coulomb sum of a "
                "periodic crystal needs Ewald summation, which is not implemented): set electrostatics = false for "
                "periodic structures")
        positions = batch["positions"]
        first, second = intramolecular_pairs(batch["natoms"])
        vectors = positions.index_select(0, second) - positions.index_select(0, first)
        squared = (vectors * vectors).sum(-1)
        r = torch.sqrt(squared.clamp_min(1e-12))
        switch = polynomial_cutoff(2.0 * r, self.cutoff)
        chi = switch / torch.sqrt(squared + 1.0) + (1.0 - switch) / r
        pair_energy = COULOMB_CONSTANT * charges.index_select(0, first) * charges.index_select(0, second) * chi
        return scatter(pair_energy, batch["batch"].index_select(0, first), dim=0, dim_size=num_graphs,
                       reduce="sum")

    def dispersion_energy(self, numbers: torch.Tensor, distances: torch.Tensor, centers: torch.Tensor,
                          neighbors: torch.Tensor, graph: torch.Tensor, num_graphs: int) -> torch.Tensor:
        """-s6 sum C6_ij / r^6 f_damp(r) phi(r) over the radius graph (half the sum over directed
        edges, so each pair once; periodic images included), [G] in eV."""
        zi, zj = numbers.index_select(0, centers), numbers.index_select(0, neighbors)
        dtype = distances.dtype
        c6 = self.d2_sqrt_c6.to(dtype).index_select(0, zi) * self.d2_sqrt_c6.to(dtype).index_select(0, zj)
        radius = self.d2_radius.to(dtype).index_select(0, zi) + self.d2_radius.to(dtype).index_select(0, zj)
        damping = torch.sigmoid(D2_STEEPNESS * (distances / radius - 1.0))
        r6 = distances.pow(6)
        pair = c6 / r6 * damping * polynomial_cutoff(distances, self.cutoff)
        s6 = F.softplus(self.d2_raw_s6)
        return -0.5 * s6 * scatter(pair, graph.index_select(0, centers), dim=0, dim_size=num_graphs, reduce="sum")


def intramolecular_pairs(natoms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair i < j of atoms of the same structure (atoms stored structure by structure)."""
    device = natoms.device
    ends = torch.cumsum(natoms, 0)
    atom_ends = torch.repeat_interleave(ends, natoms)
    atoms = torch.arange(int(ends[-1]) if ends.numel() else 0, device=device)
    partners = atom_ends - atoms - 1  # atoms after i in its structure
    first = torch.repeat_interleave(atoms, partners)
    block_start = torch.repeat_interleave(torch.cumsum(partners, 0) - partners, partners)
    second = first + 1 + torch.arange(first.shape[0], device=device) - block_start
    return first, second


def _positive(value: float) -> float:
    """A scale from the statistics, 1 when it is zero or missing (a constant target)."""
    return float(value) if value and value > 0 else 1.0
