"""A trained model loaded from its run directory, for the CLI and for notebooks."""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molplat.errors import ValidationError
from molplat.pipeline.config import Pipeline
from molplat.pipeline.rundir import read_pipeline
from molplat.structure import Structure
from molplat.training.data import Sample, SampleCollator
from molplat.training.lightning import BEST, CHECKPOINT_DIR, LAST
from molplat.training.task import AtomisticTask


class TrainedModel:
    """The best (or last) checkpoint of a run with the representation it was trained on."""

    def __init__(self, task: AtomisticTask, representation: Any, target: str, units: str, run_dir: Path) -> None:
        self.task = task.eval()
        self.representation = representation
        self.collator = SampleCollator(representation)
        self.target = target
        self.units = units
        self.run_dir = run_dir

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best", pipeline: Pipeline | None = None) -> "TrainedModel":
        run_dir = Path(run_dir)
        if pipeline is None:
            resolved = read_pipeline(run_dir)
            resolved.pop("output", None)
            pipeline = Pipeline.load(resolved)
        name = {"best": BEST, "last": LAST}.get(checkpoint, checkpoint)
        path = run_dir / CHECKPOINT_DIR / name
        if not path.is_file():
            raise ValidationError(f"{path}: no checkpoint; the run has not finished an epoch "
                                  f"(resume it with `molplat run PIPELINE --resume {run_dir}`)")
        data_file = run_dir / "data.json"
        info = json.loads(data_file.read_text()) if data_file.is_file() else {}
        settings = pipeline.components["trainer"].settings
        task = AtomisticTask(pipeline.components["model"].build(n_outputs=1), n_outputs=1,
                             task=settings.get("task", "property"))
        state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        task.load_state_dict(state)
        representation = pipeline.components["representation"].build()
        return cls(task, representation, info.get("target", "y"), info.get("units", ""), run_dir)

    @property
    def model(self) -> torch.nn.Module:
        return self.task.model

    def calculator(self) -> Any:
        """An ASE Calculator predicting with this model (see molplat.calculator)."""
        from molplat.calculator import MolplatCalculator

        return MolplatCalculator(self)

    def predict_samples(self, samples: Sequence[Sample], batch_size: int = 64,
                        forces: bool | None = None) -> dict[str, np.ndarray]:
        """``forces=None`` predicts forces when the run trained on them; True asks for them anyway."""
        with_forces = self.task.with_forces if forces is None else forces
        ys, forces_out = [], []
        for start in range(0, len(samples), batch_size):
            batch = self.collator(list(samples[start:start + batch_size]))
            with torch.set_grad_enabled(with_forces):
                out = self.task(batch, forces=with_forces)
            ys.append(out["y"].detach().double().numpy())
            if "forces" in out:
                forces_out.append(out["forces"].detach().double().numpy())
        result = {"y": np.concatenate(ys)}
        if forces_out:
            result["forces"] = np.concatenate(forces_out)
        return result

    def predict(self, structures: Iterable[Any], batch_size: int = 64, forces: bool | None = None) -> dict[str, Any]:
        """Predict for ASE Atoms or Structures: ``{"y": [n], "units": ..., "forces": [list of [n_i, 3]]}``."""
        items = [s if isinstance(s, Structure) else Structure.from_atoms(s) for s in structures]
        samples = [Sample(s.id, self.representation.featurize(s), np.zeros(1)) for s in items]
        out = self.predict_samples(samples, batch_size, forces=forces)
        result: dict[str, Any] = {"target": self.target, "units": self.units, "y": out["y"][:, 0]}
        if "forces" in out:
            splits = np.cumsum([len(s) for s in items])[:-1]
            result["forces"] = np.split(out["forces"], splits)
        return result
