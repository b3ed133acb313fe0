"""Registers the ``poptorch`` trainer backend. Imports neither torch nor poptorch, so listing plugins works
without the Graphcore SDK."""
from __future__ import annotations

import molplat
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "J. A. Bilbrey, K. M. Herman, H. Sprueill, S. S. Xantheas, P. Das, M. Lopez Roldan, M. Kraus, H. Helal, "
    "S. Choudhury, Reducing down(stream)time: pretraining molecular GNNs using heterogeneous AI accelerators, "
    "arXiv:2211.04598 (2022)"
)

#: the core trainer settings this backend honours, with the core's defaults and bounds
SHARED = ("task", "batch_size", "max_epochs", "lr", "optimizer", "weight_decay", "seed", "patience", "lr_patience",
          "lr_factor", "standardize", "loss", "forces_weight", "num_threads")

IPU_SETTINGS = (
    Setting("device_iterations", "int", 1, "fixed-size batches the IPU runs per call before returning to the host",
            minimum=1, maximum=65536),
    Setting("replication_factor", "int", 1, "model replicas on that many IPUs (data parallel)", minimum=1,
            maximum=1024),
    Setting("gradient_accumulation", "int", 1, "fixed-size batches whose gradients are averaged per optimiser step",
            minimum=1, maximum=4096),
    Setting("executable_cache", "path", None, "folder where PopTorch caches compiled executables (none: compile "
            "every run)", must_exist=False),
    Setting("ipu_model", "bool", False, "run on the IPU Model emulator instead of IPU hardware"),
    Setting("num_nodes", "int", 0, "atoms per fixed-size batch, padding included (0: chosen from the data)",
            minimum=0, maximum=10_000_000),
    Setting("num_edges", "int", 0, "edges per fixed-size batch, padding included (0: chosen from the data)",
            minimum=0, maximum=100_000_000),
    Setting("size_percentile", "float", 99.0, "chosen sizes hold this percentile of random batches' atom and edge "
            "counts; larger batches are split", minimum=50.0, maximum=100.0),
)


def trainer_settings() -> tuple[Setting, ...]:
    """The shared core settings (same defaults and bounds as the cpu backend), then the IPU ones."""
    from molplat.training import TRAINER_SETTINGS

    by_name = {s.name: s for s in TRAINER_SETTINGS}
    return tuple(by_name[name] for name in SHARED) + IPU_SETTINGS


@molplat.hookimpl
def molplat_trainer_backends() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="poptorch",
            kind="trainer_backend",
            factory="molplat_poptorch.backend:PopTorchBackend",
            summary="Graphcore IPUs through PopTorch: fixed-size padded batches, device iterations, replicas, "
                    "gradient accumulation (needs the Poplar SDK's poptorch wheel)",
            settings=trainer_settings(),
            citation=CITATION,
        )
    ]
