"""The ``ddp`` trainer backend: the core's Lightning loop under Lightning's DDPStrategy.

``batch_size`` is the global batch: each of the devices × num_nodes processes takes
batch_size / world_size structures per step, and since every rank shuffles with the same
seed and takes every world_size-th position of that order (``molplat.training``'s
loaders), the ranks' batches together are the one-process batch. With mean losses the
averaged gradients are then those of a one-process run, up to float32 rounding.
"""
from __future__ import annotations

import datetime
import os
import socket
from typing import Any

from molplat.errors import RunError, ValidationError
from molplat.processes import RunRequest
from molplat.rundir import FitResult, TrainingJob

from molplat_ddp.processes import DDPProcesses, LocalRanks, Place, external_place, free_port


class DDPBackend:
    """Trains with Lightning DDP; settings are the core trainer settings plus devices, num_nodes, accelerator."""

    name = "ddp"

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.devices = int(settings.get("devices", 1))
        self.num_nodes = int(settings.get("num_nodes", 1))
        self.accelerator = settings.get("accelerator", "cpu")
        world = self.devices * self.num_nodes
        batch = int(settings.get("batch_size", 32))
        if batch % world:
            raise ValidationError(f"[trainer] batch_size: {batch} is the global batch and must split evenly over "
                                  f"devices × num_nodes = {world} processes; use a multiple of {world}")
        self._processes: DDPProcesses | None = None

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes

    # -- molplat.processes hook ------------------------------------------------------------
    def processes(self, request: RunRequest | None) -> DDPProcesses:
        """This process's rank, with the process group up; rank 0 of a local run starts the other ranks."""
        self._check_accelerator()
        timeout = datetime.timedelta(minutes=int(self.settings.get("timeout_minutes", 30)))
        backend = "nccl" if self.accelerator == "gpu" else "gloo"
        place = external_place()
        local = None
        if place is not None:
            self._check_launch(place)
        elif self.world_size == 1:
            place = Place(0, 0, 0, 1, "127.0.0.1", 0, "single")
        elif self.num_nodes > 1:
            raise RunError(f"[trainer] num_nodes = {self.num_nodes}: start one process per device on every node "
                           f"with torchrun or srun (see the molplat-ddp README); `molplat run` alone starts the "
                           f"processes of one node")
        elif request is None:
            raise RunError(f"[trainer] devices = {self.devices}: fit(job) alone trains in this one process; run "
                           f"the pipeline (`molplat run`, Pipeline.run), which starts the other processes")
        else:
            port = free_port()
            place = Place(0, 0, 0, self.world_size, "127.0.0.1", port, "local")
            local = LocalRanks(request, self.world_size, port)
        if self.accelerator == "gpu":
            import torch

            torch.cuda.set_device(place.local_rank)
        processes = DDPProcesses(place, backend, timeout, local)
        try:
            processes.connect()
        except BaseException:
            processes.close()
            raise
        self._processes = processes
        return processes

    def _check_accelerator(self) -> None:
        if self.accelerator != "gpu":
            return
        import torch

        if not torch.cuda.is_available():
            raise RunError(f"[trainer] accelerator = \"gpu\", but torch finds no CUDA GPU on {socket.gethostname()}; "
                           f"set accelerator = \"cpu\" or run on a GPU node")
        if torch.cuda.device_count() < self.devices:
            raise RunError(f"[trainer] devices = {self.devices}, but {socket.gethostname()} has "
                           f"{torch.cuda.device_count()} GPUs; lower devices")

    def _check_launch(self, place: Place) -> None:
        if place.world_size != self.world_size:
            raise RunError(f"[trainer] devices × num_nodes = {self.devices} × {self.num_nodes} = {self.world_size}, "
                           f"but {place.launcher} started {place.world_size} processes; make them agree")
        if place.launcher == "torchrun" and int(os.environ.get("LOCAL_WORLD_SIZE", self.devices)) != self.devices:
            raise RunError(f"[trainer] devices = {self.devices}, but torchrun started "
                           f"{os.environ['LOCAL_WORLD_SIZE']} processes on this node (--nproc-per-node); make them "
                           f"agree")

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, job: TrainingJob) -> FitResult:
        from molplat.training import fit_with_lightning

        processes = self._processes or self.processes(None)
        world = processes.world_size
        settings = dict(self.settings, batch_size=int(self.settings["batch_size"]) // world)
        for key in ("devices", "num_nodes", "accelerator", "timeout_minutes"):
            settings.pop(key, None)
        if processes.rank != 0:
            settings["progress_bar"] = False
        if world > 1 and len(job.val) < world:
            raise RunError(f"[trainer] ddp: the validation split has {len(job.val)} structures, fewer than the "
                           f"{world} processes; give it at least one per process")
        from molplat_ddp.lightning_parts import ParameterAgreement

        agreement = ParameterAgreement(processes.world_size, processes.objects_group)
        kwargs = self._trainer_kwargs(processes)
        try:
            result = fit_with_lightning(job, settings, [agreement], **kwargs)
        except Exception as exc:
            if world == 1:
                raise
            # an error of our own (a NaN loss) is this rank's; anything else a collective raised is most
            # likely another rank stopping, whose own message is the one worth a line
            ours = isinstance(exc, (RunError, ValidationError))
            error = processes.failed(exc, wait=1.0 if ours else 10.0, fallback=exc if ours else None)
            if error is exc:
                raise
            raise error from exc
        processes.trained = True
        if agreement.digests and len(set(agreement.digests)) > 1:
            raise RunError(f"[trainer] ddp: the {world} processes ended with different parameters "
                           f"({', '.join(agreement.digests)}); the model has parameters DDP does not synchronise")
        result.extra.update({"world_size": world, "per_process_batch_size": settings["batch_size"],
                             "parameter_digests": agreement.digests})
        return result

    def _trainer_kwargs(self, processes: DDPProcesses) -> dict[str, Any]:
        accelerator = "cuda" if self.accelerator == "gpu" else "cpu"
        if processes.world_size == 1:
            return {"accelerator": accelerator, "devices": 1}
        from pytorch_lightning.strategies import DDPStrategy

        from molplat_ddp.lightning_parts import KnownPlace

        strategy = DDPStrategy(cluster_environment=KnownPlace(processes.place), process_group_backend=processes.backend,
                               timeout=processes.timeout)
        return {"accelerator": accelerator, "devices": self.devices, "num_nodes": self.num_nodes,
                "strategy": strategy}
