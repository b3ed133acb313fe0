"""Per-atom attributions of one trained model, through Captum's own attribution classes.

Captum treats dimension 0 of every input as the examples. A structure is one example:
positions enter as ``[S, N, 3]`` and the forward function runs a batch of S copies of the
structure with those positions. Atomic numbers are attributed through the model's named
embedding layer (``embedding_layer``, the model contract): a small view module after it
presents that layer's output as ``[S, F, N]`` (examples, channels, atoms as the spatial
axis), which is the layout Captum's layer methods read, and multiplies each atom's row by
a gate that is 1 for the structure itself and 0 for the baseline, so the baseline of the
layer methods is the zero embedding.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from molplat.models import atom_embedding_module
from molplat.representations import Batch
from molplat.structure import Structure

METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "cam", "grad_cam")
#: methods that attribute through a layer only (they have no meaning on positions)
LAYER_METHODS = ("cam", "grad_cam")
INPUTS = ("numbers", "positions")
#: methods whose per-atom values are never negative (norms of gradients, ReLU of Grad-CAM)
NON_NEGATIVE = ("saliency", "grad_cam")
#: atoms in one forward of integrated gradients' copies; more steps run in several chunks
ATOMS_PER_FORWARD = 20_000


class _AtomsAsExamples(nn.Module):
    """The embedding layer's per-atom rows as ``[S, F, N]``, each atom's row times its gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: torch.Tensor | None = None
        self.padded = False

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        gate = self.gate
        assert gate is not None, "set the gate before calling the model"
        copies, atoms = gate.shape
        self.padded = rows.dim() == 3
        per_example = rows if self.padded else rows.reshape(copies, atoms, -1)
        return (per_example * gate.unsqueeze(-1).to(per_example.dtype)).transpose(1, 2)


class _ExamplesAsAtoms(nn.Module):
    """Back to the layout the model gave: ``[S * N, F]``, or ``[S, N, F]`` for padded batches."""

    def __init__(self, view: _AtomsAsExamples) -> None:
        super().__init__()
        self._view = [view]  # a list, so the view is not registered twice

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        rows = examples.transpose(1, 2)
        return rows if self._view[0].padded else rows.reshape(-1, rows.shape[-1])


@dataclass
class AtomAttribution:
    """One map: per-atom values for one structure, target and input, and the prediction it explains."""

    values: np.ndarray  # [N]
    prediction: float
    #: integrated gradients only: sum of attributions minus (f(x) - f(baseline))
    completeness_error: float | None = None
    #: f(x) - f(baseline), for integrated gradients
    difference: float | None = None


class Attributor:
    """A float64 copy of a trained task (``molplat.training.AtomisticTask``) whose embedding layer
    Captum can see, and the forward functions the attribution methods call."""

    def __init__(self, task: nn.Module, representation) -> None:
        self.task = copy.deepcopy(task).double().eval()
        for parameter in self.task.parameters():
            parameter.requires_grad_(False)
        model = self.task.model
        embedding = atom_embedding_module(model)  # ValueError naming the fix when undeclared
        self.layer = _AtomsAsExamples()
        model.set_submodule(model.embedding_layer, nn.Sequential(embedding, self.layer, _ExamplesAsAtoms(self.layer)))
        self.representation = representation
        self._copies: dict[int, Batch] = {}
        self._structure: Structure | None = None

    # -- the structure under study -------------------------------------------------------
    def use(self, structure: Structure) -> "Attributor":
        """Explain ``structure`` next, moved so its atoms' centre is the origin: the model is blind
        to translations, and attributions that multiply by positions then do not depend on where
        the structure happened to sit."""
        centred = structure.transformed(translation=-structure.positions.mean(axis=0))
        self._structure = centred
        self._features = self.representation.featurize(centred)
        self._copies = {}
        return self

    @property
    def structure(self) -> Structure:
        assert self._structure is not None, "call use(structure) first"
        return self._structure

    @property
    def has_positions(self) -> bool:
        return "positions" in self._batch(1)

    def _batch(self, copies: int) -> Batch:
        if copies not in self._copies:
            batch = self.representation.collate([self._features] * copies)
            self._copies[copies] = Batch({k: v.double() if isinstance(v, torch.Tensor) and v.is_floating_point()
                                          else v for k, v in batch.items()})
        return Batch(self._copies[copies])

    @property
    def copies_per_forward(self) -> int:
        """How many copies of the structure one forward may hold (integrated gradients' chunks)."""
        return max(1, ATOMS_PER_FORWARD // len(self.structure))

    def positions(self) -> torch.Tensor:
        """The centred positions as one example, ``[1, N, 3]``."""
        return torch.as_tensor(self.structure.positions, dtype=torch.float64).unsqueeze(0).requires_grad_(True)

    def gate(self) -> torch.Tensor:
        """Every atom's embedding switched on, as one example, ``[1, N]``."""
        return torch.ones(1, len(self.structure), dtype=torch.float64)

    # -- forward functions Captum calls ----------------------------------------------------
    def predict(self, positions: torch.Tensor | None = None, gate: torch.Tensor | None = None) -> torch.Tensor:
        """Predictions in target units ``[S, T]`` of S copies with the given positions and gates."""
        given = positions if positions is not None else gate
        copies = 1 if given is None else int(given.shape[0])
        batch = self._batch(copies)
        if positions is not None:
            stored = batch["positions"]
            batch["positions"] = positions.reshape(stored.shape).to(stored.dtype)
        self.layer.gate = gate if gate is not None else torch.ones(copies, len(self.structure), dtype=torch.float64)
        try:
            return self.task(batch, forces=False)["y"]
        finally:
            self.layer.gate = None

    def of_positions(self, positions: torch.Tensor) -> torch.Tensor:
        return self.predict(positions=positions)

    def of_gate(self, gate: torch.Tensor) -> torch.Tensor:
        return self.predict(gate=gate)

    # -- the methods -----------------------------------------------------------------------
    def attribute(self, method: str, kind: str, target: int, n_steps: int = 50,
                  baseline_scale: float = 0.0) -> AtomAttribution:
        """Per-atom attributions of target column ``target`` by ``method`` for input ``kind``."""
        if method not in METHODS or kind not in INPUTS:
            raise ValueError(f"unknown method {method!r} or input {kind!r}")
        if kind == "positions" and method in LAYER_METHODS:
            raise ValueError(f"{method} attributes through the embedding layer only, not positions")
        with torch.no_grad():
            prediction = float(self.predict()[0, target])
        run = _POSITION_METHODS[method] if kind == "positions" else _LAYER_METHODS_BY_NAME[method]
        values, delta, difference = run(self, target, n_steps, baseline_scale)
        values = values.detach().double().numpy().reshape(-1)
        return AtomAttribution(values, prediction, delta, difference)


def _per_atom_over(values: torch.Tensor, dim: int, how: str) -> torch.Tensor:
    return values.norm(dim=dim) if how == "norm" else values.sum(dim=dim)


def _positions_saliency(a: Attributor, target: int, n_steps: int, scale: float):
    from captum.attr import Saliency

    grads = Saliency(a.of_positions).attribute(a.positions(), target=target, abs=False)
    return grads[0].norm(dim=-1), None, None  # the gradient's length: unchanged by rotations


def _positions_input_x_gradient(a: Attributor, target: int, n_steps: int, scale: float):
    from captum.attr import InputXGradient

    values = InputXGradient(a.of_positions).attribute(a.positions(), target=target)
    return values[0].sum(dim=-1), None, None  # r_i . dy/dr_i: a dot product, unchanged by rotations


def _positions_integrated_gradients(a: Attributor, target: int, n_steps: int, scale: float):
    from captum.attr import IntegratedGradients

    x = a.positions()
    baseline = scale * x
    values, delta = IntegratedGradients(a.of_positions).attribute(
        x, baselines=baseline, target=target, n_steps=n_steps, return_convergence_delta=True,
        internal_batch_size=a.copies_per_forward)
    with torch.no_grad():
        difference = float(a.of_positions(x)[0, target] - a.of_positions(baseline)[0, target])
    return values[0].sum(dim=-1), float(delta[0]), difference


def _layer_saliency(a: Attributor, target: int, n_steps: int, scale: float):
    from captum.attr import LayerGradientXActivation

    grads = LayerGradientXActivation(a.of_gate, a.layer, multiply_by_inputs=False).attribute(a.gate(), target=target)
    return grads[0].norm(dim=0), None, None  # [F, N] -> length of each atom's gradient


def _layer_input_x_gradient(a: Attributor, target: int, n_steps: int, scale: float):
    from captum.attr import LayerGradientXActivation

    values = LayerGradientXActivation(a.of_gate, a.layer).attribute(a.gate(), target=target)
    return values[0].sum(dim=0), None, None


def _layer_integrated_gradients(a: Attributor, target: int, n_steps: int, scale: float):
    from captum.attr import LayerIntegratedGradients

    gate = a.gate()
    values, delta = LayerIntegratedGradients(a.of_gate, a.layer).attribute(
        gate, baselines=torch.zeros_like(gate), target=target, n_steps=n_steps, return_convergence_delta=True,
        internal_batch_size=a.copies_per_forward)
    with torch.no_grad():
        difference = float(a.of_gate(gate)[0, target] - a.of_gate(torch.zeros_like(gate))[0, target])
    return values[0].sum(dim=0), float(delta[0]), difference


def _cam(relu: bool) -> Callable:
    def run(a: Attributor, target: int, n_steps: int, scale: float):
        from captum.attr import LayerGradCam

        # [1, F, N]: Captum averages the gradient over the atoms (the spatial axis) for each
        # channel's weight, then sums weight x activation over the channels, per atom
        values = LayerGradCam(a.of_gate, a.layer).attribute(a.gate(), target=target, relu_attributions=relu)
        return values[0, 0], None, None
    return run


_POSITION_METHODS = {
    "saliency": _positions_saliency,
    "input_x_gradient": _positions_input_x_gradient,
    "integrated_gradients": _positions_integrated_gradients,
}
_LAYER_METHODS_BY_NAME = {
    "saliency": _layer_saliency,
    "input_x_gradient": _layer_input_x_gradient,
    "integrated_gradients": _layer_integrated_gradients,
    "cam": _cam(relu=False),
    "grad_cam": _cam(relu=True),
}
