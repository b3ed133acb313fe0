"""The ``poptorch`` trainer backend: the core's task on Graphcore IPUs through PopTorch.

As in the HydroNet SchNet work (Bilbrey et al.): fixed-size padded batches, one compiled
training executor (``poptorch.trainingModel``, loss through ``poptorch.identity_loss``) and
one inference executor (``poptorch.inferenceModel``) for validation, both on the same host
model, so PopTorch copies the weights between them. The run directory is the core's:
``metrics.csv``, ``checkpoints/best.ckpt`` and ``last.ckpt`` through
``molplat.rundir.write_checkpoint``, so ``molplat predict`` and ``load_model`` read it on any
machine, with or without poptorch; ``--resume`` continues from ``last.ckpt``.
"""
from __future__ import annotations

import csv
import io
import math
import time
from typing import Any

import numpy as np
import torch

from molplat.errors import RunError, ValidationError
from molplat.files import atomic_write_text
from molplat.rundir import BEST, CHECKPOINT_DIR, LAST, METRICS_FILE, FitResult, TrainingJob, read_checkpoint, \
    write_checkpoint
from molplat.training import build_task
from molplat_poptorch.fixed_size import FixedSizeCollator, FixedSizes, PackingBatchSampler, choose_fixed_sizes, \
    refuse_oversized, sample_sizes
from molplat_poptorch.options import make_optimizer, make_options, micro_batches_per_step
from molplat_poptorch.sdk import import_poptorch
from molplat_poptorch.step import FixedSizeStep, batch_keys, split_outputs, stack_batches


class PopTorchBackend:
    """Trains on IPUs (or the IPU Model emulator) with PopTorch; settings are the ``[trainer]`` table.

    Building it only checks that poptorch can be imported, so `molplat validate` says
    plainly when the SDK is missing.
    """

    name = "poptorch"

    def __init__(self, **settings: Any) -> None:
        self.poptorch = import_poptorch()
        self.settings = settings

    def fit(self, job: TrainingJob) -> FitResult:
        threads = torch.get_num_threads()
        if self.settings.get("num_threads"):
            torch.set_num_threads(int(self.settings["num_threads"]))
        seed = getattr(job, "seed", None)  # an ensemble member's seed replaces the setting
        settings = self.settings if seed is None else {**self.settings, "seed": int(seed)}
        try:
            return PopTorchFit(self.poptorch, job, settings).run()
        finally:  # the setting is the run's, not the process's
            torch.set_num_threads(threads)


class PopTorchFit:
    """One training run: sizes, loaders, executors, the epoch loop, checkpoints."""

    def __init__(self, poptorch: Any, job: TrainingJob, settings: dict[str, Any]) -> None:
        self.poptorch, self.job, self.settings = poptorch, job, settings
        self.checkpoints = job.run_dir / CHECKPOINT_DIR
        self.metrics_path = job.run_dir / METRICS_FILE

    # -- data ----------------------------------------------------------------------------------
    def _sizes(self) -> tuple[FixedSizes, dict[str, tuple[np.ndarray, np.ndarray]]]:
        s = self.settings
        counts = {"train": sample_sizes(self.job.train), "val": sample_sizes(self.job.val)}
        if len(counts["train"][0]) == 0 or len(counts["val"][0]) == 0:
            raise ValidationError("[dataset] split: the poptorch backend needs training and validation structures")
        sizes = choose_fixed_sizes(*counts["train"], batch_size=int(s["batch_size"]),
                                   percentile=float(s["size_percentile"]), num_nodes=int(s["num_nodes"]),
                                   num_edges=int(s["num_edges"]), seed=int(s["seed"]))
        for split, (nodes, edges) in counts.items():
            refuse_oversized(nodes, edges, sizes, split)
        return sizes, counts

    def _loader(self, split: str, sizes: FixedSizes, counts: tuple[np.ndarray, np.ndarray],
                shuffle: bool) -> torch.utils.data.DataLoader:
        data = getattr(self.job, split)
        if not isinstance(data, torch.utils.data.Dataset):
            data = _Indexed(data)
        sampler = PackingBatchSampler(*counts, sizes, shuffle=shuffle, seed=int(self.settings["seed"]))
        workers = int(self.job.num_workers or 0)
        return torch.utils.data.DataLoader(data, batch_sampler=sampler, collate_fn=FixedSizeCollator(
            self.job.collator, sizes), num_workers=workers, persistent_workers=workers > 0)

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> FitResult:
        s, poptorch, job = self.settings, self.poptorch, self.job
        torch.manual_seed(int(s["seed"]))
        sizes, counts = self._sizes()
        train_loader = self._loader("train", sizes, counts["train"], shuffle=True)
        val_loader = self._loader("val", sizes, counts["val"], shuffle=False)
        per_train_step = micro_batches_per_step(s, training=True)
        if len(train_loader) < per_train_step:
            raise ValidationError(f"[trainer] device_iterations: one step takes {per_train_step} fixed-size batches "
                                  f"(device_iterations x replication_factor x gradient_accumulation) but the "
                                  f"training split packs into {len(train_loader)}; lower them or batch_size")

        task = build_task(job.build_model(), job.heads, job.statistics, s)
        trainable = [p for p in task.model.parameters() if p.requires_grad]  # [model] freeze: frozen blocks stay out
        optimizer = make_optimizer(poptorch, trainable, s)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=float(s["lr_factor"]),
                                                               patience=int(s["lr_patience"]))
        state = {"epoch": 0, "best_val_loss": math.inf, "bad_epochs": 0}
        rows = self._read_metrics()
        if job.resume and (self.checkpoints / LAST).exists():
            state = self._resume(task, optimizer, scheduler, sizes)
        rows = [r for r in rows if int(r["epoch"]) < state["epoch"]]

        keys = batch_keys(next(iter(val_loader)))
        task.train()
        training = poptorch.trainingModel(FixedSizeStep(task, keys, sizes.num_graphs, poptorch),
                                          options=make_options(poptorch, s, training=True), optimizer=optimizer)
        inference = poptorch.inferenceModel(FixedSizeStep(task, keys, sizes.num_graphs),
                                            options=make_options(poptorch, s, training=False))
        epoch = state["epoch"]
        try:
            while epoch < int(s["max_epochs"]) and state["bad_epochs"] < int(s["patience"]):
                started = time.perf_counter()
                train_loss = self._train_epoch(training, train_loader, keys, per_train_step, epoch)
                task.eval()  # PopTorch compiles the inference graph in the mode the module is in
                val_loss, val_mae = self._validate(inference, val_loader, keys, sizes, epoch)
                task.train()
                lr_before = optimizer.param_groups[0]["lr"]
                scheduler.step(val_loss)
                if optimizer.param_groups[0]["lr"] != lr_before:
                    training.setOptimizer(optimizer)  # PopTorch reads optimiser changes only when told
                rows.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_mae": val_mae,
                             "lr": optimizer.param_groups[0]["lr"], "seconds": round(time.perf_counter() - started, 3)})
                self._write_metrics(rows)
                self.job.epoch_finished(epoch, dict(rows[-1]))  # the run's loggers see the row
                improved = val_loss < state["best_val_loss"]
                state = {"epoch": epoch + 1, "best_val_loss": min(val_loss, state["best_val_loss"]),
                         "bad_epochs": 0 if improved else state["bad_epochs"] + 1}
                training.copyWeightsToHost()
                self._checkpoint(LAST, task, optimizer, scheduler, sizes, epoch, val_loss, state)
                if improved:
                    self._checkpoint(BEST, task, optimizer, scheduler, sizes, epoch, val_loss, state)
                epoch += 1
        finally:
            for executor in (training, inference):
                if executor.isAttachedToDevice():
                    executor.detachFromDevice()
        best = state["best_val_loss"]
        return FitResult(best_checkpoint=self.checkpoints / BEST, last_checkpoint=self.checkpoints / LAST,
                         epochs=epoch, best_val_loss=None if not math.isfinite(best) else float(best),
                         extra={"fixed_sizes": sizes.as_dict()})

    def _train_epoch(self, training: Any, loader: Any, keys: list[str], per_step: int, epoch: int) -> float:
        """One pass; a trailing group smaller than a step is left out (the next epoch reshuffles)."""
        total = weight = 0.0
        group: list[Any] = []
        for batch in loader:
            group.append(batch)
            if len(group) < per_step:
                continue
            out = split_outputs(training(*stack_batches(group, keys)))
            group = []
            losses, real = out["loss"].reshape(-1).double(), out["real_graphs"].reshape(-1).double()
            if not bool(torch.isfinite(losses).all()):
                raise RunError(f"training stopped: the loss became {float(losses[~torch.isfinite(losses)][0])} in "
                               f"epoch {epoch}; lower [trainer] lr or check the data")
            total += float((losses * real).sum())
            weight += float(real.sum())
        return total / max(weight, 1.0)

    def _validate(self, inference: Any, loader: Any, keys: list[str], sizes: FixedSizes,
                  epoch: int) -> tuple[float, float]:
        """Validation loss and the first head's MAE, each a mean over real structures (or atoms)."""
        per_step = micro_batches_per_step(self.settings, training=False)
        loss_sum = weight = mae_sum = 0.0
        group: list[Any] = []
        batches = iter(loader)
        while True:
            batch = next(batches, None)
            if batch is not None:
                group.append(batch)
                if len(group) < per_step:
                    continue
            if not group:
                break
            real_batches = len(group)
            group += [_empty_like(group[0])] * (per_step - len(group))  # no real graphs: weight 0
            out = split_outputs(inference(*stack_batches(group, keys)))
            real = out["real_graphs"].reshape(-1).double()
            loss_sum += float((out["loss"].reshape(-1).double() * real).sum())
            weight += float(real.sum())
            for k, padded in enumerate(group[:real_batches] if out["y"].shape[-1] else ()):
                mask = padded["graphs_mask"]
                mae_sum += float((out["y"][k][mask, 0].double() - padded["y"][mask, 0]).abs().sum())
            group = []
            if batch is None:
                break
        val_loss = loss_sum / max(weight, 1.0)
        if not math.isfinite(val_loss):
            raise RunError(f"training stopped: the validation loss became {val_loss} in epoch {epoch}; lower "
                           f"[trainer] lr")
        return val_loss, mae_sum / max(weight, 1.0)

    # -- files ---------------------------------------------------------------------------------
    def _checkpoint(self, name: str, task: torch.nn.Module, optimizer: Any, scheduler: Any, sizes: FixedSizes,
                    epoch: int, val_loss: float, state: dict[str, Any]) -> None:
        write_checkpoint(self.checkpoints / name, task.state_dict(), self.job.heads, self.job.statistics, epoch,
                         val_loss, optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                         poptorch={**state, "fixed_sizes": sizes.as_dict()})

    def _resume(self, task: torch.nn.Module, optimizer: Any, scheduler: Any, sizes: FixedSizes) -> dict[str, Any]:
        checkpoint = read_checkpoint(self.checkpoints / LAST, resume="this run cannot continue from it; start a new run")
        saved = checkpoint.raw.get("poptorch")
        if not isinstance(saved, dict) or "optimizer" not in checkpoint.raw:
            raise ValidationError(f"{checkpoint.path}: not written by the poptorch backend; resume it with the "
                                  f"backend that wrote it")
        task.load_state_dict(checkpoint.state_dict)
        optimizer.load_state_dict(checkpoint.raw["optimizer"])
        scheduler.load_state_dict(checkpoint.raw["scheduler"])
        if saved.get("fixed_sizes") != sizes.as_dict():
            raise ValidationError(f"{checkpoint.path}: fixed sizes {saved.get('fixed_sizes')} differ from this run's "
                                  f"{sizes.as_dict()}; the data or [trainer] sizes changed, start a new run")
        return {"epoch": int(saved["epoch"]), "best_val_loss": float(saved["best_val_loss"]),
                "bad_epochs": int(saved["bad_epochs"])}

    def _read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        with open(self.metrics_path, newline="") as fh:
            return list(csv.DictReader(fh))

    def _write_metrics(self, rows: list[dict[str, Any]]) -> None:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.metrics_path, out.getvalue())


class _Indexed(torch.utils.data.Dataset):
    """A plain sequence of samples as a map-style dataset."""

    def __init__(self, items: Any) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.items[index]


def _empty_like(batch: Any) -> Any:
    """A fixed-size batch with no real graph (every mask False), to fill a partial inference step."""
    empty = type(batch)({k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in batch.items()})
    for key in ("graphs_mask", "nodes_mask", "edges_mask"):
        empty[key] = torch.zeros_like(batch[key])
    for key in ("y", "atom_y", "forces"):
        if key in empty:
            empty[key] = torch.zeros_like(batch[key])
    return empty


