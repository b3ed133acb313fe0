"""The explainer components: attribute a trained run's predictions to its atoms, write the
values as CSV and the structures as coloured drawings, and hand back an Explanation."""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from molplat.errors import RunError, ValidationError
from molplat.files import atomic_write_text
from molplat.results import Explanation, RunContext

from molplat_captum.attribution import INPUTS, LAYER_METHODS, METHODS, NON_NEGATIVE

CSV_NAME = "attributions.csv"
COLUMNS = ("structure", "split", "target", "units", "input", "atom", "element", "attribution", "prediction")


class CaptumExplainer:
    """One attribution method, run on the first ``num_structures`` structures of a split."""

    def __init__(self, method: str, inputs: Sequence[str] | None = None, split: str = "test",
                 num_structures: int = 8, num_drawings: int = 4, n_steps: int = 50,
                 positions_baseline_scale: float = 2.0) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown attribution method {method!r}")
        inputs = list(inputs) if inputs is not None else (["numbers"] if method in LAYER_METHODS else list(INPUTS))
        where = f"[[explain]] {method} inputs"
        problems = []
        if not inputs:
            problems.append(f"{where}: the list is empty; name one or both of {list(INPUTS)}")
        if len(set(inputs)) != len(inputs):
            problems.append(f"{where}: {inputs} names an input twice; list each once")
        if method in LAYER_METHODS and "positions" in inputs:
            problems.append(f"{where}: {method} attributes through the model's embedding layer and has no meaning "
                            "for positions; set inputs = [\"numbers\"] (saliency, input_x_gradient and "
                            "integrated_gradients take positions)")
        if num_drawings > num_structures:
            problems.append(f"[[explain]] {method} num_drawings: {num_drawings} drawings of {num_structures} "
                            "structures; set num_drawings <= num_structures")
        if problems:
            raise ValidationError(problems)
        self.method, self.inputs, self.split = method, inputs, split
        self.num_structures, self.num_drawings = num_structures, num_drawings
        self.n_steps, self.positions_baseline_scale = n_steps, positions_baseline_scale

    def check_pipeline(self, pipeline: Any) -> list[str]:
        """Refuse a pipeline that lists this method twice: both would write explain/METHOD and the same
        summary entry."""
        same = [c for c in getattr(pipeline, "explainers", []) if c.spec.name == self.method]
        if len(same) > 1:
            return [f"{self.method} is listed {len(same)} times, and each would overwrite the other's explain/"
                    f"{self.method} files and summary entry; list it once (one method, one table)"]
        return []

    def run(self, context: RunContext) -> Explanation:
        from molplat_captum.attribution import Attributor
        from molplat_captum.drawing import draw

        structures = list(context.splits.get(self.split, ()))[: self.num_structures]
        if not structures:
            raise RunError(f"[[explain]] {self.method}: the {self.split!r} split has no structures to explain; "
                           "choose split = \"train\", \"val\" or \"test\" with structures in it")
        heads = context.model.heads.graph
        if not heads:
            raise RunError(f"[[explain]] {self.method}: the run predicts no per-structure target to attribute")
        context.model.check(structures, where=f"[[explain]] {self.method}: ")
        try:
            attributor = Attributor(context.model.members[0], context.model.representation)
        except ValueError as exc:
            raise RunError(f"[[explain]] {self.method}: {exc}") from None
        folder = context.directory("explain", self.method)
        rows: list[dict[str, Any]] = []
        per_atom: dict[str, list[float]] = {}
        errors: list[float] = []
        files: list[str] = []
        for index, structure in enumerate(structures):
            attributor.use(structure)
            if "positions" in self.inputs and not attributor.has_positions:
                raise RunError(f"[[explain]] {self.method}: representation {type(context.model.representation).__name__}"
                               " gives the model no positions to attribute; set inputs = [\"numbers\"]")
            panels: list[tuple[str, np.ndarray]] = []
            for k, head in enumerate(heads):
                for kind in self.inputs:
                    result = attributor.attribute(self.method, kind, k, self.n_steps, self.positions_baseline_scale)
                    if not np.isfinite(result.values).all():
                        raise RunError(f"[[explain]] {self.method}: non-finite attributions for {structure.id!r} "
                                       f"({head.name}, {kind}); the model's gradients are not finite there")
                    if result.completeness_error is not None:
                        errors.append(abs(result.completeness_error) / max(abs(result.difference or 0.0), 1e-12))
                    per_atom.setdefault(structure.id, result.values.tolist())
                    panels.append((f"{head.name} ({kind})", result.values, _label(self.method, kind, head.units)))
                    rows += _rows(structure, self.split, head, kind, result)
            if index < self.num_drawings:
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", structure.id)[:80] or f"structure-{index}"
                path = draw(folder / f"{index:03d}-{name}.png", structure, panels, self.method in NON_NEGATIVE)
                files.append(context.relative(path))
        table = folder / CSV_NAME
        atomic_write_text(table, _csv(rows))
        metrics: dict[str, float] = {"structures": float(len(structures)), "maps": float(len(heads) * len(self.inputs))}
        if errors:
            metrics["completeness_relative_error_max"] = float(max(errors))
        return Explanation(metrics=metrics, files=[context.relative(table), *files], per_atom=per_atom)


def _label(method: str, kind: str, units: str) -> str:
    """The colour bar's label: what the values are, in which units."""
    if method == "saliency":
        per = "Å" if kind == "positions" else "embedding unit"
        return f"|gradient| ({units or 'target'} per {per})"
    name = {"input_x_gradient": "input x gradient", "integrated_gradients": "integrated gradients", "cam": "CAM",
            "grad_cam": "Grad-CAM"}[method]
    return f"{name} ({units})" if units else name


def _rows(structure, split: str, head, kind: str, result) -> list[dict[str, Any]]:
    from ase.data import chemical_symbols

    return [{"structure": structure.id, "split": split, "target": head.name, "units": head.units, "input": kind,
             "atom": i, "element": chemical_symbols[int(z)], "attribution": float(v), "prediction": result.prediction}
            for i, (z, v) in enumerate(zip(structure.numbers, result.values))]


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def saliency(**settings: Any) -> CaptumExplainer:
    return CaptumExplainer("saliency", **settings)


def input_x_gradient(**settings: Any) -> CaptumExplainer:
    return CaptumExplainer("input_x_gradient", **settings)


def integrated_gradients(**settings: Any) -> CaptumExplainer:
    return CaptumExplainer("integrated_gradients", **settings)


def cam(**settings: Any) -> CaptumExplainer:
    return CaptumExplainer("cam", **settings)


def grad_cam(**settings: Any) -> CaptumExplainer:
    return CaptumExplainer("grad_cam", **settings)
