"""The toy pipeline that stage components (searchers, explainers, simulators) are run against."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import molplat
from molplat.plugins import PluginManager
from molplat.results import RunContext

from molplat_sdk import toys


def sdk_manager() -> PluginManager:
    """The installed plugins plus the SDK's toy dataset and model (in this process only)."""
    return PluginManager(extra={toys.PLUGIN_NAME: toys})


def toy_pipeline(output_dir: Path, **changes: Any) -> dict[str, Any]:
    """A pipeline that trains the toy model on toy EMT energies and forces in a few seconds."""
    raw: dict[str, Any] = {
        "dataset": {"name": toys.TOY_DATASET, "size": 36, "split": [0.6, 0.2, 0.2], "split_seed": 0},
        "representation": {"name": "adjacency_list", "cutoff": 4.0},
        "model": {"name": toys.TOY_MODEL, "hidden_channels": 8, "num_rbf": 8, "cutoff": 4.0},
        "trainer": {"name": "cpu", "task": "energy_forces", "max_epochs": 3, "batch_size": 8, "lr": 3e-3,
                    "progress_bar": False, "forces_weight": 1.0},
        "output": {"dir": str(output_dir), "name": "toy", "plots": False},
    }
    for key, value in changes.items():
        table, _, setting = key.partition(".")
        raw.setdefault(table, {})[setting] = value
    return raw


def train_toy_context(output_dir: Path, manager: PluginManager | None = None) -> RunContext:
    """Run the toy pipeline and hand back what the optional stages receive."""
    from molplat.predict import TrainedModel

    pipeline = molplat.load_pipeline(toy_pipeline(output_dir), manager=manager or sdk_manager())
    summary = pipeline.run(echo=lambda message: None)
    run_dir = Path(summary["run_dir"])
    dataset = pipeline.components["dataset"].build()
    indices = dataset.splits(pipeline.dataset_common["split"], pipeline.dataset_common["split_seed"])
    splits = {name: [dataset[int(i)] for i in idx] for name, idx in indices.items()}
    model = TrainedModel.from_run(run_dir, pipeline=pipeline)
    return RunContext(pipeline, run_dir, model, splits, summary)


def context_copy(context: RunContext, run_dir: Path) -> RunContext:
    """The same trained model and data with a fresh run directory, so stage tests do not share files."""
    import shutil

    shutil.copytree(context.run_dir, run_dir, dirs_exist_ok=True)
    return dataclasses.replace(context, run_dir=run_dir, summary=dict(context.summary))
