"""The Lightning pieces every backend shares: the trainer factory, callbacks and the job description."""
from __future__ import annotations

import logging
import warnings
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar

from molplat.errors import RunError
from molplat.training.checkpoints import AtomicCheckpointIO, MetricsTable
from molplat.training.data import Sample, SampleCollator, SampleList
from molplat.training.task import AtomisticTask

CHECKPOINT_DIR = "checkpoints"
BEST = "best.ckpt"
LAST = "last.ckpt"


@dataclass
class TrainingJob:
    """Everything a backend needs to fit: featurised splits, how to build the model, where to write."""

    train: list[Sample]
    val: list[Sample]
    collator: SampleCollator
    build_model: Callable[[], torch.nn.Module]
    n_outputs: int
    run_dir: Path
    resume: bool = False


@dataclass
class FitResult:
    best_checkpoint: Path
    last_checkpoint: Path
    epochs: int
    best_val_loss: float | None
    extra: dict[str, Any] = field(default_factory=dict)


class EpochMetrics(pl.Callback):
    """Writes one metrics.csv row per epoch, before that epoch's checkpoint."""

    def __init__(self, table: MetricsTable) -> None:
        self.table = table
        self._loss_sum = 0.0
        self._count = 0
        self._started = time.perf_counter()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.table.truncate(before_epoch=trainer.current_epoch)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._loss_sum, self._count, self._started = 0.0, 0, time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self._loss_sum += float(loss) * batch["num_graphs"]
        self._count += batch["num_graphs"]

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        row: dict[str, Any] = {
            "epoch": trainer.current_epoch,
            "train_loss": self._loss_sum / max(self._count, 1),
        }
        for key in ("val_loss", "val_mae", "val_forces_mae"):
            if key in metrics:
                row[key] = float(metrics[key])
        row["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        row["seconds"] = round(time.perf_counter() - self._started, 3)
        self.table.append(row)


class EpochProgressBar(TQDMProgressBar):
    """One bar per training epoch; the short validation pass shows its loss on that bar instead."""

    def init_validation_tqdm(self):
        from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

        return Tqdm(disable=True)


def quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 on torch 2.13 warns about its own use of a deprecated pytree API on every fit.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def build_task(job: TrainingJob, settings: dict[str, Any]) -> AtomisticTask:
    task = AtomisticTask(
        job.build_model(),
        n_outputs=job.n_outputs,
        task=settings["task"],
        loss=settings["loss"],
        forces_weight=settings["forces_weight"],
        optimizer=settings["optimizer"],
        lr=settings["lr"],
        weight_decay=settings["weight_decay"],
        lr_patience=settings["lr_patience"],
        lr_factor=settings["lr_factor"],
    )
    if settings["standardize"]:
        y = np.stack([s.y for s in job.train])
        natoms = np.array([len(s.features["numbers"]) for s in job.train], dtype=np.float64)
        task.scaler.fit(y, natoms, per_atom=settings["task"] == "energy_forces")
    return task


def loaders(job: TrainingJob, batch_size: int, seed: int) -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    generator = torch.Generator().manual_seed(seed)
    train = torch.utils.data.DataLoader(SampleList(job.train), batch_size=batch_size, shuffle=True,
                                        collate_fn=job.collator, generator=generator)
    val = torch.utils.data.DataLoader(SampleList(job.val), batch_size=batch_size, shuffle=False,
                                      collate_fn=job.collator)
    return train, val


def make_trainer(job: TrainingJob, settings: dict[str, Any], callbacks: Sequence[pl.Callback] = (),
                 **trainer_kwargs: Any) -> pl.Trainer:
    """A Lightning Trainer with molplat's checkpoints, metrics and stopping rules, plus a backend's ``callbacks``."""
    quiet_lightning()
    ckpt_dir = job.run_dir / CHECKPOINT_DIR
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, filename=Path(BEST).stem, monitor="val_loss", mode="min",
                                 save_top_k=1, save_last=True, enable_version_counter=False)
    callbacks: list[pl.Callback] = [
        EpochMetrics(MetricsTable(job.run_dir / "metrics.csv")),
        EarlyStopping(monitor="val_loss", mode="min", patience=settings["patience"]),
        checkpoint,
        *callbacks,
    ]
    if settings["progress_bar"]:
        callbacks.append(EpochProgressBar(refresh_rate=max(1, len(job.train) // settings["batch_size"] // 10)))
    kwargs: dict[str, Any] = dict(
        accelerator="cpu",
        max_epochs=settings["max_epochs"],
        accumulate_grad_batches=settings["accumulate_grad_batches"],
        gradient_clip_val=settings["gradient_clip_val"] or None,
        precision="bf16-mixed" if settings["amp"] else "32-true",
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        logger=False,
        enable_progress_bar=settings["progress_bar"],
        enable_model_summary=False,
        num_sanity_val_steps=0,
        inference_mode=False,  # validation of energy+forces needs gradients
        default_root_dir=str(job.run_dir),
        deterministic=False,
    )
    kwargs.update(trainer_kwargs)
    return pl.Trainer(**kwargs)


def fit_with_lightning(job: TrainingJob, settings: dict[str, Any], callbacks: Sequence[pl.Callback] = (),
                       **trainer_kwargs: Any) -> FitResult:
    """Fit ``job`` with the core trainer settings; backends add ``callbacks`` or Trainer arguments."""
    if settings["num_threads"]:
        torch.set_num_threads(settings["num_threads"])
    pl.seed_everything(settings["seed"], workers=True, verbose=False)
    task = build_task(job, settings)
    train, val = loaders(job, settings["batch_size"], settings["seed"])
    trainer = make_trainer(job, settings, callbacks, **trainer_kwargs)
    last = job.run_dir / CHECKPOINT_DIR / LAST
    try:
        trainer.fit(task, train, val, ckpt_path=str(last) if job.resume and last.exists() else None)
    except SystemExit as exc:  # Lightning turns Ctrl+C into sys.exit(1) after saving nothing more
        raise RunError(f"training interrupted; continue it with `molplat run PIPELINE --resume {job.run_dir}`") from exc
    checkpoint = next(c for c in trainer.callbacks if isinstance(c, ModelCheckpoint))
    best_score = checkpoint.best_model_score
    return FitResult(
        best_checkpoint=job.run_dir / CHECKPOINT_DIR / BEST,
        last_checkpoint=last,
        epochs=trainer.current_epoch,
        best_val_loss=None if best_score is None else float(best_score),
    )
