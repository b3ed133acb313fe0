"""poptorch.Options from the ``[trainer]`` settings: the one place the IPU execution is configured."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any


def micro_batches_per_step(settings: dict[str, Any], training: bool) -> int:
    """Fixed-size batches one executor call consumes: PopTorch splits the first axis of every
    input into device iterations x replicas (x accumulated micro-batches when training)."""
    count = int(settings["device_iterations"]) * int(settings["replication_factor"])
    return count * int(settings["gradient_accumulation"]) if training else count


def make_options(poptorch: ModuleType, settings: dict[str, Any], training: bool) -> Any:
    """Options for the training or the inference executor.

    Every micro-batch's output comes back (``OutputMode.All``): the backend weights each
    batch's loss by its real structures. Gradients are averaged over replicas and
    accumulated micro-batches (``ReductionType.Mean``), as each micro-batch's loss is
    already a mean.
    """
    options = poptorch.Options()
    options.deviceIterations(int(settings["device_iterations"]))
    options.replicationFactor(int(settings["replication_factor"]))
    options.randomSeed(int(settings["seed"]))
    options.outputMode(poptorch.OutputMode.All)
    if training:
        options.Training.gradientAccumulation(int(settings["gradient_accumulation"]))
        options.Training.accumulationAndReplicationReductionType(poptorch.ReductionType.Mean)
    if settings.get("executable_cache"):
        options.enableExecutableCaching(str(Path(settings["executable_cache"])))
    if settings.get("ipu_model"):
        options.useIpuModel(True)
    return options


def make_optimizer(poptorch: ModuleType, parameters: Any, settings: dict[str, Any]) -> Any:
    """The optimiser PopTorch runs on the device (``poptorch.optim``), as the cpu backend configures it."""
    lr, decay = float(settings["lr"]), float(settings["weight_decay"])
    name = settings["optimizer"]
    if name == "sgd":
        return poptorch.optim.SGD(parameters, lr=lr, momentum=0.9, weight_decay=decay)
    if name == "adam":
        return poptorch.optim.Adam(parameters, lr=lr, weight_decay=decay)
    if name == "lamb":
        return poptorch.optim.LAMB(parameters, lr=lr, weight_decay=decay)
    return poptorch.optim.AdamW(parameters, lr=lr, weight_decay=decay)
