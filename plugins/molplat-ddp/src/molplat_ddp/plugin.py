"""molplat hook implementations of molplat-ddp; imports no torch so listing stays cheap."""
from __future__ import annotations

import molplat
from molplat import ComponentSpec, Setting
from molplat.training import TRAINER_SETTINGS

MOLPLAT_API = ">=1.0,<2"

#: more processes per node or nodes than this is a typo, not a cluster
MAX_DEVICES = 1024
MAX_NODES = 4096

DDP_SETTINGS = (
    Setting("devices", "int", 1, "processes per node: CPU processes, or GPUs with accelerator = \"gpu\"; "
            "batch_size is split evenly across devices × num_nodes processes", minimum=1, maximum=MAX_DEVICES),
    Setting("num_nodes", "int", 1, "nodes; more than 1 needs torchrun or srun to start the processes on each node",
            minimum=1, maximum=MAX_NODES),
    Setting("accelerator", "str", "cpu", "cpu (gloo) or gpu (NCCL, one GPU per process)", choices=("cpu", "gpu")),
    Setting("timeout_minutes", "int", 30, "how long a process waits for the others at a collective (start-up, "
            "each step) before giving up", minimum=1, maximum=24 * 60),
)


@molplat.hookimpl
def molplat_trainer_backends() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="ddp",
            kind="trainer_backend",
            factory="molplat_ddp.backend:DDPBackend",
            summary="PyTorch Lightning DDP in several processes: CPU processes (gloo) or GPUs (NCCL), one node or "
                    "many under torchrun or SLURM; batch_size is the global batch",
            settings=TRAINER_SETTINGS + DDP_SETTINGS,
        )
    ]
