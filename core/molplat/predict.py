"""A trained model loaded from its run directory, for the CLI, notebooks and stages.

Loading reads the run-directory contract (``molplat.rundir``): the resolved pipeline
and a checkpoint read with ``weights_only=True``. No code from the files runs, and
Lightning is never imported.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import numpy as np
import torch

from molplat.data.samples import Sample, SampleCollator, SampleList, labels_of, unlabelled_sample
from molplat.ensemble import EnsembleManifest, EnsembleTask
from molplat.errors import RunError, ValidationError
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


class TargetPrediction(TypedDict):
    """One target's predictions: [n] values for a graph target, a list of [n_i] arrays for a per-atom one.

    ``std`` (same shape) is the spread of an ensemble's members, present only for ensembles."""

    units: str
    level: str
    values: Any
    std: NotRequired[Any]


class Prediction(TypedDict):
    """What ``TrainedModel.predict`` returns; the ``*_std`` keys only for ensembles (``[trainer] ensemble``)."""

    target: str
    units: str
    y: np.ndarray
    y_std: NotRequired[np.ndarray]
    targets: dict[str, TargetPrediction]
    forces: NotRequired[list[np.ndarray]]
    forces_std: NotRequired[list[np.ndarray]]


class TrainedModel:
    """The best (or last) checkpoint of a run with the representation it was trained on.

    For an ensemble run, ``task`` is a ``molplat.ensemble.EnsembleTask`` over every
    member's checkpoint: predictions are the members' mean, with their standard deviation
    beside them (``ensemble_size`` says how many members; 1 for a single model).
    """

    def __init__(self, task: AtomisticTask | EnsembleTask, representation: Any, run_dir: Path,
                 statistics: Any = None) -> None:
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
        manifest = EnsembleManifest.read(run.path)
        if manifest is not None:
            manifest.require_complete(run)
            paths = [manifest.member_checkpoint(run, k, checkpoint) for k in range(manifest.size)]
        else:
            paths = [run.checkpoint(checkpoint)]
        if pipeline is None:
            resolved = {k: v for k, v in run.read_pipeline().items() if k not in _NOT_FOR_THE_MODEL}
            pipeline = Pipeline.load(resolved, manager=manager, for_model=True)
        loaded = [_load_task(pipeline, path, run) for path in paths]
        tasks = [task for task, _ in loaded]
        statistics = loaded[0][1]
        representation = pipeline.components["representation"].build()
        return cls(EnsembleTask(tasks) if manifest is not None else tasks[0], representation, run.path, statistics)

    # -- what it predicts ----------------------------------------------------------------------
    @property
    def model(self) -> torch.nn.Module:
        """The trained network (an ensemble's first member; ``members`` holds every member's task)."""
        return self.task.model

    @property
    def ensemble_size(self) -> int:
        """How many models predict together: 1, or the run's ``[trainer] ensemble``."""
        return len(self.task) if isinstance(self.task, EnsembleTask) else 1

    @property
    def members(self) -> list[AtomisticTask]:
        """Every member's task (one for a single model), each predicting on its own."""
        return list(self.task.members) if isinstance(self.task, EnsembleTask) else [self.task]

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

    def calculator(self, dtype: str | torch.dtype = "float32", skin: float = 0.5) -> Any:
        """An ASE Calculator predicting with this model: energy, forces and (periodic) stress.

        ``dtype`` ("float32" or "float64") is the precision the network runs in (float64 on a
        copy of the weights); ``skin`` (Å) is how much farther than the cutoff the reused
        neighbour list looks (see molplat.calculator.MolplatCalculator).
        """
        from molplat.calculator import MolplatCalculator

        return MolplatCalculator(self, dtype=dtype, skin=skin)

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
        keys = ("y", "atom_y", "forces", "y_std", "atom_y_std", "forces_std")
        parts: dict[str, list[np.ndarray]] = {}
        for _, _, out in self.predict_batches(samples, batch_size, forces):
            for key in keys:
                if key in out:
                    parts.setdefault(key, []).append(out[key].double().numpy())
        result = {key: np.concatenate(values) for key, values in parts.items()}
        if "y" not in result:
            result["y"] = np.zeros((0, self.heads.n_graph))
            if self.ensemble_size > 1:
                result["y_std"] = np.zeros((0, self.heads.n_graph))
        return result

    def predict(self, structures: Iterable[Any], batch_size: int = 64, forces: bool | None = None) -> Prediction:
        """Predict for ASE Atoms or Structures.

        Returns ``{"target", "units", "y": [n]}`` for the first target, ``"targets"``
        with every target (``{"units", "level", "values"}``: [n] for graph targets, a
        list of [n_i] arrays for per-atom ones), and ``"forces"`` (a list of [n_i, 3]
        in eV/Å) for energy models or when ``forces=True``. An ensemble's values are
        its members' mean, and ``y_std``, ``targets[NAME]["std"]`` and ``forces_std``
        (same shapes) their standard deviation.
        """
        items = [s if isinstance(s, Structure) else Structure.from_atoms(s) for s in structures]
        for message in self.check(items):
            warnings.warn(message, stacklevel=2)
        samples = [unlabelled_sample(s, self.representation, self.heads) for s in items]
        out = self.predict_samples(samples, batch_size, forces=forces)
        sizes = np.cumsum([len(s) for s in items])[:-1]
        targets: dict[str, TargetPrediction] = {}
        for k, head in enumerate(self.heads.graph):
            targets[head.name] = {"units": head.units, "level": "graph", "values": out["y"][:, k]}
            if "y_std" in out:
                targets[head.name]["std"] = out["y_std"][:, k]
        for k, head in enumerate(self.heads.atom):
            targets[head.name] = {"units": head.units, "level": "atom", "values": np.split(out["atom_y"][:, k], sizes)}
            if "atom_y_std" in out:
                targets[head.name]["std"] = np.split(out["atom_y_std"][:, k], sizes)
        first = self.heads.names[0]
        result: Prediction = {"target": first, "units": targets[first]["units"], "y": targets[first]["values"],
                              "targets": targets}
        if "std" in targets[first]:
            result["y_std"] = targets[first]["std"]
        if "forces" in out:
            result["forces"] = np.split(out["forces"], sizes)
        if "forces_std" in out:
            result["forces_std"] = np.split(out["forces_std"], sizes)
        return result

    def graph_embeddings(self, structures: Sequence[Any], batch_size: int = 64) -> np.ndarray:
        """``[n, F]`` per-structure embeddings (``ModelOutput["graph_embedding"]``, the second-to-last layer).

        What UMAP maps and ROGI scores. An ensemble's first member embeds: members'
        embedding spaces are unrelated, so they cannot be averaged.
        """
        items = [s if isinstance(s, Structure) else Structure.from_atoms(s) for s in structures]
        network = self.model.eval()
        rows: list[np.ndarray] = []
        with torch.no_grad():
            for start in range(0, len(items), batch_size):
                chunk = items[start:start + batch_size]
                out = network(self.collator([unlabelled_sample(s, self.representation, self.heads) for s in chunk]))
                if "graph_embedding" not in out:
                    raise RunError(f"model {type(network).__name__} returns no graph_embedding; explainers need it "
                                   "(molplat.models.ModelOutput)")
                rows.append(out["graph_embedding"].detach().double().cpu().numpy())
        found = np.concatenate(rows) if rows else np.zeros((0, 0))
        if found.shape[0] != len(items):
            raise RunError(f"model {type(network).__name__} returned {found.shape[0]} graph embeddings for "
                           f"{len(items)} structures")
        return found

    def target_values(self, structures: Sequence[Structure], target: str) -> np.ndarray:
        """The labelled value of graph-level ``target`` for each structure (NaN where it has none)."""
        column = [h.name for h in self.heads.graph].index(target)
        return np.array([labels_of(s, self.heads)[0][column] for s in structures], dtype=float)


def _load_task(pipeline: Pipeline, path: Path, run: RunDirectory) -> tuple[AtomisticTask, Any]:
    """The task of one checkpoint, read without running code, and the training statistics it stores."""
    state = read_checkpoint(path, resume=f"resume the run with `molplat run PIPELINE --resume {run.path}`")
    model = pipeline.components["model"].build_model(state.heads, state.statistics)
    task = AtomisticTask(model, state.heads)
    try:
        task.load_state_dict(state.state_dict)
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValidationError(f"{path}: the weights do not fit model {pipeline.components['model'].spec.name!r} "
                              f"with the run's settings ({first[:200]}); was the pipeline.toml edited?") from None
    return task, state.statistics
