"""molplat hook implementations of molplat-tensorboard.

A logger: it acts only in runs whose ``[output] loggers`` names ``tensorboard``. This
module imports neither torch nor tensorboard, so listing plugins stays cheap; the
writer is imported when a run starts.
"""
from __future__ import annotations

from collections.abc import Callable
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


def _with_log(run_dir: str, action: Callable[["TensorBoardLog"], None]) -> None:
    """Run ``action`` on the run's log; when it raises, the core stops calling this plugin for the
    run, so the log is closed and dropped here before the error goes on."""
    log = _open[run_dir]
    try:
        action(log)
    except Exception:
        _open.pop(run_dir, None)
        try:
            log.close()
        except Exception:  # the first error is the one to report
            pass
        raise


@molplat.hookimpl
def molplat_epoch_finished(run_dir: str, epoch: int, metrics: dict[str, float]) -> None:
    _with_log(run_dir, lambda log: log.epoch(epoch, metrics))


@molplat.hookimpl
def molplat_stage_finished(run_dir: str, stage: str, result: dict[str, Any]) -> None:
    if stage == "evaluate":
        _with_log(run_dir, lambda log: log.evaluated(result))


@molplat.hookimpl
def molplat_run_finished(run_dir: str, summary: dict[str, Any]) -> None:
    _open.pop(run_dir).close()


@molplat.hookimpl
def molplat_run_failed(run_dir: str, error: str) -> None:
    log = _open.pop(run_dir, None)
    if log is not None:  # None: the log was already dropped after a failure of its own
        log.failed(error)
        log.close()
