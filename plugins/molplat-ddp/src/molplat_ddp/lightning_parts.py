"""The Lightning pieces of the ddp backend (imported only when it trains, so validation stays light)."""
from __future__ import annotations

import hashlib
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.environments import ClusterEnvironment
from lightning_fabric.utilities.rank_zero import rank_zero_only

from molplat.errors import RunError

from molplat_ddp.processes import Place


def parameter_digest(parameters: Any) -> str:
    """SHA-256 (first 16 hex digits) of the parameters' bytes in order: equal digests, equal parameters."""
    digest = hashlib.sha256()
    for parameter in parameters:
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class ParameterAgreement(pl.Callback):
    """After training, every rank's parameter digest, gathered on every rank (they must all be equal)."""

    def __init__(self, world_size: int, group: Any = None) -> None:
        self.world_size, self.group = world_size, group
        self.digests: list[str] = []

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        mine = parameter_digest(pl_module.model.parameters())
        if self.world_size == 1:
            self.digests = [mine]
            return
        gathered: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, mine, group=self.group)
        self.digests = [str(d) for d in gathered]


class KnownPlace(ClusterEnvironment):
    """A Lightning cluster environment that reports the place ``processes`` found and never launches processes."""

    def __init__(self, place: Place) -> None:
        super().__init__()
        self.place = place

    @property
    def creates_processes_externally(self) -> bool:
        return True

    @property
    def main_address(self) -> str:
        return self.place.address

    @property
    def main_port(self) -> int:
        return self.place.port

    @staticmethod
    def detect() -> bool:
        return False

    def world_size(self) -> int:
        return self.place.world_size

    def set_world_size(self, size: int) -> None:
        if size != self.place.world_size:
            raise RunError(f"[trainer] ddp: Lightning counts {size} processes, the launcher started "
                           f"{self.place.world_size}; make devices × num_nodes agree with the launcher")

    def global_rank(self) -> int:
        return self.place.rank

    def set_global_rank(self, rank: int) -> None:
        if rank != self.place.rank:
            raise RunError(f"[trainer] ddp: Lightning puts this process at rank {rank}, the launcher at "
                           f"{self.place.rank}; the launcher must number ranks node by node (node_rank × devices "
                           f"+ local_rank)")
        rank_zero_only.rank = rank

    def local_rank(self) -> int:
        return self.place.local_rank

    def node_rank(self) -> int:
        return self.place.node_rank
