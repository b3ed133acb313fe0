"""Model checks: shapes, gradient flow, symmetry, forces and persistence, per accepted representation.

Symmetry and force checks run in float64 so that a failure means a broken model,
not rounding; a model must therefore build new tensors with the dtype of
``batch.positions``.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from molplat.representations.batch import Batch
from molplat.specs import ComponentSpec
from molplat.structure import Structure

from molplat_sdk.checks.common import label
from molplat_sdk.errors import ConformanceError
from molplat_sdk.structures import lattice_shifted, random_rotation

N_OUTPUTS = 2
ModelFactory = Callable[[], torch.nn.Module]


def cast(batch: Batch, dtype: torch.dtype) -> Batch:
    return Batch({k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                  for k, v in batch.items()})


def collate(representation: Any, structures: list[Structure], dtype: torch.dtype = torch.float32) -> Batch:
    """The batch as training sees it (float32), or built in float64 throughout for the exact checks."""
    return cast(representation.collate([representation.featurize(s) for s in structures]), dtype)


class ModelCase:
    """One model on one representation, built from the test's settings."""

    def __init__(self, spec: ComponentSpec, settings: dict[str, Any], rep_spec: ComponentSpec,
                 rep_settings: dict[str, Any]) -> None:
        self.spec, self.settings = spec, settings
        self.rep_name = rep_spec.name
        self.representation = rep_spec.build(**rep_settings)
        self.where = f"{label(spec)} on representation {rep_spec.name!r}"

    @property
    def periodic_ok(self) -> bool:
        """Point clouds carry no cell, so periodic invariances do not apply to them."""
        return hasattr(self.representation, "neighbor_pairs")

    def build(self, seed: int = 0) -> torch.nn.Module:
        torch.manual_seed(seed)
        try:
            model = self.spec.build(**self.settings, n_outputs=N_OUTPUTS)
        except Exception as exc:
            raise ConformanceError(self.where, f"building it fails: {type(exc).__name__}: {exc}",
                                   "make the factory build with its default settings plus n_outputs") from None
        if not isinstance(model, torch.nn.Module):
            raise ConformanceError(self.where, f"the factory returned {type(model).__name__}",
                                   "return a torch.nn.Module (subclass molplat.models.AtomisticModel)")
        if self.rep_name not in getattr(model, "accepts", ()) and not set(self.spec.accepts) & set(getattr(model, "accepts", ())):
            raise ConformanceError(self.where, f"the model's `accepts` {getattr(model, 'accepts', None)} disagrees "
                                   f"with the spec's {self.spec.accepts}", "declare the same names in both")
        return model

    def run(self, model: torch.nn.Module, structures: list[Structure], double: bool = True) -> dict[str, torch.Tensor]:
        batch = collate(self.representation, structures, torch.float64 if double else torch.float32)
        if double:
            model = model.double()
        try:
            return model(batch)
        except Exception as exc:
            hint = ("create new tensors with dtype=batch.positions.dtype" if double
                    else "check the model against the representation's batch fields")
            raise ConformanceError(self.where, f"forward fails{' in float64' if double else ''}: "
                                   f"{type(exc).__name__}: {exc}", hint) from None


def check_forward(case: ModelCase, structures: list[Structure]) -> None:
    model = case.build().eval()
    with torch.no_grad():
        out = case.run(model, structures, double=False)
    n_atoms, n_graphs = sum(len(s) for s in structures), len(structures)
    missing = {"y", "atom_embedding", "graph_embedding"} - set(out)
    if missing:
        raise ConformanceError(case.where, f"the output lacks {sorted(missing)}",
                               "return molplat.models.ModelOutput(y=..., atom_embedding=..., graph_embedding=...)")
    shapes = {"y": (n_graphs, N_OUTPUTS), "atom_embedding": (n_atoms, None), "graph_embedding": (n_graphs, None)}
    for key, (rows, cols) in shapes.items():
        value = out[key]
        if value.dim() != 2 or value.shape[0] != rows or (cols is not None and value.shape[1] != cols):
            want = f"[{rows}, {cols if cols is not None else 'F'}]"
            raise ConformanceError(case.where, f"output {key!r} has shape {list(value.shape)} for {n_graphs} structures "
                                   f"of {n_atoms} atoms, expected {want}",
                                   "y is [structures, n_outputs]; embeddings are [valid atoms, F] and [structures, F]")
        if not torch.isfinite(value).all():
            raise ConformanceError(case.where, f"output {key!r} has non-finite values",
                                   "guard divisions and logs (e.g. distances of zero, empty neighbour lists)")
    with torch.no_grad():
        together = case.run(model, structures)["y"]
        alone = torch.cat([case.run(model, [s])["y"] for s in structures])
    _assert_close(case, together, alone, "a structure's prediction depends on the others in its batch",
                  "pool per structure (index_add over batch.atom_graph_index()) and keep eval mode per structure")


def check_gradients(case: ModelCase, structures: list[Structure]) -> None:
    """Every parameter learns from y, and for force models also from an energy+forces loss
    (which differentiates twice, through the forces)."""
    model = case.build().train()
    batch = collate(case.representation, structures)
    batch["positions"] = batch["positions"].detach().requires_grad_(True)
    try:
        y = model(batch)["y"]
    except Exception as exc:
        raise ConformanceError(case.where, f"forward fails: {type(exc).__name__}: {exc}",
                               "check the model against the representation's batch fields") from None
    weights = torch.linspace(0.5, 1.5, y.numel(), dtype=y.dtype).reshape(y.shape)
    loss = (y * weights).sum()
    what = "y"
    if "forces" in case.spec.outputs:
        (grad,) = torch.autograd.grad(y[:, 0].sum(), batch["positions"], create_graph=True)
        loss = loss + grad.pow(2).sum()
        what = "y and the forces"
    loss.backward()
    dead = [name for name, p in model.named_parameters()
            if p.requires_grad and (p.grad is None or not torch.any(p.grad != 0))]
    if dead:
        raise ConformanceError(case.where, f"parameters get no gradient from {what}: {dead}",
                               "remove unused parameters, or make them part of the computation of y")
    bad = [name for name, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    if bad:
        raise ConformanceError(case.where, f"parameters get non-finite gradients: {bad}",
                               "avoid sqrt/norm of zero vectors (add a small epsilon or mask self-pairs)")


def _assert_close(case: ModelCase, got: torch.Tensor, want: torch.Tensor, what: str, fix: str) -> None:
    scale = max(1.0, float(want.abs().max()))
    error = float((got - want).abs().max())
    if not error <= 1e-5 * scale:
        raise ConformanceError(case.where, f"{what}: largest difference {error:.3g} (scale {scale:.3g})", fix)


def check_invariance(case: ModelCase, structures: list[Structure], rng: np.random.Generator) -> None:
    model = case.build().eval()
    usable = [s for s in structures if case.periodic_ok or not s.periodic]
    with torch.no_grad():
        reference = case.run(model, usable)["y"]
        for trial in range(2):
            rotation = random_rotation(rng)
            rotated = [s.transformed(rotation=rotation) for s in usable]
            _assert_close(case, case.run(model, rotated)["y"], reference, "predictions change under a rotation",
                          "use only distances (or invariant combinations of vectors) in the prediction")
            moved = [s.transformed(translation=rng.normal(scale=3.0, size=3)) for s in usable]
            _assert_close(case, case.run(model, moved)["y"], reference, "predictions change under a translation",
                          "use relative positions, never absolute coordinates")
            permuted = [s.transformed(permutation=rng.permutation(len(s))) for s in usable]
            _assert_close(case, case.run(model, permuted)["y"], reference,
                          "predictions change when the atoms are reordered",
                          "pool atoms with a sum or mean and index neighbours, not positions in the list")
            if case.periodic_ok:
                periodic = [i for i, s in enumerate(usable) if s.periodic]
                shifted = [lattice_shifted(s, atom=int(rng.integers(len(s))), rng=rng) if s.periodic else s
                           for s in usable]
                if periodic:
                    _assert_close(case, case.run(model, shifted)["y"], reference,
                                  "predictions change when an atom moves by a lattice vector",
                                  "build neighbours with periodic images (edge shifts) from batch.cell offsets")


def _energy_and_forces(case: ModelCase, model: torch.nn.Module, structure: Structure) -> tuple[torch.Tensor, torch.Tensor, Batch]:
    batch = collate(case.representation, [structure], torch.float64)
    batch["positions"] = batch["positions"].detach().requires_grad_(True)
    energy = model(batch)["y"][:, 0].sum()
    try:
        (grad,) = torch.autograd.grad(energy, batch["positions"])
    except RuntimeError as exc:
        raise ConformanceError(case.where, f"the energy is not differentiable in batch.positions: {exc}",
                               "compute distances from batch.positions without detach() or numpy round trips") from None
    return energy.detach(), batch.flat_atoms(-grad), batch


def check_forces(case: ModelCase, structures: list[Structure], rng: np.random.Generator) -> None:
    """Forces are minus the gradient of the energy (checked numerically) and rotate with the structure."""
    model = case.build().eval().double()
    for structure in [s for s in structures if case.periodic_ok or not s.periodic][:3]:
        energy, forces, batch = _energy_and_forces(case, model, structure)
        positions = batch["positions"].detach()
        flat = batch.flat_atoms(torch.arange(positions[..., 0].numel()).reshape(positions.shape[:-1]))
        h = 1e-4
        for atom in rng.choice(len(structure), size=min(2, len(structure)), replace=False):
            for axis in range(3):
                index = (*np.unravel_index(int(flat[atom]), positions.shape[:-1]), axis)
                numeric = []
                for sign in (1, -1):
                    shifted = positions.clone()
                    shifted[index] += sign * h
                    moved = Batch(batch)
                    moved["positions"] = shifted
                    with torch.no_grad():
                        numeric.append(float(model(moved)["y"][:, 0].sum()))
                derivative = (numeric[0] - numeric[1]) / (2 * h)
                analytic = float(forces[atom, axis])
                if abs(-derivative - analytic) > 1e-4 * max(1.0, abs(derivative)):
                    raise ConformanceError(
                        case.where, f"{structure.id}: force on atom {atom} axis {axis} is {analytic:.6g} but minus the "
                        f"numerical energy derivative is {-derivative:.6g}",
                        "make the energy a smooth function of batch.positions (no detach, no non-smooth cutoffs)")
        rotation = random_rotation(rng)
        _, rotated_forces, _ = _energy_and_forces(case, model, structure.transformed(rotation=rotation))
        _assert_close(case, rotated_forces, forces @ torch.from_numpy(rotation.T),
                      f"{structure.id}: forces do not rotate with the structure",
                      "compute the energy from invariant features of batch.positions")


def check_state_dict_round_trip(case: ModelCase, structures: list[Structure]) -> None:
    trained = case.build(seed=0).eval()
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    fresh = case.build(seed=1).eval()
    try:
        fresh.load_state_dict(torch.load(buffer, weights_only=True))
    except Exception as exc:
        raise ConformanceError(case.where, f"a saved state_dict does not load into a fresh model: {exc}",
                               "create every parameter and buffer in __init__ from the settings, none lazily") from None
    with torch.no_grad():
        before, after = case.run(trained, structures)["y"], case.run(fresh, structures)["y"]
    if not torch.equal(before, after):
        raise ConformanceError(case.where, "a fresh model loaded with the saved state_dict predicts differently",
                               "keep all state in parameters and registered buffers (register_buffer), not attributes")
