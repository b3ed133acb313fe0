"""molplat hook implementations of molplat-tensorboard.

A logger: it acts only in runs whose ``[output] loggers`` names ``tensorboard``. This
module imports neither torch nor tensorboard, so listing plugins stays cheap; the
writer is imported when a run starts.
"""
from __future__ import annotations

from typing import Any

from molplat.loggers import RunLog, RunLogs

MOLPLAT_API = ">=1.0,<2"
LOGGER = "tensorboard"


def open_log(run_dir: str, pipeline: dict[str, Any]) -> RunLog:
    from molplat_tensorboard.log import TensorBoardLog

    return TensorBoardLog(run_dir)


#: the open log of each run in progress in this process, by run directory, and the hooks
logs = RunLogs(LOGGER, open_log)
molplat_loggers = logs.molplat_loggers
molplat_run_started = logs.molplat_run_started
molplat_epoch_finished = logs.molplat_epoch_finished
molplat_stage_finished = logs.molplat_stage_finished
molplat_run_finished = logs.molplat_run_finished
molplat_run_failed = logs.molplat_run_failed
