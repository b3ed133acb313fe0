"""A trained model loaded from its run directory, for the CLI, notebooks and stages.

Loading reads the run-directory contract (``molplat.rundir``): the resolved pipeline
and a checkpoint read with ``weights_only=True``. No code from the files runs, and
Lightning is never imported.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molplat.data.samples import Sample, SampleCollator, SampleList, unlabelled_sample
from molplat.errors import ValidationError
from molplat.models.heads import Heads
from molplat.pipeline.config import Pipeline
from molplat.rundir import RunDirectory, read_checkpoint
from molplat.structure import Structure
from molplat.training.task import AtomisticTask

#: tables a model does not need (its heads come from the checkpoint); left out so a run stays
#: loadable where their plugins (the dataset's, a searcher, a PopTorch backend) are not installed
_NOT_FOR_THE_MODEL = ("dataset", "output", "trainer", "search", "explain", "simulate", "data", "targets")


def _as_list(items: list[Sample]) -> list[Sample]:
    return items


class TrainedModel:
    """The best (or last) checkpoint of a run with the representation it was trained on."""

    def __init__(self, task: AtomisticTask, representation: Any, run_dir: Path, statistics: Any = None) -> None:
        self.task = task.eval()
        self.representation = representation
        self.collator = SampleCollator(representation)
        self.run_dir = Path(run_dir)
        self.statistics = statistics

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best", pipeline: Pipeline | None = None,
                 manager: Any = None) -> "TrainedModel":
        """Rebuild the model of ``run_dir`` from its resolved pipeline and checkpoint (``manager``: the plugin
        manager to resolve components with, by default the process-wide one)."""
        run = RunDirectory.open(run_dir)
        path = run.checkpoint(checkpoint)
        state = read_checkpoint(path, resume=f"resume the run with `molplat run PIPELINE --resume {run.path}`")
        if pipeline is None:
            resolved = {k: v for k, v in run.read_pipeline().items() if k not in _NOT_FOR_THE_MODEL}
            pipeline = Pipeline.load(resolved, manager=manager, for_model=True)
        model = pipeline.components["model"].build_model(state.heads, state.statistics)
        task = AtomisticTask(model, state.heads)
        try:
            task.load_state_dict(state.state_dict)
        except (RuntimeError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise ValidationError(f"{path}: the weights do not fit model {pipeline.components['model'].spec.name!r} "
                                  f"with the run's settings ({first[:200]}); was the pipeline.toml edited?") from None
        representation = pipeline.components["representation"].build()
        return cls(task, representation, run.path, state.statistics)

    # -- what it predicts ----------------------------------------------------------------------
    @property
    def model(self) -> torch.nn.Module:
        return self.task.model

    @property
    def heads(self) -> Heads:
        return self.task.heads

    @property
    def target(self) -> str:
        return self.heads.names[0]

    @property
    def units(self) -> str:
        return (self.heads.graph + self.heads.atom)[0].units

    @property
    def max_atomic_number(self) -> int | None:
        return getattr(self.model, "max_atomic_number", None)

    def calculator(self) -> Any:
        """An ASE Calculator predicting with this model (see molplat.calculator)."""
        from molplat.calculator import MolplatCalculator

        return MolplatCalculator(self)

    # -- checks --------------------------------------------------------------------------------
    def check(self, structures: Sequence[Structure], where: str = "") -> list[str]:
        """Refuse elements beyond the model's embedding; return warnings about elements never seen in training."""
        from ase.data import chemical_symbols

        present = sorted({int(z) for s in structures for z in np.unique(s.numbers)})
        largest = self.max_atomic_number
        if largest is not None and present and present[-1] > largest:
            heavy = [f"{chemical_symbols[z]} (Z = {z})" for z in present if z > largest]
            raise ValidationError(f"{where}{', '.join(heavy)} beyond the {largest} elements this model embeds; "
                                  f"leave those structures out")
        if self.statistics is None:
            return []
        seen = set(self.statistics.elements)
        unseen = [chemical_symbols[z] for z in present if z not in seen]
        if not unseen:
            return []
        return [f"elements {', '.join(unseen)} never occurred in training; predictions for structures with them "
                f"are extrapolations"]

    # -- predicting ----------------------------------------------------------------------------
    def predict_batches(self, samples: Any, batch_size: int = 64, forces: bool | None = None,
                        num_workers: int = 0) -> Iterator[tuple[list[Sample], Any, dict[str, torch.Tensor]]]:
        """``(samples, batch, predictions)`` for consecutive batches of a sequence or dataset of Samples."""
        with_forces = self.task.with_forces if forces is None else forces
        source = samples if isinstance(samples, torch.utils.data.Dataset) else SampleList(list(samples))
        loader = torch.utils.data.DataLoader(source, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                             collate_fn=_as_list)
        for items in loader:
            batch = self.collator(items)
            with torch.set_grad_enabled(with_forces):
                out = self.task(batch, forces=with_forces)
            yield items, batch, {k: v.detach() for k, v in out.items()}

    def predict_samples(self, samples: Any, batch_size: int = 64, forces: bool | None = None) -> dict[str, np.ndarray]:
        """``forces=None`` predicts forces when the run trained on them; True asks for them anyway."""
        ys, atom_ys, forces_out = [], [], []
        for _, _, out in self.predict_batches(samples, batch_size, forces):
            ys.append(out["y"].double().numpy())
            if "atom_y" in out:
                atom_ys.append(out["atom_y"].double().numpy())
            if "forces" in out:
                forces_out.append(out["forces"].double().numpy())
        result = {"y": np.concatenate(ys) if ys else np.zeros((0, self.heads.n_graph))}
        if atom_ys:
            result["atom_y"] = np.concatenate(atom_ys)
        if forces_out:
            result["forces"] = np.concatenate(forces_out)
        return result

    def predict(self, structures: Iterable[Any], batch_size: int = 64, forces: bool | None = None) -> dict[str, Any]:
        """Predict for ASE Atoms or Structures.

        Returns ``{"target", "units", "y": [n]}`` for the first target, ``"targets"``
        with every target (``{"units", "level", "values"}``: [n] for graph targets, a
        list of [n_i] arrays for per-atom ones), and ``"forces"`` (a list of [n_i, 3]
        in eV/Å) for energy models or when ``forces=True``.
        """
        items = [s if isinstance(s, Structure) else Structure.from_atoms(s) for s in structures]
        for message in self.check(items):
            warnings.warn(message, stacklevel=2)
        samples = [unlabelled_sample(s, self.representation, self.heads) for s in items]
        out = self.predict_samples(samples, batch_size, forces=forces)
        sizes = np.cumsum([len(s) for s in items])[:-1]
        targets: dict[str, Any] = {}
        for k, head in enumerate(self.heads.graph):
            targets[head.name] = {"units": head.units, "level": "graph", "values": out["y"][:, k]}
        for k, head in enumerate(self.heads.atom):
            targets[head.name] = {"units": head.units, "level": "atom", "values": np.split(out["atom_y"][:, k], sizes)}
        first = self.heads.names[0]
        result: dict[str, Any] = {"target": first, "units": targets[first]["units"], "y": targets[first]["values"],
                                  "targets": targets}
        if "forces" in out:
            result["forces"] = np.split(out["forces"], sizes)
        return result
