"""The data stage of a run, done before its run directory exists.

Everything here that finds a problem with the user's data (a target a dataset lacks, a
structure with NaN coordinates, an element heavier than the model embeds, an empty
split) raises ValidationError, so invalid input exits 2 and leaves nothing behind.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from molplat.data.samples import Sample, SampleList, make_sample
from molplat.data.sources import FeaturizingSamples, StoreSamples, StructureView, iterate
from molplat.data.statistics import StatisticsAccumulator, TrainingStatistics
from molplat.errors import ValidationError
from molplat.models.heads import Heads
from molplat.pipeline.config import Pipeline
from molplat.structure import Structure

Echo = Callable[[str], None]
SPLITS = ("train", "val", "test")


@dataclass
class PreparedData:
    """A run's data: labelled index splits, their sample sources, statistics and the elements present."""

    dataset: Any
    representation: Any
    heads: Heads
    indices: dict[str, np.ndarray]
    samples: dict[str, Any]
    structures: dict[str, StructureView]
    statistics: TrainingStatistics
    elements: list[int]
    dropped: dict[str, int] = field(default_factory=dict)
    store: Any = None
    reserve: np.ndarray | None = None
    initial: Any = None
    init_report: Any = None

    def info(self, pipeline: Pipeline) -> dict[str, Any]:
        """What data.json records."""
        first = self.heads.graph[0] if self.heads.graph else self.heads.atom[0]
        return {
            "dataset": pipeline.components["dataset"].spec.qualified_name,
            "target": first.name,
            "units": first.units,
            "targets": {h.name: {"units": h.units, "level": h.level, "loss": h.loss, "weight": h.weight,
                                 "extensive": h.extensive} for h in self.heads.heads},
            "task": pipeline.components["trainer"].settings.get("task"),
            "sizes": {k: int(len(v)) for k, v in self.indices.items()},
            "left_out": self.dropped,
            "elements": self.elements,
            "store": None if self.store is None else str(self.store.folder),
            "active_pool": None if self.reserve is None else len(self.reserve),
            "init": None if self.init_report is None else self.init_report.as_dict(),
        }


class _SafeFeaturizer(FeaturizingSamples):
    """Featurises and returns ``(index, sample or error text)``, so a bad structure is reported, not a traceback."""

    def __getitem__(self, index: int) -> tuple[int, Any]:
        position = int(self.indices[index])
        try:
            return position, make_sample(self.dataset[position], self.representation, self.heads)
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            return position, f"{type(exc).__name__}: {exc}"


def build_dataset(pipeline: Pipeline) -> Any:
    choice = pipeline.components["dataset"]
    try:
        return choice.build()
    except ValidationError:
        raise
    except (ValueError, TypeError, OSError) as exc:
        raise ValidationError(f"[dataset]: {choice.spec.name!r} of plugin {choice.spec.plugin!r} cannot be built "
                              f"with these settings: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                              source=pipeline.source) from None


def prepare(pipeline: Pipeline, echo: Echo, show_progress: bool = True) -> PreparedData:
    """Build the dataset, choose the labelled structures of each split, and make their sample sources."""
    dataset = build_dataset(pipeline)
    heads = pipeline.heads(getattr(dataset, "targets", {}), getattr(dataset, "default_target", ""))
    representation = pipeline.components["representation"].build()
    common = pipeline.dataset_common
    splits = dataset.splits(common["split"], common["split_seed"])
    workers = int(pipeline.data.get("num_workers") or 0)
    store = None
    if pipeline.data.get("store"):
        store = open_or_build_store(pipeline, dataset, representation, heads, echo, show_progress)
        keep, elements = _from_store(pipeline, store, splits)
        missing, first = store.without_forces
        if heads.forces and missing:
            raise _no_forces(pipeline, missing, first)
    else:
        keep, elements = _scan(pipeline, dataset, heads, splits)
    indices = {name: splits[name][keep[name]] for name in SPLITS}
    dropped = {name: int((~keep[name]).sum()) for name in SPLITS}
    if any(dropped.values()):
        echo(f"leaving out {sum(dropped.values())} structures without values for every target "
             f"({', '.join(f'{k}: {v}' for k, v in dropped.items())})")
    _check_not_empty(pipeline, indices)
    _check_elements(pipeline, heads, elements)
    if store is not None:
        samples = {name: StoreSamples(store, idx) for name, idx in indices.items()}
    elif pipeline.data.get("in_memory", True):
        samples = {name: SampleList(_featurize(pipeline, dataset, idx, representation, heads, workers, name,
                                               show_progress)) for name, idx in indices.items()}
    else:
        samples = {name: FeaturizingSamples(dataset, idx, representation, heads) for name, idx in indices.items()}
    reserve = _reserve(pipeline, len(indices["train"]))
    statistics = _statistics(_without(samples["train"], reserve), heads, workers, show_progress)
    structures = {name: StructureView(dataset, idx) for name, idx in indices.items()}
    initial, report = _initial_weights(pipeline, heads, statistics, echo)
    return PreparedData(dataset, representation, heads, indices, samples, structures, statistics, elements,
                        dropped, store, reserve, initial, report)


def _reserve(pipeline: Pipeline, n_train: int) -> np.ndarray | None:
    """Positions in the training split that start in the active-sampling pool, drawn with the trainer's seed."""
    settings = pipeline.components["trainer"].settings
    fraction = float(settings.get("active_pool") or 0.0)
    if fraction <= 0:
        return None
    size = int(round(fraction * n_train))
    if size == 0 or size >= n_train:
        raise ValidationError(f"[trainer] active_pool: {fraction} of {n_train} training structures leaves "
                              f"{'the pool' if size == 0 else 'training'} empty; choose a fraction that holds back "
                              f"at least one structure and keeps one", source=pipeline.source)
    order = np.random.default_rng(int(settings.get("seed", 0))).permutation(n_train)
    return np.sort(order[:size])


def _without(train: Any, reserve: np.ndarray | None) -> Any:
    """The training samples outside the pool: the scaling is fitted on what training starts with."""
    if reserve is None:
        return train
    import torch

    keep = np.setdiff1d(np.arange(len(train)), reserve)
    if isinstance(train, SampleList):
        return SampleList([train.samples[int(i)] for i in keep])
    return torch.utils.data.Subset(train, keep.tolist())


def _initial_weights(pipeline: Pipeline, heads: Heads, statistics: TrainingStatistics, echo: Echo) -> tuple:
    """``[model] init``, checked against the model this run builds; its one line is echoed."""
    init = pipeline.model_common.get("init")
    if not init:
        return None, None
    from molplat.training.initial import InitialWeights

    choice = pipeline.components["model"]
    try:
        weights = InitialWeights.read(init, choice.spec.qualified_name, pipeline.model_common.get("freeze") or [])
        report = weights.apply(choice.build_model(heads, statistics))
    except ValidationError as exc:
        raise ValidationError(exc.problems, source=pipeline.source) from None
    echo(report.line())
    return weights, report


def _bad_structure(pipeline: Pipeline, index: int, reason: str) -> ValidationError:
    name = pipeline.components["dataset"].spec.name
    return ValidationError(f"[dataset]: structure {index} of dataset {name!r} cannot be used: {reason}; fix or "
                           f"remove it in the data", source=pipeline.source)


def _scan(pipeline: Pipeline, dataset: Any, heads: Heads, splits: dict[str, np.ndarray]) -> tuple[dict, list[int]]:
    """Which structures of each split carry every target; and the elements they hold. No featurisation."""
    keep: dict[str, np.ndarray] = {}
    elements: set[int] = set()
    missing_forces: list[str] = []
    for name in SPLITS:
        flags = np.zeros(len(splits[name]), dtype=bool)
        for k, index in enumerate(splits[name]):
            try:
                structure = dataset[int(index)]
            except (ValueError, IndexError, KeyError, TypeError) as exc:
                raise _bad_structure(pipeline, int(index), f"{type(exc).__name__}: {exc}") from None
            elements.update(np.unique(structure.numbers).tolist())
            flags[k] = _labelled(pipeline, structure, heads)
            if heads.forces and structure.forces is None:
                missing_forces.append(structure.id)
        keep[name] = flags
    if missing_forces:
        raise _no_forces(pipeline, len(missing_forces), missing_forces[0])
    return keep, sorted(int(z) for z in elements)


def _no_forces(pipeline: Pipeline, count: int, first: str | None) -> ValidationError:
    return ValidationError(f"[trainer] task: 'energy_forces' needs forces, but {count} structures of dataset "
                           f"{pipeline.components['dataset'].spec.name!r} have none (first: {first!r}); use "
                           f"task = 'property' or a dataset with forces", source=pipeline.source)


def _labelled(pipeline: Pipeline, structure: Structure, heads: Heads) -> bool:
    from molplat.data.samples import is_labelled, labels_of

    if not is_labelled(structure, heads):
        return False
    y, atom_y = labels_of(structure, heads)
    for values, group in ((y, heads.graph), (atom_y, heads.atom)):
        if values is None:
            continue
        for k, head in enumerate(group):
            column = np.asarray(values)[..., k]
            if head.classification and not np.isin(column, (0.0, 1.0)).all():
                bad = column[~np.isin(column, (0.0, 1.0))][0]
                raise ValidationError(f"[targets.{head.name}] loss: 'bce' needs values 0 and 1, but structure "
                                      f"{structure.id!r} has {bad!r}; use a regression loss or binary labels",
                                      source=pipeline.source)
    return True


def _from_store(pipeline: Pipeline, store: Any, splits: dict[str, np.ndarray]) -> tuple[dict, list[int]]:
    labelled = store.labelled
    if len(labelled) != sum(len(v) for v in splits.values()):
        raise ValidationError(f"[data] store: {store.folder} holds {len(labelled)} structures but the dataset has "
                              f"{sum(len(v) for v in splits.values())}; delete the store folder to rebuild it",
                              source=pipeline.source)
    return {name: labelled[idx] for name, idx in splits.items()}, store.elements


def _check_not_empty(pipeline: Pipeline, indices: dict[str, np.ndarray]) -> None:
    empty = [name for name in SPLITS if len(indices[name]) == 0]
    if empty:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in indices.items())
        raise ValidationError(f"[dataset] split: {pipeline.dataset_common['split']} leaves the {' and '.join(empty)} "
                              f"split empty ({sizes} structures); give every split a larger fraction or use more data",
                              source=pipeline.source)


def _check_elements(pipeline: Pipeline, heads: Heads, elements: list[int]) -> None:
    """Elements heavier than the model's embedding holds are one line, not an index error mid-epoch."""
    choice = pipeline.components["model"]
    model = choice.build_model(heads)
    largest = getattr(model, "max_atomic_number", None)
    if largest is None or not elements or max(elements) <= largest:
        return
    from ase.data import chemical_symbols

    heavy = [f"{chemical_symbols[z]} (Z = {z})" for z in elements if z > largest]
    raise ValidationError(f"[model] max_atomic_number: the data holds {', '.join(heavy)}, beyond the {largest} "
                          f"elements model {choice.spec.name!r} embeds; raise max_atomic_number or leave those "
                          f"structures out", source=pipeline.source)


def _featurize(pipeline: Pipeline, dataset: Any, indices: np.ndarray, representation: Any, heads: Heads,
               workers: int, split: str, show_progress: bool) -> list[Sample]:
    samples: list[Sample] = []
    for position, item in iterate(_SafeFeaturizer(dataset, indices, representation, heads), workers,
                                  f"featurize {split}", show_progress):
        if isinstance(item, str):
            raise _bad_structure(pipeline, position, item)
        samples.append(item)
    return samples


def _statistics(train: Any, heads: Heads, workers: int, show_progress: bool) -> TrainingStatistics:
    accumulator = StatisticsAccumulator(heads)
    items = train.samples if isinstance(train, SampleList) else iterate(train, workers, "statistics", show_progress)
    for s in items:
        accumulator.add(s.features["numbers"], s.y, s.atom_y, s.forces, s.features.get("edge_index"))
    return accumulator.result()


def store_backend(pipeline: Pipeline) -> Any:
    """The store backend ``[data] store_format`` names (the core's ``molplat`` by default), built."""
    name = pipeline.data.get("store_format") or "molplat"
    spec = pipeline.manager.get("store_backend", name, where="[data] store_format")
    try:
        return spec.build()
    except Exception as exc:  # a plugin's broken import must be one line, not a traceback
        raise ValidationError(f"[data] store_format: store backend {spec.name!r} of plugin {spec.plugin!r} cannot be "
                              f"loaded: {type(exc).__name__}: {exc}", source=pipeline.source) from None


def open_or_build_store(pipeline: Pipeline, dataset: Any, representation: Any, heads: Heads, echo: Echo,
                        show_progress: bool = True) -> Any:
    """The store of this dataset, representation and targets under ``[data] store``, built when missing.

    ``[data] store_format`` chooses the backend that writes and reads it; its name enters the
    key (except the core's own), so stores of two formats never share a folder.
    """
    from pathlib import Path

    from tqdm.auto import tqdm

    from molplat.data.store import store_key

    backend = store_backend(pipeline)
    dataset_choice, rep_choice = pipeline.components["dataset"], pipeline.components["representation"]
    key = store_key({"name": dataset_choice.spec.qualified_name, "fingerprint": getattr(dataset, "fingerprint", str)(),
                     **_plain(dataset_choice.settings)},
                    {"name": rep_choice.spec.qualified_name, **_plain(rep_choice.settings)},
                    {"heads": [(h.name, h.level) for h in heads.heads], "forces": heads.forces},
                    backend=pipeline.data.get("store_format") or "molplat")
    folder = Path(pipeline.data["store"]) / key
    store = backend.open(folder, key)
    if store is not None:
        return store
    echo(f"building the store {folder} ({len(dataset)} structures)")
    everything = np.arange(len(dataset))
    workers = int(pipeline.data.get("num_workers") or 0)

    def samples():
        for position, item in iterate(_SafeFeaturizer(dataset, everything, representation, heads), workers):
            if isinstance(item, str):
                raise _bad_structure(pipeline, position, item)
            yield item

    try:
        with tqdm(total=len(dataset), desc="store", disable=not show_progress, unit="structure") as bar:
            return backend.build(folder, samples(), key, progress=bar.update, workers=workers)
    except OSError as exc:
        raise ValidationError(f"[data] store: cannot write {folder} ({type(exc).__name__}: {exc}); choose a "
                              f"writable folder", source=pipeline.source) from None


def _plain(settings: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(settings, default=str))
