"""Active sampling in the core's Lightning loop: a reserve pool whose worst-predicted structures join training.

The data stage holds back ``[trainer] active_pool`` of the training split (``TrainingJob.reserve``,
drawn with the trainer's seed; the target scaling is fitted on the rest). After every
``active_every`` epochs the model predicts the whole pool and the ``active_count``
structures with the largest error move into the training set for the next epochs
(Bilbrey et al.'s HydroNet fine-tuning). The error of a structure is its force MAE
(mean |ΔF| over its atoms and components, eV/Å) when the run trains forces, else the
absolute error of the run's first target (a per-atom target: its mean over the atoms).
Ties go to the structure earlier in the pool, so a selection is deterministic.

The pool is part of the callback's state, so every checkpoint (``last.ckpt``, written
atomically after the move) holds exactly the pool of its epoch, and ``--resume`` goes on
from it; ``active_sampling.json`` records every round (ids moved, pool error before and
after) and is rewritten from that state on resume, ``active_sampling.png`` plots it.
Under DDP rank 0 evaluates the pool and broadcasts its choice, so every rank moves the
same structures; the training DataLoader is rebuilt (Lightning's
``reload_dataloaders_every_n_epochs``) only when the set has changed.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from molplat.files import atomic_write
from molplat.rundir import TrainingJob, write_json

ACTIVE_FILE = "active_sampling.json"
ACTIVE_PLOT = "active_sampling.png"

#: builds the training DataLoader over positions of ``job.train``; the int is a seed offset per set
LoaderFactory = Callable[[list[int], int], torch.utils.data.DataLoader]


def structure_errors(task: Any, batch: Any, out: dict[str, torch.Tensor]) -> torch.Tensor:
    """The selection score of every structure in ``batch``, [G] in float64."""
    count = int(batch["num_graphs"])
    if "forces" in out and "forces" in batch:
        per_atom = (out["forces"].detach() - batch["forces"]).abs().mean(dim=1)
    elif task.heads.graph:
        return (out["y"][:, 0].detach() - batch["y"][:, 0]).abs().double()
    else:
        per_atom = (out["atom_y"][:, 0].detach() - batch["atom_y"][:, 0]).abs()
    graph = batch.atom_graph_index()
    sums = torch.zeros(count, dtype=torch.float64, device=per_atom.device).index_add_(0, graph, per_atom.double())
    return sums / torch.bincount(graph, minlength=count).clamp(min=1)


def error_name(heads: Any) -> tuple[str, str]:
    """What the score is called, and its units."""
    if heads.forces:
        return "forces_mae", "eV/Å"
    head = (heads.graph + heads.atom)[0]
    return f"{head.name}_abs_error", head.units


class ActiveTrainingData(pl.LightningDataModule):
    """The training loader over the current training positions, rebuilt only when they changed; a fixed val loader."""

    def __init__(self, sampling: "ActiveSampling", make_loader: LoaderFactory,
                 val: torch.utils.data.DataLoader) -> None:
        super().__init__()
        self.sampling, self.make_loader, self.val = sampling, make_loader, val
        self._loader: torch.utils.data.DataLoader | None = None
        self._built_for: int | None = None

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        moved = len(self.sampling.rounds)
        if self._loader is None or self._built_for != moved:
            self._loader = self.make_loader(self.sampling.training_positions().tolist(), moved)
            self._built_for = moved
        return self._loader

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self.val


class ActiveSampling(pl.Callback):
    """Moves the worst-predicted pool structures into training every ``every`` epochs (see the module docstring)."""

    def __init__(self, job: TrainingJob, every: int, count: int, batch_size: int) -> None:
        self.source = job.train
        self.size = len(job.train)
        self.collator = job.collator
        self.num_workers = int(job.num_workers or 0)
        self.run_dir = Path(job.run_dir)
        self.every, self.count, self.batch_size = int(every), int(count), int(batch_size)
        self.initial_pool = np.unique(np.asarray(job.reserve, dtype=np.int64))
        self.pool = self.initial_pool.copy()
        self.metric, self.units = error_name(job.heads)
        self.rounds: list[dict[str, Any]] = []

    @classmethod
    def for_job(cls, job: TrainingJob, settings: dict[str, Any]) -> "ActiveSampling | None":
        if job.reserve is None or len(job.reserve) == 0:
            return None
        return cls(job, settings.get("active_every", 1), settings.get("active_count", 32), settings["batch_size"])

    def training_positions(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.size), self.pool)

    # -- the state every checkpoint carries ------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"pool": self.pool.tolist(), "rounds": self.rounds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pool = np.asarray(state_dict["pool"], dtype=np.int64)
        self.rounds = list(state_dict["rounds"])

    # -- Lightning hooks -------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:  # a resumed run forgets rounds after its checkpoint
            self.write_record()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every or len(self.pool) == 0:
            return
        record = self.select(trainer, pl_module, epoch) if trainer.is_global_zero else None
        record = trainer.strategy.broadcast(record, src=0)
        self.pool = np.setdiff1d(self.pool, np.asarray([m["position"] for m in record["moved"]], dtype=np.int64))
        self.rounds.append(record)
        if trainer.is_global_zero:
            self.write_record()

    # -- the selection ---------------------------------------------------------------------------
    def pool_errors(self, trainer: pl.Trainer, task: Any) -> np.ndarray:
        """The score of every pool structure, in pool order, with the model in eval mode."""
        subset = torch.utils.data.Subset(self.source, self.pool.tolist())
        loader = torch.utils.data.DataLoader(subset, batch_size=self.batch_size, shuffle=False,
                                             collate_fn=self.collator, num_workers=self.num_workers)
        was_training = task.training
        task.eval()
        errors: list[np.ndarray] = []
        try:
            for batch in loader:
                batch = trainer.strategy.batch_to_device(batch)
                errors.append(structure_errors(task, batch, task(batch)).cpu().numpy())
        finally:
            task.train(was_training)
        return np.concatenate(errors)

    def select(self, trainer: pl.Trainer, task: Any, epoch: int) -> dict[str, Any]:
        errors = self.pool_errors(trainer, task)
        order = np.argsort(-errors, kind="stable")
        chosen, rest = order[:self.count], order[self.count:]
        moved = [{"id": str(self.source[int(self.pool[k])].id), "position": int(self.pool[k]),
                  "error": float(errors[k])} for k in chosen]
        return {
            "round": len(self.rounds) + 1,
            "epoch": int(epoch),
            "pool_size_before": int(len(errors)),
            "pool_error_before": float(errors.mean()),
            "pool_error_max_before": float(errors.max()),
            "pool_error_after": float(errors[rest].mean()) if len(rest) else None,
            "training_size_after": int(self.size - len(rest)),
            "moved": moved,
        }

    # -- the record ------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {"metric": self.metric, "units": self.units, "every": self.every, "count": self.count,
                "initial_pool": int(len(self.initial_pool)), "pool_left": int(len(self.pool)),
                "rounds": self.rounds}

    def write_record(self) -> None:
        write_json(self.run_dir / ACTIVE_FILE, self.summary())
        if self.rounds:
            plot_rounds(self.run_dir / ACTIVE_PLOT, self.rounds, self.metric, self.units)


def plot_rounds(path: Path, rounds: list[dict[str, Any]], metric: str, units: str) -> Path:
    """Mean pool error per round, before the move and of what stayed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    x = [r["round"] for r in rounds]
    ax.plot(x, [r["pool_error_before"] for r in rounds], marker="o", label="pool before the move")
    after = [(r["round"], r["pool_error_after"]) for r in rounds if r["pool_error_after"] is not None]
    if after:
        ax.plot(*zip(*after), marker="s", ls="--", label="pool after the move")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel(f"mean {metric} [{units}]")
    ax.set_title("active sampling: error on the reserve pool", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png"))
    plt.close(fig)
    return path
