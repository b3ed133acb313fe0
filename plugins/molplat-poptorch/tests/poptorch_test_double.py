"""Test double for the Graphcore PopTorch SDK, which cannot be installed here.

It is not PopTorch: no IPU, no compilation, no Poplar. It offers the part of PopTorch's
API that molplat-poptorch calls (checked against graphcore/poptorch's python/ sources),
records every ``Options`` call, and runs executors on the CPU with PopTorch's semantics
as its documentation states them:

* an executor call splits the first axis of every input tensor into
  device_iterations x replication_factor (x gradient_accumulation when training) equal
  micro-batches, and refuses inputs that do not divide;
* ``trainingModel`` runs forward and backward on each micro-batch and steps the optimiser
  once per device iteration, averaging gradients over replicas and accumulated
  micro-batches (``ReductionType.Mean``, PopTorch's default); the loss is the last output
  and must come from ``identity_loss`` (or PopTorch refuses the model);
* ``OutputMode.All`` returns every micro-batch's outputs joined along the first axis,
  ``Final`` (training's default) only the last;
* ``inferenceModel`` runs without an optimiser; both share the host model's parameters.

Install it with ``sys.modules["poptorch"] = poptorch_test_double`` (the tests' fixture).
"""
from __future__ import annotations

import enum
from typing import Any

import torch

__version__ = "3.3.0+molplat-test-double"

#: every Options object made, in order (tests read the calls from here)
CREATED_OPTIONS: list["Options"] = []
#: every executor made, in order
CREATED_EXECUTORS: list["_Executor"] = []


class OutputMode(enum.IntEnum):
    Final = 0
    EveryN = 1
    All = 2
    Sum = 3
    Default = 4


class ReductionType(enum.IntEnum):
    Sum = 0
    Mean = 1
    NoReduction = 2


class _TrainingOptions:
    def __init__(self, owner: "Options") -> None:
        self._owner = owner
        self.gradient_accumulation = 1
        self.reduction = ReductionType.Mean

    def gradientAccumulation(self, count: int) -> "_TrainingOptions":
        self._owner.calls.append(("Training.gradientAccumulation", count))
        self.gradient_accumulation = _positive(count, "gradientAccumulation")
        return self

    def accumulationAndReplicationReductionType(self, reduction: ReductionType) -> "_TrainingOptions":
        self._owner.calls.append(("Training.accumulationAndReplicationReductionType", reduction))
        if not isinstance(reduction, ReductionType) or reduction == ReductionType.NoReduction:
            raise ValueError("accumulationAndReplicationReductionType must be set to poptorch.ReductionType.Mean "
                             "or poptorch.ReductionType.Sum")
        self.reduction = reduction
        return self


class Options:
    """Records each call as ``(name, value)`` in ``calls``; returns itself, as PopTorch's setters do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.device_iterations = 1
        self.replication_factor = 1
        self.output_mode = OutputMode.Default
        self.Training = _TrainingOptions(self)
        CREATED_OPTIONS.append(self)

    def deviceIterations(self, count: int) -> "Options":
        self.calls.append(("deviceIterations", count))
        self.device_iterations = _positive(count, "deviceIterations")
        return self

    def replicationFactor(self, count: int) -> "Options":
        self.calls.append(("replicationFactor", count))
        self.replication_factor = _positive(count, "replicationFactor")
        return self

    def enableExecutableCaching(self, path: str) -> "Options":
        self.calls.append(("enableExecutableCaching", path))
        return self

    def useIpuModel(self, use_model: bool) -> "Options":
        self.calls.append(("useIpuModel", use_model))
        return self

    def randomSeed(self, seed: int) -> "Options":
        self.calls.append(("randomSeed", seed))
        return self

    def outputMode(self, mode: OutputMode, output_return_period: int | None = None) -> "Options":
        assert isinstance(mode, OutputMode)
        self.calls.append(("outputMode", mode))
        self.output_mode = mode
        return self


def _positive(value: int, name: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def identity_loss(x: torch.Tensor, reduction: str) -> torch.Tensor:
    """Marks ``x`` as the loss, reduced as PopTorch's ``identity_loss`` reduces it."""
    if reduction not in ("sum", "mean", "none"):
        raise ValueError(f"identity_loss: reduction must be 'sum', 'mean' or 'none', got {reduction!r}")
    loss = x.sum() if reduction == "sum" else x.mean() if reduction == "mean" else x
    loss._poptorch_identity_loss = True  # type: ignore[attr-defined]
    return loss


class _Executor:
    """What ``trainingModel``/``inferenceModel`` return: the wrapped module, run micro-batch by micro-batch."""

    def __init__(self, model: torch.nn.Module, options: Options | None, optimizer: Any, training: bool) -> None:
        self.model = model
        self.options = options or Options()
        self.optimizer = optimizer
        self.training = training
        self.calls = 0
        self.compiled = False
        self.attached = False
        self.events: list[str] = []
        CREATED_EXECUTORS.append(self)

    @property
    def micro_batches(self) -> int:
        count = self.options.device_iterations * self.options.replication_factor
        return count * self.options.Training.gradient_accumulation if self.training else count

    def __call__(self, *inputs: torch.Tensor) -> Any:
        for value in inputs:
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"PopTorch executors take tensors only, got {type(value).__name__}")
            if value.shape[0] % self.micro_batches:
                raise ValueError(f"an input's first axis ({value.shape[0]}) is not a multiple of the "
                                 f"{self.micro_batches} micro-batches one call takes")
        self.compiled = self.attached = True
        self.calls += 1
        chunks = list(zip(*(value.chunk(self.micro_batches) for value in inputs)))
        outputs = self._train(chunks) if self.training else self._infer(chunks)
        mode = self.options.output_mode
        if mode == OutputMode.Default:
            mode = OutputMode.Final if self.training else OutputMode.All
        if mode == OutputMode.Final:
            return outputs[-1]
        if mode != OutputMode.All:
            raise NotImplementedError(f"the test double returns OutputMode.All or Final, not {mode!r}")
        return tuple(_join([out[k] for out in outputs]) for k in range(len(outputs[0])))

    def _train(self, chunks: list[tuple[torch.Tensor, ...]]) -> list[tuple[torch.Tensor, ...]]:
        self.model.train()
        per_update = self.options.replication_factor * self.options.Training.gradient_accumulation
        mean = self.options.Training.reduction == ReductionType.Mean
        results = []
        for start in range(0, len(chunks), per_update):
            self.optimizer.zero_grad()
            for chunk in chunks[start:start + per_update]:
                out = self.model(*chunk)
                loss = out[-1] if isinstance(out, tuple) else out
                if not getattr(loss, "_poptorch_identity_loss", False):
                    raise RuntimeError("the training model's last output must be a loss from poptorch.identity_loss")
                (loss / per_update if mean else loss).backward()
                results.append(tuple(t.detach() for t in (out if isinstance(out, tuple) else (out,))))
            self.optimizer.step()
        return results

    def _infer(self, chunks: list[tuple[torch.Tensor, ...]]) -> list[tuple[torch.Tensor, ...]]:
        results = []
        for chunk in chunks:
            out = self.model(*chunk)
            results.append(tuple(t.detach() for t in (out if isinstance(out, tuple) else (out,))))
        return results

    def compile(self, *inputs: torch.Tensor) -> None:
        self.compiled = True

    def setOptimizer(self, optimizer: Any) -> None:
        self.events.append("setOptimizer")
        self.optimizer = optimizer

    def copyWeightsToHost(self) -> None:
        self.events.append("copyWeightsToHost")

    def copyWeightsToDevice(self) -> None:
        self.events.append("copyWeightsToDevice")

    def isAttachedToDevice(self) -> bool:
        return self.attached

    def detachFromDevice(self) -> None:
        if not self.attached:
            raise RuntimeError("detachFromDevice: the executor is not attached")
        self.events.append("detachFromDevice")
        self.attached = False

    def destroy(self) -> None:
        self.events.append("destroy")


def _join(values: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(values) if values[0].dim() == 0 else torch.cat(values)


def trainingModel(model: torch.nn.Module, options: Options | None = None, optimizer: Any = None) -> _Executor:
    if optimizer is None:
        raise ValueError("the test double needs the optimizer (PopTorch would default to SGD lr=0.01)")
    return _Executor(model, options, optimizer, training=True)


def inferenceModel(model: torch.nn.Module, options: Options | None = None) -> _Executor:
    return _Executor(model, options, None, training=False)


class optim:  # noqa: N801 - PopTorch's module name
    """``poptorch.optim``: here the torch optimisers of the same names (LAMB from pytorch-optimizer)."""

    SGD = torch.optim.SGD
    Adam = torch.optim.Adam
    AdamW = torch.optim.AdamW

    @staticmethod
    def LAMB(params: Any, **kwargs: Any) -> Any:  # noqa: N802
        from pytorch_optimizer import Lamb

        return Lamb(params, **kwargs)
