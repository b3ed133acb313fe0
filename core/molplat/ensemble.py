"""Ensembles: N models of one run that differ only in their seed, predicting a mean and a spread.

``[trainer] ensemble = N`` (N > 1) trains member K with the trainer's seed plus K, each
through the backend's ordinary ``fit(job)`` with ``job.run_dir`` set to the member's own
folder, so every backend trains ensembles without knowing it. The run directory::

    ensemble.json                  the manifest: size, seeds, and each member's state
    members/K/metrics.csv          member K's epochs
    members/K/checkpoints/best.ckpt, last.ckpt

and no top-level ``checkpoints/`` or ``metrics.csv``. A run with ``ensemble = 1`` has no
manifest and no ``members/``: its layout is the single-model one of ``molplat.rundir``.

The manifest is written before the first member trains and again, atomically, after
each member finishes; a member counts as finished only once the manifest says so.
``load_model`` refuses an ensemble whose members have not all finished (one line naming
the ``--resume`` command), so an interrupted ensemble is never taken for a complete one.

Predictions (``EnsembleTask``) are the members' mean; the spread is their standard
deviation across members (population, ``ddof = 0``, like ``numpy.std``), per target,
per atom and per force component. Forces are the mean of the members' forces, which is
minus the gradient of the mean energy.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from molplat.errors import ValidationError
from molplat.rundir import RunDirectory, write_json

if TYPE_CHECKING:  # pragma: no cover
    from molplat.training.task import AtomisticTask

ENSEMBLE_FILE = "ensemble.json"
MEMBERS_DIR = "members"
MANIFEST_FORMAT = 1
#: output keys whose members an ensemble averages, and the suffixes of what it adds
AVERAGED = ("y", "y_raw", "atom_y", "atom_y_raw", "forces")
STD_SUFFIX = "_std"
MEMBERS_SUFFIX = "_members"


def member_dir(run_dir: str | Path, member: int) -> Path:
    """Member ``member``'s folder, which has the single-model layout (metrics.csv, checkpoints/)."""
    return Path(run_dir) / MEMBERS_DIR / str(int(member))


def member_seed(seed: int, member: int) -> int:
    """The seed of member ``member``: the trainer's seed plus the member's index (kept below 2**32)."""
    return (int(seed) + int(member)) % 2**32


@dataclass
class MemberRecord:
    """One member as the manifest records it; paths relative to the run directory."""

    member: int
    seed: int
    finished: bool = False
    epochs: int | None = None
    best_val_loss: float | None = None
    checkpoint: str | None = None


@dataclass
class EnsembleManifest:
    """``ensemble.json``: how many members a run has and which of them have finished training."""

    size: int
    members: list[MemberRecord] = field(default_factory=list)
    format: int = MANIFEST_FORMAT

    @classmethod
    def new(cls, size: int, seed: int) -> "EnsembleManifest":
        return cls(size, [MemberRecord(k, member_seed(seed, k)) for k in range(size)])

    @property
    def finished(self) -> list[int]:
        return [m.member for m in self.members if m.finished]

    @property
    def complete(self) -> bool:
        return len(self.members) == self.size and all(m.finished for m in self.members)

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "size": self.size, "members": [asdict(m) for m in self.members]}

    def write(self, run_dir: str | Path) -> Path:
        """Atomically, so a kill leaves the previous state whole."""
        return write_json(Path(run_dir) / ENSEMBLE_FILE, self.as_dict())

    @classmethod
    def read(cls, run_dir: str | Path) -> "EnsembleManifest | None":
        """The manifest of ``run_dir``, or None for a single-model run; a damaged one is one line."""
        path = Path(run_dir) / ENSEMBLE_FILE
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            members = [MemberRecord(**entry) for entry in raw["members"]]
            manifest = cls(int(raw["size"]), members, int(raw.get("format", MANIFEST_FORMAT)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValidationError(f"{path}: the ensemble manifest cannot be read ({type(exc).__name__}); the run "
                                  f"directory is damaged") from None
        if manifest.format != MANIFEST_FORMAT or manifest.size < 1 or \
                [m.member for m in manifest.members] != list(range(manifest.size)):
            raise ValidationError(f"{path}: not an ensemble manifest this molplat reads (format {manifest.format}, "
                                  f"size {manifest.size}); use the molplat version that wrote it")
        return manifest

    def require_complete(self, run: RunDirectory) -> None:
        """Refuse a partial ensemble: its spread would be that of fewer models than the run asked for."""
        if self.complete:
            return
        done = self.finished
        raise ValidationError(f"{run.path}: the ensemble of {self.size} models is incomplete ({len(done)} of "
                              f"{self.size} trained); finish it with `molplat run PIPELINE --resume {run.path}`")

    def member_checkpoint(self, run: RunDirectory, member: int, name: str = "best") -> Path:
        """``best``, ``last`` or a file name in member ``member``'s ``checkpoints/`` (never a path outside it)."""
        return RunDirectory(member_dir(run.path, member)).checkpoint(name)


class EnsembleTask(torch.nn.Module):
    """Several ``AtomisticTask``s of one run, predicting their mean and standard deviation.

    ``forward`` returns what one task returns (``y``, ``atom_y``, ``forces``: the mean
    over members) plus ``KEY_std`` (their standard deviation, ``ddof = 0``) and
    ``KEY_members`` (every member's values stacked on a leading axis) for each of them.
    """

    def __init__(self, members: list["AtomisticTask"]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        if any(m.heads != members[0].heads for m in members):
            raise ValueError(f"ensemble members predict different targets: {[list(m.heads.names) for m in members]}")
        self.members = torch.nn.ModuleList(members)

    @property
    def heads(self) -> Any:
        return self.members[0].heads

    @property
    def with_forces(self) -> bool:
        return self.members[0].with_forces

    @property
    def model(self) -> torch.nn.Module:
        """The first member's model: members share the architecture (``members`` holds all of them)."""
        return self.members[0].model

    def __len__(self) -> int:
        return len(self.members)

    def forward(self, batch: Any, forces: bool | None = None) -> dict[str, torch.Tensor]:
        outputs = [member(batch, forces=forces) for member in self.members]
        result: dict[str, torch.Tensor] = {}
        for key in AVERAGED:
            if key not in outputs[0]:
                continue
            stacked = torch.stack([out[key] for out in outputs])
            result[key] = stacked.mean(dim=0)
            if not key.endswith("_raw"):
                result[key + STD_SUFFIX] = stacked.std(dim=0, unbiased=False)
                result[key + MEMBERS_SUFFIX] = stacked
        return result
