"""Model checks: shapes, gradient flow, symmetry, forces, smoothness at the cutoff, batch
independence and persistence, per accepted representation.

Models are built the way the core builds them (``molplat.models.build_model`` with heads
and training statistics). Symmetry, force and cutoff checks run in float64 throughout:
the representation collates in float64 (as the contract says) and nothing is rounded
before the model sees it, so a failure means a broken model, not rounding. A model must
therefore build new tensors with the dtype of ``batch.positions``.
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch

from molplat.data import TrainingStatistics, compute_statistics, make_sample
from molplat.models import Head, Heads, build_model
from molplat.representations import Batch
from molplat.specs import ComponentSpec
from molplat.structure import Structure

from molplat_sdk.checks.common import label
from molplat_sdk.checks.representation import not_float64
from molplat_sdk.errors import ConformanceError
from molplat_sdk.structures import lattice_shifted, random_rotation, tiny_structures

#: graph-level heads every model is built with (so a model that ignores n_outputs shows)
N_OUTPUTS = 2
#: relative tolerance of float64 comparisons
TOLERANCE = 1e-5
#: how far (Å) an atom is put on either side of the cutoff, and the relative energy jump allowed
CUTOFF_STEP = 1e-4
CUTOFF_JUMP = 1e-6
#: dropout draws new noise per call, so it is switched off in the training-mode check
DROPOUT = (torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d, torch.nn.AlphaDropout,
           torch.nn.FeatureAlphaDropout)


def model_heads(spec: ComponentSpec) -> Heads:
    """Two graph heads, plus one per-atom head for models that declare ``atom_property``."""
    graph = tuple(Head(f"y{k}") for k in range(N_OUTPUTS))
    atom = (Head("a0", level="atom"),) if "atom_property" in spec.outputs else ()
    return Heads(graph + atom)


def labelled(structure: Structure, heads: Heads) -> Structure:
    """``structure`` with made-up but finite labels for every head, and forces, so the
    TrainingStatistics a model factory receives hold real numbers."""
    numbers = structure.numbers.astype(np.float64)
    centred = structure.positions - structure.positions.mean(axis=0)
    targets = {h.name: float(-0.5 * len(structure) - 0.01 * numbers.sum() + k) for k, h in enumerate(heads.graph)}
    atom_targets = {h.name: 0.1 * numbers + k for k, h in enumerate(heads.atom)}
    return Structure(structure.numbers, structure.positions, structure.cell, structure.pbc, -0.1 * centred, targets,
                     structure.id, atom_targets)


def cast(batch: Batch, dtype: torch.dtype) -> Batch:
    """What the core's SampleCollator does once: every floating tensor to the training dtype."""
    return Batch({k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                  for k, v in batch.items()})


class ModelCase:
    """One model on one representation, built from the test's settings as the core builds it."""

    def __init__(self, spec: ComponentSpec, settings: dict[str, Any], rep_spec: ComponentSpec,
                 rep_settings: dict[str, Any]) -> None:
        self.spec, self.settings = spec, settings
        self.rep_name = rep_spec.name
        self.representation = rep_spec.build(**rep_settings)
        self.heads = model_heads(spec)
        self.where = f"{label(spec)} on representation {rep_spec.name!r}"
        self._statistics: dict[Heads, TrainingStatistics] = {}

    @property
    def periodic_ok(self) -> bool:
        """Point clouds carry no cell, so periodic invariances do not apply to them."""
        return hasattr(self.representation, "neighbor_pairs")

    @property
    def atom_heads(self) -> bool:
        return self.heads.n_atom > 0

    def statistics(self, heads: Heads) -> TrainingStatistics:
        """Statistics of the SDK's tiny structures (with made-up labels), as the core computes them."""
        if heads not in self._statistics:
            samples = [make_sample(labelled(s, heads), self.representation, heads) for s in tiny_structures()]
            self._statistics[heads] = compute_statistics(samples, heads)
        return self._statistics[heads]

    def build(self, seed: int = 0, heads: Heads | None = None) -> torch.nn.Module:
        heads = heads or self.heads
        statistics = self.statistics(heads)
        torch.manual_seed(seed)
        try:
            model = build_model(self.spec.load(), self.settings, heads, statistics)
        except Exception as exc:
            raise ConformanceError(self.where, f"building it fails: {type(exc).__name__}: {exc}",
                                   "make the factory build from its settings plus n_outputs (and n_atom_outputs, "
                                   "heads and statistics when its signature names them)") from None
        if not isinstance(model, torch.nn.Module):
            raise ConformanceError(self.where, f"the factory returned {type(model).__name__}",
                                   "return a torch.nn.Module (subclass molplat.models.AtomisticModel)")
        accepts = tuple(getattr(model, "accepts", ()))
        if self.rep_name not in accepts and not set(self.spec.accepts) & set(accepts):
            raise ConformanceError(self.where, f"the model's `accepts` {accepts} disagrees with the spec's "
                                   f"{self.spec.accepts}", "declare the same names in both")
        return model

    def batch(self, structures: list[Structure], dtype: torch.dtype) -> Batch:
        """The representation's batch in ``dtype``; in float64 nothing may have been rounded on the way."""
        batch = self.representation.collate([self.representation.featurize(s) for s in structures])
        coarse = not_float64(batch)
        if dtype == torch.float64 and coarse:
            raise ConformanceError(self.where, f"representation {self.rep_name!r} collates {coarse}, not float64, "
                                   "so the exact checks would see rounded geometry",
                                   "build every floating tensor of collate() in float64; the core casts it to "
                                   "the training dtype once (molplat.data.SampleCollator)")
        return cast(batch, dtype)

    def run(self, model: torch.nn.Module, structures: list[Structure], double: bool = True) -> dict[str, torch.Tensor]:
        batch = self.batch(structures, torch.float64 if double else torch.float32)
        if double:
            model = model.double()
        try:
            return model(batch)
        except Exception as exc:
            hint = ("create new tensors with dtype=batch.positions.dtype" if double
                    else "check the model against the representation's batch fields")
            raise ConformanceError(self.where, f"forward fails{' in float64' if double else ''}: "
                                   f"{type(exc).__name__}: {exc}", hint) from None


def _assert_close(case: ModelCase, got: torch.Tensor, want: torch.Tensor, what: str, fix: str) -> None:
    scale = max(1.0, float(want.abs().max())) if want.numel() else 1.0
    error = float((got - want).abs().max()) if want.numel() else 0.0
    if not error <= TOLERANCE * scale:
        raise ConformanceError(case.where, f"{what}: largest difference {error:.3g} (scale {scale:.3g})", fix)


def _split(values: torch.Tensor, structures: list[Structure]) -> list[torch.Tensor]:
    return list(torch.split(values, [len(s) for s in structures]))


def check_forward(case: ModelCase, structures: list[Structure]) -> None:
    """Output names, shapes and finiteness, and (eval mode) a structure's prediction independent of its batch."""
    model = case.build().eval()
    with torch.no_grad():
        out = case.run(model, structures, double=False)
    n_atoms, n_graphs = sum(len(s) for s in structures), len(structures)
    missing = {"y", "atom_embedding", "graph_embedding"} - set(out)
    if missing:
        raise ConformanceError(case.where, f"the output lacks {sorted(missing)}",
                               "return molplat.models.ModelOutput(y=..., atom_embedding=..., graph_embedding=...)")
    shapes = {"y": (n_graphs, N_OUTPUTS), "atom_embedding": (n_atoms, None), "graph_embedding": (n_graphs, None)}
    if case.atom_heads:
        if "atom_y" not in out:
            raise ConformanceError(case.where, "it declares outputs 'atom_property' but returns no 'atom_y'",
                                   "return ModelOutput(..., atom_y=[atoms, n_atom_outputs]) when n_atom_outputs > 0")
        shapes["atom_y"] = (n_atoms, case.heads.n_atom)
    for key, (rows, cols) in shapes.items():
        value = out[key]
        if value.dim() != 2 or value.shape[0] != rows or (cols is not None and value.shape[1] != cols):
            want = f"[{rows}, {cols if cols is not None else 'F'}]"
            raise ConformanceError(case.where, f"output {key!r} has shape {list(value.shape)} for {n_graphs} structures "
                                   f"of {n_atoms} atoms, expected {want}",
                                   "y is [structures, n_outputs]; atom_y is [valid atoms, n_atom_outputs]; embeddings "
                                   "are [valid atoms, F] and [structures, F]")
        if not torch.isfinite(value).all():
            raise ConformanceError(case.where, f"output {key!r} has non-finite values",
                                   "guard divisions and logs (e.g. distances of zero, empty neighbour lists)")
    fix = "pool per structure (index_add over batch.atom_graph_index()) and keep eval mode per structure"
    with torch.no_grad():
        together = case.run(model, structures)
        alone = [case.run(model, [s]) for s in structures]
    _assert_close(case, together["y"], torch.cat([a["y"] for a in alone]),
                  "a structure's prediction depends on the others in its batch", fix)
    if case.atom_heads:
        _assert_close(case, together["atom_y"], torch.cat([a["atom_y"] for a in alone]),
                      "a structure's per-atom predictions depend on the others in its batch", fix)


def check_gradients(case: ModelCase, structures: list[Structure]) -> None:
    """Every parameter learns from y (and atom_y), and for force models also from an energy+forces
    loss (which differentiates twice, through the forces)."""
    model = case.build().train()
    batch = case.batch(structures, torch.float32)
    batch["positions"] = batch["positions"].detach().requires_grad_(True)
    try:
        out = model(batch)
    except Exception as exc:
        raise ConformanceError(case.where, f"forward fails: {type(exc).__name__}: {exc}",
                               "check the model against the representation's batch fields") from None
    y = out["y"]
    loss = (y * torch.linspace(0.5, 1.5, y.numel(), dtype=y.dtype).reshape(y.shape)).sum()
    what = "y"
    if case.atom_heads:
        loss = loss + (out["atom_y"] * torch.linspace(0.5, 1.5, out["atom_y"].numel(), dtype=y.dtype)
                       .reshape(out["atom_y"].shape)).sum()
        what = "y and atom_y"
    if "forces" in case.spec.outputs:
        (grad,) = torch.autograd.grad(y[:, 0].sum(), batch["positions"], create_graph=True)
        loss = loss + grad.pow(2).sum()
        what += " and the forces"
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


def check_invariance(case: ModelCase, structures: list[Structure], rng: np.random.Generator) -> None:
    """y (and atom_y) unchanged by rotation, translation and lattice shifts; permuting the
    atoms leaves y unchanged and permutes atom_y the same way."""
    model = case.build().eval()
    usable = [s for s in structures if case.periodic_ok or not s.periodic]

    def compare(moved: list[Structure], what: str, fix: str, order: list[np.ndarray] | None = None) -> None:
        out = case.run(model, moved)
        _assert_close(case, out["y"], reference["y"], f"predictions change {what}", fix)
        if case.atom_heads:
            want = reference["atom_y"] if order is None else \
                torch.cat([a[p] for a, p in zip(_split(reference["atom_y"], usable), order)])
            _assert_close(case, out["atom_y"], want, f"per-atom predictions change {what}", fix)

    with torch.no_grad():
        reference = case.run(model, usable)
        for _ in range(2):
            rotation = random_rotation(rng)
            compare([s.transformed(rotation=rotation) for s in usable], "under a rotation",
                    "use only distances (or invariant combinations of vectors) in the prediction")
            compare([s.transformed(translation=rng.normal(scale=3.0, size=3)) for s in usable], "under a translation",
                    "use relative positions, never absolute coordinates")
            order = [rng.permutation(len(s)) for s in usable]
            compare([s.transformed(permutation=p) for s, p in zip(usable, order)], "when the atoms are reordered",
                    "pool atoms with a sum or mean, index neighbours (not positions in the list), and return atom_y "
                    "in the batch's atom order", order)
            if case.periodic_ok and any(s.periodic for s in usable):
                shifted = [lattice_shifted(s, atom=int(rng.integers(len(s))), rng=rng) if s.periodic else s
                           for s in usable]
                compare(shifted, "when an atom moves by a lattice vector",
                        "build neighbours with periodic images (edge shifts) from batch.cell offsets")


def _energy_and_forces(case: ModelCase, model: torch.nn.Module,
                       structures: list[Structure]) -> tuple[torch.Tensor, torch.Tensor, Batch]:
    """Energies (y[:, 0]) [G] and forces [N, 3] of a float64 batch, and the batch."""
    batch = case.batch(structures, torch.float64)
    batch["positions"] = batch["positions"].detach().requires_grad_(True)
    try:
        energy = model(batch)["y"][:, 0]
    except Exception as exc:
        raise ConformanceError(case.where, f"forward fails in float64: {type(exc).__name__}: {exc}",
                               "create new tensors with dtype=batch.positions.dtype") from None
    try:
        (grad,) = torch.autograd.grad(energy.sum(), batch["positions"])
    except RuntimeError as exc:
        raise ConformanceError(case.where, f"the energy is not differentiable in batch.positions: {exc}",
                               "compute distances from batch.positions without detach() or numpy round trips") from None
    return energy.detach(), batch.flat_atoms(-grad), batch


def check_forces(case: ModelCase, structures: list[Structure], rng: np.random.Generator) -> None:
    """Forces are minus the gradient of the energy (checked numerically) and rotate with the structure."""
    model = case.build().eval().double()
    for structure in [s for s in structures if case.periodic_ok or not s.periodic][:3]:
        _, forces, batch = _energy_and_forces(case, model, [structure])
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
        _, rotated_forces, _ = _energy_and_forces(case, model, [structure.transformed(rotation=rotation)])
        _assert_close(case, rotated_forces, forces @ torch.from_numpy(rotation.T),
                      f"{structure.id}: forces do not rotate with the structure",
                      "compute the energy from invariant features of batch.positions")


def cutoff_skip_reason(case: ModelCase) -> str | None:
    """Why the cutoff check does not apply to ``case``, or None when it does."""
    if "energy" not in case.spec.outputs:
        return "the model predicts no energy"
    if not case.periodic_ok or getattr(case.representation, "cutoff", None) is None:
        return f"representation {case.rep_name!r} builds no neighbour list with a cutoff"
    if case.spec.setting("cutoff") is None and not hasattr(case.build(), "cutoff"):
        return "the model declares no cutoff"
    return None


def across_cutoff(cutoff: float, side: int) -> list[Structure]:
    """Two and three atoms, an oxygen ``CUTOFF_STEP`` Å inside (side -1) or outside (+1) the
    cutoff of the carbon; every other pair stays well inside or well outside it."""
    r = cutoff + side * CUTOFF_STEP
    pair = Structure([6, 8], [[0.0, 0.0, 0.0], [r, 0.0, 0.0]], id=f"C-O at {r:.4f} Å")
    trio = Structure([6, 1, 8], [[0.0, 0.0, 0.0], [-0.6, 0.9, 0.0], [r, 0.0, 0.0]], id=f"C(H)-O at {r:.4f} Å")
    return [pair, trio]


def check_cutoff_continuity(case: ModelCase) -> None:
    """The energy does not jump when a neighbour crosses the representation's cutoff: it catches
    a model whose own cutoff exceeds the representation's and pair terms without an envelope."""
    model = case.build().eval().double()
    cutoff = float(case.representation.cutoff)
    with torch.no_grad():
        inside = case.run(model, across_cutoff(cutoff, -1))["y"][:, 0]
        outside = case.run(model, across_cutoff(cutoff, +1))["y"][:, 0]
    for k, structure in enumerate(across_cutoff(cutoff, -1)):
        jump = float((inside[k] - outside[k]).abs())
        scale = max(1.0, float(inside[k].abs()), float(outside[k].abs()))
        if jump > CUTOFF_JUMP * scale:
            own = getattr(model, "cutoff", case.settings.get("cutoff"))
            larger = own is not None and float(own) > cutoff
            beyond = f" (the model's own cutoff, {own} Å, is larger)" if larger else ""
            raise ConformanceError(
                case.where, f"the energy jumps by {jump:.3g} (scale {scale:.3g}) when the O of {len(structure)} atoms "
                f"moves from {cutoff - CUTOFF_STEP:.4f} to {cutoff + CUTOFF_STEP:.4f} Å, across the representation's "
                f"cutoff of {cutoff} Å{beyond}",
                "multiply every pair term by an envelope that falls smoothly to zero at the cutoff, such as "
                "0.5 (cos(pi d / rc) + 1), and keep the model's cutoff at most the representation's")


def check_train_mode_independence(case: ModelCase, structures: list[Structure]) -> None:
    """In training mode (built with forces trained), a structure's energy and forces do not depend
    on the other structures of its batch: normalisation over the batch makes them."""
    model = case.build(heads=Heads.single(forces=True)).double().train()
    for module in model.modules():
        if isinstance(module, DROPOUT):
            module.eval()
    usable = [s for s in structures if case.periodic_ok or not s.periodic]
    energies, forces, _ = _energy_and_forces(case, model, usable)
    fix = ("normalise per structure, never over the batch: with heads.forces set, replace BatchNorm over atoms by "
           "LayerNorm or per-structure statistics (the factory receives `heads`)")
    for structure, energy, force in zip(usable, energies, _split(forces, usable)):
        alone_energy, alone_forces, _ = _energy_and_forces(case, model, [structure])
        _assert_close(case, energy.reshape(1), alone_energy,
                      f"in training mode, the energy of {structure.id!r} depends on the other structures in its batch",
                      fix)
        _assert_close(case, force, alone_forces,
                      f"in training mode, the forces of {structure.id!r} depend on the other structures in its batch",
                      fix)


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


def check_embedding_layer(case: ModelCase, structures: list[Structure]) -> None:
    """The model names its per-atom input embedding (``embedding_layer``), as explainers need it: a
    submodule called once per forward, whose output has one row per atom and moves ``y`` when it moves."""
    from molplat.models import atom_embedding_module

    model = case.build().eval().double()
    fix = ("set the class attribute embedding_layer to the name of the model's per-atom input embedding "
           "(e.g. embedding_layer = \"embedding\" for self.embedding = nn.Embedding(...))")
    try:
        layer = atom_embedding_module(model)
    except ValueError as exc:
        raise ConformanceError(case.where, str(exc), fix) from None
    name = model.embedding_layer
    n_atoms = sum(len(s) for s in structures)
    seen: list[Any] = []

    def record(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        seen.append(output)

    batch = case.batch(structures, torch.float64)
    handle = layer.register_forward_hook(record)
    try:
        with torch.no_grad():
            reference = model(batch)["y"]
    finally:
        handle.remove()
    if len(seen) != 1:
        raise ConformanceError(case.where, f"embedding_layer {name!r} ran {len(seen)} times in one forward",
                               "name a layer the forward calls exactly once, on every atom of the batch")
    output = seen[0]
    rows = batch.flat_atoms(output) if isinstance(output, torch.Tensor) and output.dim() >= 2 else output
    if not isinstance(rows, torch.Tensor) or rows.dim() != 2 or rows.shape[0] != n_atoms:
        shape = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ConformanceError(case.where, f"embedding_layer {name!r} returns {shape} for {len(structures)} "
                               f"structures of {n_atoms} atoms, expected [{n_atoms}, F] (or a padded layout "
                               "that batch.flat_atoms turns into it)",
                               "name the layer that embeds each atom (one row per atom of the batch, in batch order)")
    noise = torch.from_numpy(np.random.default_rng(0).normal(size=tuple(output.shape))).to(output.dtype)
    handle = layer.register_forward_hook(lambda module, inputs, out: out + 0.5 * noise)
    try:
        with torch.no_grad():
            moved = model(batch)["y"]
    finally:
        handle.remove()
    change = (moved - reference).abs().amax(dim=1)
    still = [s.id for s, c in zip(structures, change) if not float(c) > TOLERANCE * max(1.0, float(reference.abs().max()))]
    if still:
        raise ConformanceError(case.where, f"changing the output of embedding_layer {name!r} leaves y of {still} "
                               "unchanged", "name the per-atom embedding that y is computed from, not a side branch")


def check_graph_embedding(case: ModelCase, structures: list[Structure], rng: np.random.Generator) -> None:
    """``graph_embedding`` (the second-to-last layer, one row per structure) belongs to its structure alone:
    the same in any batch, unchanged by rotation, translation and reordering, and different for different
    structures, so maps and roughness computed from it describe the structures."""
    model = case.build().eval()
    usable = [s for s in structures if case.periodic_ok or not s.periodic]
    with torch.no_grad():
        together = case.run(model, usable)["graph_embedding"]
        alone = torch.cat([case.run(model, [s])["graph_embedding"] for s in usable])
        _assert_close(case, together, alone, "a structure's graph_embedding depends on the others in its batch",
                      "pool per structure (index_add over batch.atom_graph_index())")
        rotation = random_rotation(rng)
        moved = [s.transformed(rotation=rotation, translation=rng.normal(scale=3.0, size=3)) for s in usable]
        _assert_close(case, case.run(model, moved)["graph_embedding"], together,
                      "graph_embedding changes under a rotation and translation",
                      "return the pooled invariant (scalar) features as graph_embedding, not vectors or positions")
        order = [rng.permutation(len(s)) for s in usable]
        reordered = [s.transformed(permutation=p) for s, p in zip(usable, order)]
        _assert_close(case, case.run(model, reordered)["graph_embedding"], together,
                      "graph_embedding changes when the atoms are reordered", "pool the atoms with a sum or mean")
    rows = together.double()
    distinct = {tuple(np.round(row.numpy(), 9)) for row in rows}
    if len(usable) > 1 and len(distinct) == 1:
        raise ConformanceError(case.where, f"graph_embedding is the same for all {len(usable)} different structures",
                               "return the learned per-structure features that the output layer reads")


#: how the calculator check moves the atoms between calls: displacements (Å) below and above skin / 2
CALCULATOR_SKIN = 0.4
CALCULATOR_MOVES = (0.05, 0.05, 0.3, 0.05)


def check_calculator(case: ModelCase, structures: list[Structure], rng: np.random.Generator) -> None:
    """The core's ASE calculator, which reuses the model input and a neighbour list with a skin
    between steps, gives this model's energy and forces of a full rebuild at every step, and
    its stress is the strain derivative of the energy (checked numerically on two components)."""
    import warnings

    from molplat.predict import TrainedModel
    from molplat.training import AtomisticTask

    import copy

    pristine = case.build().eval().double()
    model = copy.deepcopy(pristine)  # the calculator's; every reference below gets a fresh copy
    structure = next((s for s in structures if s.periodic), structures[0]) if case.periodic_ok else \
        next(s for s in structures if not s.periodic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not trained on forces": the check wants the gradient anyway
        trained = TrainedModel(AtomisticTask(model, case.heads), case.representation, ".")
        calculator = trained.calculator(dtype="float64", skin=CALCULATOR_SKIN)
    atoms = structure.to_atoms()
    for step, size in enumerate(CALCULATOR_MOVES):
        atoms.positions += rng.normal(scale=size / 2, size=atoms.positions.shape)
        try:
            energy, forces = calculator.get_potential_energy(atoms), calculator.get_forces(atoms)
        except Exception as exc:
            raise ConformanceError(case.where, f"the ASE calculator fails at step {step}: {type(exc).__name__}: {exc}",
                                   "read only the batch fields the representation collates (molplat.calculator "
                                   "updates positions, edge_index, edge_shift and cell_offsets in place)") from None
        moved = Structure(atoms.numbers, atoms.positions, structure.cell, structure.pbc, id=structure.id)
        want_energy, want_forces, _ = _energy_and_forces(case, copy.deepcopy(pristine), [moved])
        _assert_close(case, torch.tensor([energy, *forces.reshape(-1)]),
                      torch.cat([want_energy[:1], want_forces.reshape(-1)]),
                      f"{structure.id}: the calculator's energy and forces at step {step} differ from a full rebuild",
                      "compute everything from the batch the calculator hands over; cache nothing between calls")
    if not structure.periodic or case.rep_name not in ("adjacency_list", "adjacency_matrix", "point_cloud"):
        return
    from ase.stress import voigt_6_to_full_3x3_stress

    stress = voigt_6_to_full_3x3_stress(calculator.get_stress(atoms))
    h, volume = 1e-5, abs(float(np.linalg.det(atoms.cell.array)))
    for a, b in ((0, 0), (0, 1)):
        energies = []
        for sign in (1, -1):
            strain = np.zeros((3, 3))
            strain[a, b] += sign * h / 2
            strain[b, a] += sign * h / 2
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
            energies.append(calculator.get_potential_energy(strained))
        numeric = (energies[0] - energies[1]) / (2 * h) / volume
        if abs(stress[a, b] - numeric) > 1e-5 * max(1e-2, abs(numeric)):
            raise ConformanceError(
                case.where, f"{structure.id}: stress[{a}, {b}] is {stress[a, b]:.6g} eV/Å³ but the strain derivative of "
                f"the energy over the volume is {numeric:.6g}",
                "compute periodic shifts from batch.cell (or the representation's shift fields), not a cached cell")
