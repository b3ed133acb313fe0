"""The Lightning pieces every Lightning-based backend shares: the module, callbacks and the trainer.

Internal to the core: backends call ``molplat.training.fit_with_lightning`` and read
and write run directories through ``molplat.rundir``.
"""
from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint, Timer, TQDMProgressBar

from molplat import interrupts
from molplat.errors import RunError, ValidationError
from molplat.data.samples import SampleList
from molplat.rundir import BEST, CHECKPOINT_DIR, LAST, METRICS_FILE, FitResult, TrainingJob, checkpoint_metadata, \
    read_checkpoint
from molplat.training.active import ActiveSampling, ActiveTrainingData
from molplat.training.checkpoints import AtomicCheckpointIO, MetricsTable
from molplat.training.initial import trainable_parameters
from molplat.training.task import AtomisticTask, forces_loss_of


class LightningTask(AtomisticTask, pl.LightningModule):
    """The core task with Lightning's training loop hooks; its state_dict keys are the task's."""

    def __init__(self, model: torch.nn.Module, heads: Any, statistics: Any, settings: dict[str, Any]) -> None:
        super().__init__(model, heads, forces_weight=float(settings.get("forces_weight", 10.0)),
                         forces_loss=forces_loss_of(settings))
        self.statistics = statistics
        self.settings = dict(settings)

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        out = self(batch)
        loss, parts = self.loss(batch, out)
        n = int(batch["num_graphs"])
        errors = self.errors(batch, out)
        first = next((h.name for h in self.heads.graph + self.heads.atom if h.name in errors), None)
        if first is not None:
            self.log(f"{stage}_mae", errors[first], batch_size=n, on_epoch=True, on_step=False, sync_dist=True)
        if len(self.heads.heads) > 1:
            for name, value in errors.items():
                if name != "forces":
                    self.log(f"{stage}_mae_{name}", value, batch_size=n, on_epoch=True, on_step=False, sync_dist=True)
        if "forces" in errors:
            self.log(f"{stage}_forces_mae", errors["forces"], batch_size=n, on_epoch=True, on_step=False,
                     sync_dist=True)
        self.log(f"{stage}_loss", loss.detach(), batch_size=n, on_epoch=True, on_step=False, prog_bar=stage == "val",
                 sync_dist=True)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        if not torch.isfinite(loss):
            raise RunError(f"training stopped: the loss became {float(loss.detach())} in epoch {self.current_epoch} "
                           f"(batch {batch_idx}); lower [trainer] lr, set gradient_clip_val, or check the data")
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        value = self.trainer.callback_metrics.get("val_loss")
        if value is not None and not self.trainer.sanity_checking and not math.isfinite(float(value)):
            raise RunError(f"training stopped: the validation loss became {float(value)} in epoch "
                           f"{self.current_epoch}; lower [trainer] lr or set gradient_clip_val")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        value = self.trainer.callback_metrics.get("val_loss")
        checkpoint["molplat"] = checkpoint_metadata(self.heads, self.statistics, self.current_epoch,
                                                    None if value is None else float(value))

    def configure_optimizers(self) -> dict[str, Any]:
        settings = self.settings
        params = trainable_parameters(self.model)  # frozen blocks ([model] freeze) stay out, bit-identical
        lr, decay = settings.get("lr", 1e-3), settings.get("weight_decay", 0.0)
        name = settings.get("optimizer", "adamw")
        if name == "sgd":
            opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=decay)
        elif name == "adam":
            opt = torch.optim.Adam(params, lr=lr, weight_decay=decay)
        elif name == "adamw":
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=decay)
        elif name == "lamb":
            from pytorch_optimizer import Lamb

            opt = Lamb(params, lr=lr, weight_decay=decay)
        else:  # validated earlier; kept for direct API use
            raise ValueError(f"unknown optimizer {name!r}")
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=settings.get("lr_factor", 0.5),
                                                               patience=settings.get("lr_patience", 5))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"}}


class EpochMetrics(pl.Callback):
    """Writes one metrics.csv row per epoch (rank 0 only), before that epoch's checkpoints,
    and hands the row to ``on_row`` (``TrainingJob.epoch_finished``: the run's loggers)."""

    def __init__(self, table: MetricsTable, on_row: Callable[[int, dict[str, Any]], None] | None = None) -> None:
        self.table = table
        self.on_row = on_row
        self._loss_sum = 0.0
        self._count = 0
        self._started = time.perf_counter()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
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
        # every rank summed its own batches; the row holds the mean over all of them
        loss_sum, count = trainer.strategy.reduce(torch.tensor([self._loss_sum, float(self._count)],
                                                               dtype=torch.float64, device=pl_module.device),
                                                  reduce_op="sum").tolist()
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        row: dict[str, Any] = {"epoch": trainer.current_epoch, "train_loss": loss_sum / max(count, 1)}
        for key in sorted(metrics):
            if key.startswith("val_"):
                row[key] = float(metrics[key])
        row["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        row["seconds"] = round(time.perf_counter() - self._started, 3)
        self.table.append(row)
        if self.on_row is not None:
            self.on_row(row["epoch"], dict(row))


class StopOnInterrupt(pl.Callback):
    """Stop at the next batch after a Ctrl+C that something swallowed (see ``molplat.interrupts``)."""

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        if interrupts.requested():
            raise KeyboardInterrupt

    def on_validation_batch_end(self, *args: Any, **kwargs: Any) -> None:
        if interrupts.requested():
            raise KeyboardInterrupt


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
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    # a resumed run's checkpoint folder holds its own checkpoints: that is the point of --resume
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


class ShuffledIndices(torch.utils.data.Sampler[int]):
    """A seeded shuffle of ``range(n)`` per epoch, handed out in chunks; rank ``rank`` of ``replicas`` takes every
    ``replicas``-th index of it, starting at its own.

    It owns its generator: the loader draws worker seeds from its own, and sharing one
    would make the batch order depend on num_workers. And it never holds all n indices
    as Python ints (torch's RandomSampler does: 150 MB for 3.9M structures). Every rank
    draws the same permutation, so rank r's batches of B/W are the positions of the
    one-process batch of B that are r modulo W: together they are that batch. Ranks get
    equally many indices (the last ones wrap around to the start), as DDP needs.
    """

    def __init__(self, n: int, seed: int, chunk: int = 65536, rank: int = 0, replicas: int = 1) -> None:
        self.n, self.chunk, self.rank, self.replicas = n, chunk, rank, replicas
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-self.n // self.replicas)

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator)
        total, step = len(self) * self.replicas, self.chunk * self.replicas
        for start in range(0, total, step):
            positions = torch.arange(start + self.rank, min(start + step, total), self.replicas)
            yield from order[positions % self.n].tolist()


class RankShare(torch.utils.data.Sampler[int]):
    """Rank ``rank`` of ``replicas`` takes indices ``rank, rank + replicas, ...`` in order (validation: no padding)."""

    def __init__(self, n: int, rank: int = 0, replicas: int = 1) -> None:
        self.n, self.rank, self.replicas = n, rank, replicas

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.replicas))

    def __iter__(self):
        return iter(range(self.rank, self.n, self.replicas))


def loaders(job: TrainingJob, batch_size: int, seed: int, rank: int = 0,
            replicas: int = 1) -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    """Shuffled training batches and ordered validation batches of this rank's share, featurised or read in
    ``job.num_workers`` processes (so each rank reads only its own structures)."""
    train_data = job.train if isinstance(job.train, torch.utils.data.Dataset) else SampleList(list(job.train))
    val_data = job.val if isinstance(job.val, torch.utils.data.Dataset) else SampleList(list(job.val))
    workers = int(job.num_workers or 0)
    common: dict[str, Any] = dict(collate_fn=job.collator, num_workers=workers, persistent_workers=workers > 0)
    sampler = ShuffledIndices(len(train_data), seed, rank=rank, replicas=replicas)
    train = torch.utils.data.DataLoader(train_data, batch_size=batch_size, sampler=sampler, **common)
    val = torch.utils.data.DataLoader(val_data, batch_size=batch_size, sampler=RankShare(len(val_data), rank, replicas),
                                      **common)
    return train, val


def make_trainer(job: TrainingJob, settings: dict[str, Any], callbacks: Sequence[pl.Callback] = (),
                 **trainer_kwargs: Any) -> pl.Trainer:
    """A Lightning Trainer with molplat's checkpoints, metrics and stopping rules, plus a backend's ``callbacks``.

    ``best.ckpt`` is written when the validation loss improves and ``last.ckpt`` at the
    end of every epoch, so a kill loses at most the epoch in progress.
    """
    quiet_lightning()
    ckpt_dir = job.run_dir / CHECKPOINT_DIR
    best = ModelCheckpoint(dirpath=ckpt_dir, filename=Path(BEST).stem, monitor="val_loss", mode="min",
                           save_top_k=1, save_last=False, enable_version_counter=False)
    last = ModelCheckpoint(dirpath=ckpt_dir, filename=Path(LAST).stem, monitor=None, save_top_k=1,
                           save_last=False, enable_version_counter=False)
    all_callbacks: list[pl.Callback] = [
        EpochMetrics(MetricsTable(job.run_dir / METRICS_FILE), on_row=job.epoch_finished),
        EarlyStopping(monitor="val_loss", mode="min", patience=settings["patience"], check_finite=False),
        best,
        last,
        StopOnInterrupt(),
        *callbacks,
    ]
    if settings.get("max_time") is not None:  # checked per epoch, so every epoch ends validated and checkpointed
        all_callbacks.append(Timer(duration=timedelta(minutes=settings["max_time"]), interval="epoch"))
    if settings["progress_bar"]:
        steps = max(1, len(job.train) // settings["batch_size"])
        all_callbacks.append(EpochProgressBar(refresh_rate=max(1, steps // 10)))
    kwargs: dict[str, Any] = dict(
        accelerator="cpu",
        max_epochs=settings["max_epochs"],
        accumulate_grad_batches=settings["accumulate_grad_batches"],
        gradient_clip_val=settings["gradient_clip_val"] or None,
        precision="bf16-mixed" if settings["amp"] else "32-true",
        callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()],
        logger=False,
        enable_progress_bar=settings["progress_bar"],
        enable_model_summary=False,
        num_sanity_val_steps=0,
        inference_mode=False,  # validation of energy+forces needs gradients
        default_root_dir=str(job.run_dir),
        deterministic=False,
        use_distributed_sampler=False,  # molplat's loaders give each rank its share (see loaders)
    )
    kwargs.update(trainer_kwargs)
    return pl.Trainer(**kwargs)


def build_lightning_task(job: TrainingJob, settings: dict[str, Any]) -> LightningTask:
    task = LightningTask(job.build_model(), job.heads, job.statistics, settings)
    if job.statistics is not None and settings.get("standardize", True):
        task.scaler.fit(job.statistics, job.heads)
    return task


def fit_with_lightning(job: TrainingJob, settings: dict[str, Any], callbacks: Sequence[pl.Callback] = (),
                       **trainer_kwargs: Any) -> FitResult:
    """Fit ``job`` with the core trainer settings; backends add ``callbacks`` or Trainer arguments."""
    threads = torch.get_num_threads()
    if settings.get("num_threads"):
        torch.set_num_threads(settings["num_threads"])
    try:
        return _fit(job, settings, callbacks, **trainer_kwargs)
    finally:  # the setting is the run's, not the process's
        torch.set_num_threads(threads)


def _active_loader(job: TrainingJob, batch_size: int, seed: int, rank: int, replicas: int, positions: list[int],
                   version: int) -> torch.utils.data.DataLoader:
    """Rank ``rank``'s training loader over ``positions`` of ``job.train``, shuffled with a seed of its own per set."""
    subset = replace(job, train=torch.utils.data.Subset(job.train, positions), reserve=None)
    return loaders(subset, batch_size, seed + version, rank, replicas)[0]


def _fit(job: TrainingJob, settings: dict[str, Any], callbacks: Sequence[pl.Callback],
         **trainer_kwargs: Any) -> FitResult:
    seed = settings["seed"] if job.seed is None else job.seed  # an ensemble member's seed wins
    pl.seed_everything(seed, workers=True, verbose=False)
    task = build_lightning_task(job, settings)
    active = ActiveSampling.for_job(job, settings)
    if active is not None:  # [trainer] active_pool: the training set grows from a reserve pool
        callbacks = [*callbacks, active]
        trainer_kwargs = {"reload_dataloaders_every_n_epochs": 1, **trainer_kwargs}
    trainer = make_trainer(job, settings, callbacks, **trainer_kwargs)
    train, val = loaders(job, settings["batch_size"], seed, trainer.global_rank, trainer.world_size)
    if active is not None:  # the loader over the current training set, this rank's share
        make_loader = partial(_active_loader, job, settings["batch_size"], seed, trainer.global_rank,
                              trainer.world_size)
        train, val = ActiveTrainingData(active, make_loader, val), None
    last = job.run_dir / CHECKPOINT_DIR / LAST
    resume_from = None
    if job.resume and last.exists():
        read_checkpoint(last, resume="this run cannot continue from it; start a new run")  # one line if damaged
        resume_from = str(last)
    try:
        trainer.fit(task, train, val, ckpt_path=resume_from, weights_only=True)
    except SystemExit as exc:  # Lightning turns Ctrl+C into sys.exit(1) after saving nothing more
        raise RunError(f"training interrupted; continue it with `molplat run PIPELINE --resume {job.run_dir}`") from exc
    except (RunError, ValidationError):
        raise
    if trainer.interrupted or interrupts.requested():  # fit() may end normally after a Ctrl+C: not a success
        raise RunError(f"training interrupted; continue it with `molplat run PIPELINE --resume {job.run_dir}`")
    best = next(c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor == "val_loss")
    score = best.best_model_score
    return FitResult(
        best_checkpoint=job.run_dir / CHECKPOINT_DIR / BEST,
        last_checkpoint=last,
        epochs=trainer.current_epoch,
        best_val_loss=None if score is None else float(score),
    )

