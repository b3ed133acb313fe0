"""molplat hook implementations of molplat-tensorboard.

A logger: it acts only in runs whose ``[output] loggers`` names ``tensorboard``. This
module imports neither torch nor tensorboard, so listing plugins stays cheap; the
writer is imported when a run starts.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import molplat

if TYPE_CHECKING:  # pragma: no cover
    from molplat_tensorboard.log import TensorBoardLog

MOLPLAT_API = ">=1.0,<2"
LOGGER = "tensorboard"

#: the open log of each run in progress in this process, by run directory
_open: dict[str, "TensorBoardLog"] = {}


@molplat.hookimpl
def molplat_loggers() -> list[str]:
    return [LOGGER]


@molplat.hookimpl
def molplat_run_started(run_dir: str, pipeline: dict[str, Any]) -> None:
    from molplat_tensorboard.log import TensorBoardLog

    earlier = _open.pop(run_dir, None)
    if earlier is not None:  # a resumed run in the same process
        earlier.close()
    _open[run_dir] = TensorBoardLog(run_dir)


@molplat.hookimpl
def molplat_epoch_finished(run_dir: str, epoch: int, metrics: dict[str, float]) -> None:
    _open[run_dir].epoch(epoch, metrics)


@molplat.hookimpl
def molplat_stage_finished(run_dir: str, stage: str, result: dict[str, Any]) -> None:
    if stage == "evaluate":
        _open[run_dir].evaluated(result)


@molplat.hookimpl
def molplat_run_finished(run_dir: str, summary: dict[str, Any]) -> None:
    _open.pop(run_dir).close()
